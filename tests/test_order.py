"""Training orders and batches (rnn.engine.order, rnn.engine.batch): which sequences each
update reads, which states reset, and the batched gradients against B single-sequence ones."""

import copy

import numpy as np
import pytest

import rnn
from rnn.engine.batch import loss_and_grads_batch, sequences, streams_mean
from rnn.engine.cells import CELLS
from rnn.engine.kernels import AVAILABLE
from rnn.engine.model import zero_state
from rnn.engine.order import ORDERS, Order, schedule
from rnn.engine.train import (
    _run_updates_batched,
    _run_updates_compiled,
    mean_loss,
    new_state,
    run_updates_reference,
)
from rnn.errors import ConfigError, DataError
from rnn.runs import checkpoint

from .training import fit

needs_numba = pytest.mark.skipif(not AVAILABLE, reason="numba not installed")


def spec_for(params, L: int, n: int, B: int = 1) -> rnn.TrainSpec:
    """The spec of the textbook's run (AdaGrad, eta 0.1, clipping) over n updates of L."""
    return rnn.TrainSpec(
        cell=params.cell, m=params.m, n_updates=n, seq_length=L, batch_size=B,
        sample_every=None, eval_every=None,
    )  # fmt: skip


def test_sequential_one_stream_is_the_original_order():
    # the original loop: update s starts at L (s mod E), E = (N - 1) // L, reset when s mod E = 0
    N, L = 1003, 25
    sched = schedule(Order(), N, L, seed=7)
    E = (N - 1) // L
    assert sched.per_epoch == E
    steps = np.arange(3 * E + 5)
    starts, resets = sched.window(0, len(steps))
    np.testing.assert_array_equal(starts[:, 0], (steps % E) * L)
    np.testing.assert_array_equal(resets[:, 0], steps % E == 0)


def test_sequential_streams_read_their_own_stretch():
    N, L, B = 1000, 10, 4
    sched = schedule(Order("sequential", batch_size=B), N, L, seed=0)
    starts, resets = sched.window(0, 2 * sched.per_epoch)
    assert sched.per_epoch == (250 - 1) // L
    np.testing.assert_array_equal(starts[0], [0, 250, 500, 750])
    np.testing.assert_array_equal(np.diff(starts[: sched.per_epoch], axis=0), L)
    assert (starts[:, 3] + L + 1 <= N).all()
    expect = (np.arange(2 * sched.per_epoch) % sched.per_epoch) == 0
    np.testing.assert_array_equal(resets, np.repeat(expect[:, None], B, axis=1))


@pytest.mark.parametrize("B", [1, 3])
def test_chunks_reset_at_each_chunk_start_and_shuffle_each_epoch(B):
    N, L, n_chunks = 2000, 10, 7
    sched = schedule(Order("chunks", n_chunks, B), N, L, seed=3)
    per_chunk = (N // n_chunks - 1) // L
    assert sched.per_piece == per_chunk and sched.per_epoch == per_chunk * (n_chunks // B)
    E = sched.per_epoch
    starts, resets = sched.window(0, 3 * E)
    bounds = np.linspace(0, N, n_chunks + 1).astype(int)
    chunk = np.searchsorted(bounds, starts, side="right") - 1
    # a reset exactly where a stream starts a chunk, at the chunk's first character
    first_of_chunk = starts == bounds[chunk]
    np.testing.assert_array_equal(resets, first_of_chunk)
    np.testing.assert_array_equal(resets[:, 0], np.arange(3 * E) % per_chunk == 0)
    assert (starts + L + 1 <= bounds[chunk + 1]).all()  # a sequence never crosses into the next
    # within a chunk, consecutive sequences; the state is carried there
    carried = ~resets[1:]
    np.testing.assert_array_equal((starts[1:] - starts[:-1])[carried], L)
    # each epoch deals distinct chunks, in an order that changes from epoch to epoch
    dealt = [chunk[e * E : (e + 1) * E : per_chunk].ravel() for e in range(3)]
    for d in dealt:
        assert len(set(d)) == len(d) == (n_chunks // B) * B
    assert not (np.array_equal(dealt[0], dealt[1]) and np.array_equal(dealt[1], dealt[2]))


def test_random_resets_every_update_and_stays_inside_the_text():
    N, L, B = 500, 20, 5
    sched = schedule(Order("random", batch_size=B), N, L, seed=1)
    starts, resets = sched.window(0, 9000)  # more than two blocks of draws
    assert resets.all()
    assert starts.min() >= 0 and starts.max() + L + 1 <= N
    assert starts.max() == N - L - 1 and starts.min() == 0  # every position can be drawn
    assert len(np.unique(starts[:, 0])) > 100


@pytest.mark.parametrize("order", ORDERS)
def test_any_window_is_the_same_numbers_and_the_global_generator_is_untouched(order):
    sched = schedule(Order(order, 6, 2), 3000, 10, seed=5)
    whole = sched.window(0, 9000)
    before = np.random.get_state()[1].copy()  # noqa: NPY002 (the legacy global generator)
    parts = [sched.window(a, b - a) for a, b in [(0, 37), (37, 4096), (4096, 4100), (4100, 9000)]]
    after = np.random.get_state()[1]  # noqa: NPY002
    np.testing.assert_array_equal(before, after)  # the order never draws from it
    for k in range(2):
        np.testing.assert_array_equal(whole[k], np.concatenate([p[k] for p in parts]))
    other = schedule(Order(order, 6, 2), 3000, 10, seed=6).window(0, 9000)
    if order != "sequential":
        assert not np.array_equal(other[0], whole[0])  # the seed chooses the order


def test_bad_orders_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="n_chunks must be >= batch_size"):
        rnn.Config(order="chunks", n_chunks=4, batch_size=8)
    with pytest.raises(ConfigError, match="parameter order must be one of"):
        rnn.Config(order="shuffled")
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        rnn.Config(batch_size=0)
    with pytest.raises(DataError, match="chunk of 9 is too short for seq_length=10"):
        schedule(Order("chunks", 100), 900, 10, seed=0)
    with pytest.raises(DataError, match="lower batch_size"):
        schedule(Order("sequential", batch_size=100), 900, 10, seed=0)


# --- batches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_batched_gradients_are_the_mean_of_single_sequence_ones(small_problem, cell):
    params, _, _, _ = small_problem(K=9, m=6, T=8, cell=cell, sigma=0.4)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 9, 400)
    starts = np.array([0, 5, 5, 17, 200, 3])  # two identical sequences: repeated columns of U
    X, Y = sequences(ids, starts, 8)
    state0 = 0.3 * rng.standard_normal((params.state_size, len(starts)))
    loss, grads, state = loss_and_grads_batch(params, X, Y, state0)
    singles = [
        rnn.loss_and_grads(params, X[:, b], Y[:, b], state0[:, [b]]) for b in range(len(starts))
    ]
    assert loss == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-12)
    for name, g in grads.items():
        mean = np.mean([getattr(s[1], name) for s in singles], axis=0)
        np.testing.assert_allclose(g, mean, rtol=1e-12, atol=1e-13, err_msg=name)
        assert np.abs(mean).max() > 1e-3  # a gradient that is there to compare
    np.testing.assert_allclose(state, np.concatenate([s[2] for s in singles], axis=1), atol=1e-15)
    ref = streams_mean(params, X, Y, state0)
    assert ref[0] == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("order", ORDERS)
def test_batched_training_follows_its_reference(macbeth, cell, order):
    """The BLAS path against B single-sequence passes averaged, update by update."""
    vocab, ids = macbeth
    m, K, L, B = 12, len(vocab), 10, 4
    params = rnn.init_params(K, m=m, seed=0, cell=cell)
    sched = schedule(Order(order, 8, B), len(ids), L, seed=0)
    spec = spec_for(params, L, 60, B=B)
    fast, ref = new_state(params, spec), new_state(params, spec)
    for _ in range(6):
        _run_updates_batched(fast, 10, ids, spec, K, sched)
        run_updates_reference(ref, 10, ids, spec, K, sched)
        np.testing.assert_allclose(fast.loss[: fast.step], ref.loss[: ref.step], rtol=1e-10)
        np.testing.assert_allclose(fast.theta, ref.theta, atol=1e-10)
        np.testing.assert_allclose(fast.h, ref.h, atol=1e-10)
    assert fast.h.shape == (params.state_size, B)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("B", [1, 3])
def test_the_loops_reset_exactly_where_the_order_says(macbeth, order, B):
    """Update by update: the loss is that of each stream's sequence from a zero state where
    the order resets it, and from the carried state elsewhere."""
    vocab, ids = macbeth
    ids = ids[:1200]  # chunks of 200 characters, 19 sequences each: several resets
    m, K, L, n = 8, len(vocab), 10, 120
    params = rnn.init_params(K, m=m, seed=1, sigma=0.3)
    sched = schedule(Order(order, 6, B), len(ids), L, seed=2)
    spec = spec_for(params, L, n, B=B)
    s = new_state(params, spec)
    s.h[:] = 0.2  # junk that a reset must clear
    starts, resets = sched.window(0, n)
    assert resets[1:].any() and (order == "random" or not resets[1:].all())
    seen = set()
    for step in range(n):
        p = rnn.Params.unflatten(s.theta, m, K)
        X, Y = sequences(ids, starts[step], L)
        fresh = streams_mean(p, X, Y, np.zeros_like(s.h))[0]
        carried = streams_mean(p, X, Y, s.h)[0]
        mixed = streams_mean(p, X, Y, np.where(resets[step], 0.0, s.h))[0]
        run_updates_reference(s, 1, ids, spec, K, sched)
        assert s.loss[step] == pytest.approx(mixed, rel=1e-12)
        if resets[step].all() and abs(fresh - carried) > 1e-6:
            seen.add("reset")
        elif not resets[step].any() and abs(fresh - carried) > 1e-6:
            seen.add("carried")
    assert seen == ({"reset"} if order == "random" else {"reset", "carried"})


@needs_numba
@pytest.mark.parametrize("order", ORDERS)
def test_compiled_single_stream_follows_the_reference_in_every_order(macbeth, order):
    vocab, ids = macbeth
    m, K, L = 20, len(vocab), 25
    params = rnn.init_params(K, m=m, seed=0)
    sched = schedule(Order(order, 5), len(ids), L, seed=4)
    spec = spec_for(params, L, 200)
    s = new_state(params, spec)
    for step in range(200):
        fast = copy.deepcopy(s)
        _run_updates_compiled(fast, 1, ids, spec, K, sched)
        run_updates_reference(s, 1, ids, spec, K, sched)
        assert abs(fast.loss[step] - s.loss[step]) <= 1e-9 * s.loss[step]
        assert np.max(np.abs(fast.theta - s.theta)) < 1e-8
        assert np.max(np.abs(fast.h - s.h)) < 1e-8


@pytest.mark.parametrize("order, B", [("chunks", 1), ("random", 1), ("chunks", 3), ("random", 2)])
def test_a_resumed_run_reads_what_the_uninterrupted_one_did(macbeth, tmp_path, order, B):
    vocab, ids = macbeth
    cut = int(len(ids) * 0.9)
    train_ids, val_ids = ids[:cut], ids[cut:]
    params = rnn.init_params(len(vocab), m=10, seed=0)
    kw = dict(
        seq_length=10, sample_every=50, sample_length=20, val_ids=val_ids, eval_every=40,
        order=order, n_chunks=6, batch_size=B,
    )  # fmt: skip
    full = fit(params, train_ids, n_updates=300, **kw)
    half = fit(params, train_ids, n_updates=120, **kw)  # at a validation pass
    cfg = rnn.Config(m=10, n_updates=300, order=order, n_chunks=6, batch_size=B).to_dict()
    path = tmp_path / "half.npz"
    checkpoint.save(path, half.state, vocab_chars=vocab.chars, config=cfg)
    state, _ = checkpoint.load(path)
    assert state.h.shape == (params.state_size, B)
    resumed = fit(params, train_ids, n_updates=300, resume=state, **kw)
    np.testing.assert_array_equal(resumed.loss, full.loss)
    np.testing.assert_array_equal(resumed.params.flatten(), full.params.flatten())
    np.testing.assert_array_equal(resumed.val_loss, full.val_loss)
    for step in full.samples:
        np.testing.assert_array_equal(resumed.samples[step], full.samples[step])
    with pytest.raises(DataError, match="carries .* streams, this run reads batch_size"):
        fit(params, train_ids, n_updates=300, resume=state, **(kw | {"batch_size": B + 1}))


def test_samples_and_validation_read_the_first_stream(macbeth):
    vocab, ids = macbeth
    params = rnn.init_params(len(vocab), m=10, seed=0)
    result = fit(
        params, ids[:3000], n_updates=40, seq_length=10, sample_every=20, sample_length=5,
        val_ids=ids[3000:3400], eval_every=20, batch_size=3,
    )  # fmt: skip
    assert result.state.h.shape == (params.state_size, 3)
    assert result.best_h.shape == (params.state_size, 1)
    assert sorted(result.samples) == [0, 20]
    assert list(result.val_steps) == [0, 20, 40]
    assert result.per_epoch == (1000 - 1) // 10
    # the validation at update 40 reads from the first stream's carried state
    p = result.params
    expect = mean_loss(p, ids[3000:3400], h0=result.state.h[:, :1])
    assert result.val_loss[-1] == pytest.approx(expect, rel=1e-12)
    assert zero_state(p).shape == (params.state_size, 1)
