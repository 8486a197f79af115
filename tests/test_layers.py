"""The stacked layers' reference BPTT (rnn.engine.model.loss_and_grads_layers): against the complex
step, against the single layer's reference, with and without dropout."""

import numpy as np
import pytest

import rnn
from rnn.engine.model import CELLS, Params, init_network, loss_and_grads_layers, split_state
from rnn.engine.spec import TrainSpec


def stack_problem(cell, layers=2, K=7, m=4, T=6, B=3, seed=0, dtype="float64"):
    """A random L-layer network with nonzero biases, inputs and targets (T, B), and states."""
    spec = TrainSpec(cell=cell, m=m, layers=layers, seed=seed, init="sigma", sigma=0.5)
    P = init_network(K, spec)
    rng = np.random.default_rng(seed + 100)
    for l in range(1, layers + 1):
        P.layer(l)[2][:] += 0.1 * rng.standard_normal(P.layer(l)[2].shape)
    P.c[:] = 0.1 * rng.standard_normal(P.c.shape)
    X, Y = rng.integers(0, K, (T, B)), rng.integers(0, K, (T, B))
    states = [0.1 * rng.standard_normal((P.layer_state_size, B)) for _ in range(layers)]
    return P.astype(dtype), X, Y, states


def dropout_masks(P, T, B, p, seed=0):
    rng = np.random.default_rng(seed)
    keep = 1.0 - p
    return [np.where(rng.random((T, B, P.m)) < keep, 1.0 / keep, 0.0) for _ in range(P.layers)]


def complex_step(P, X, Y, states, masks, step=1e-30):
    """dL/dtheta entry by entry: Im L(theta + i step e_k) / step, from the forward pass alone."""
    grads = {}
    for name, value in P.items():
        Pc = P.map(lambda a: a.astype(complex))
        g = np.zeros(value.shape)
        for k in np.ndindex(value.shape):
            getattr(Pc, name)[k] += 1j * step
            loss, _, _ = loss_and_grads_layers(Pc, P.cell, X, Y, states, masks)
            g[k] = loss.imag / step
            getattr(Pc, name)[k] -= 1j * step
        grads[name] = g
    return grads


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_two_layer_bptt_matches_complex_step(cell, dropout):
    P, X, Y, states = stack_problem(cell)
    masks = dropout_masks(P, *X.shape, dropout) if dropout else None
    _, grads, _ = loss_and_grads_layers(P, cell, X, Y, states, masks)
    ref = complex_step(P, X, Y, states, masks)
    assert list(grads.names()) == ["W", "U", "b", "V", "c", "W2", "U2", "b2"]
    for name, g in grads.items():
        scale = np.abs(ref[name]).max()
        assert scale > 0, name  # every parameter's gradient is exercised
        assert np.abs(g - ref[name]).max() <= 1e-9 * scale, (cell, name)


@pytest.mark.parametrize("cell", CELLS)
def test_one_layer_equals_the_single_sequence_reference(cell, small_problem):
    params, X, Y, state0 = small_problem(K=9, m=6, T=12, seed=1, sigma=0.5, cell=cell)
    loss, grads, state = rnn.loss_and_grads(params, X, Y, state0)
    loss_l, grads_l, states = loss_and_grads_layers(params, cell, X[:, None], Y[:, None], [state0])
    assert loss_l == pytest.approx(loss, rel=1e-15)
    for name, g in grads.items():
        np.testing.assert_allclose(getattr(grads_l, name), g, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(states[0], state)


@pytest.mark.parametrize("cell", CELLS)
def test_one_layer_batch_agrees_with_the_batch_path(cell):
    from rnn.engine.batch import loss_and_grads_batch

    P, X, Y, states = stack_problem(cell, layers=1, B=4)
    loss, grads, state = loss_and_grads_batch(P, X, Y, states[0])
    loss_l, grads_l, states_l = loss_and_grads_layers(P, cell, X, Y, states)
    assert loss_l == pytest.approx(loss, rel=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(getattr(grads_l, name), g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(states_l[0], state, rtol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_masks_none_is_bit_identical_to_masks_of_ones(cell):
    P, X, Y, states = stack_problem(cell, layers=3)
    ones = [np.ones(X.shape + (P.m,)) for _ in range(P.layers)]
    a = loss_and_grads_layers(P, cell, X, Y, states)
    b = loss_and_grads_layers(P, cell, X, Y, states, ones)
    assert a[0] == b[0]
    for name, g in a[1].items():
        np.testing.assert_array_equal(getattr(b[1], name), g)
    for s, t in zip(a[2], b[2]):
        np.testing.assert_array_equal(s, t)


def test_dropout_changes_the_loss_and_leaves_the_carried_state_undropped():
    P, X, Y, states = stack_problem("lstm", layers=2)
    masks = dropout_masks(P, *X.shape, 0.5)
    plain, dropped = (loss_and_grads_layers(P, "lstm", X, Y, states, mk) for mk in (None, masks))
    assert dropped[0] != plain[0]
    # the state after the steps differs (layer 2 read dropped inputs) but layer 1's does not:
    # it reads the characters, and its own h is carried undropped
    np.testing.assert_array_equal(dropped[2][0], plain[2][0])
    assert not np.array_equal(dropped[2][1], plain[2][1])


@pytest.mark.parametrize("cell", CELLS)
def test_stacked_single_steps_agree_with_the_batch_reference(cell):
    """model.step_forward / loss_and_grads on the stacked state column are the same network."""
    P, X, Y, states = stack_problem(cell, layers=2, B=1)
    column = np.concatenate(states)
    loss, grads, state = rnn.loss_and_grads(P, X[:, 0], Y[:, 0], column)
    loss_l, grads_l, states_l = loss_and_grads_layers(P, cell, X, Y, states)
    assert loss == pytest.approx(loss_l, rel=1e-14)
    np.testing.assert_allclose(state, np.concatenate(states_l), rtol=1e-14)
    for name, g in grads.items():
        np.testing.assert_allclose(getattr(grads_l, name), g, rtol=1e-12, atol=1e-15)
    assert [s.shape for s in split_state(P, column)] == [s.shape for s in states]


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_check_covers_every_layer(cell):
    P, X, Y, states = stack_problem(cell, layers=2, B=1)
    errors = rnn.gradient_check(P, X[:, 0], Y[:, 0], np.concatenate(states))
    assert set(errors) == set(P.names())
    assert max(errors.values()) < 1e-6


def test_params_keep_the_single_layer_order_and_draws():
    one = rnn.init_params(11, 5, 0.01, seed=3, cell="gru")
    two = init_network(11, TrainSpec(cell="gru", m=5, layers=2, seed=3))
    assert one.names() == ("W", "U", "b", "V", "c")
    n = one.flatten().size
    np.testing.assert_array_equal(two.flatten()[:n], one.flatten())  # the same first draws
    assert two.U2.shape == (15, 5) and two.state_size == 2 * one.state_size
    back = Params.unflatten(two.flatten(), 5, 11, "gru", 2)
    np.testing.assert_array_equal(back.flatten(), two.flatten())
    with pytest.raises(ValueError, match="theta has"):
        Params.unflatten(two.flatten(), 5, 11, "gru", 3)


def test_scaled_init_of_an_upper_layer_reads_m_inputs():
    m = 200
    P = init_network(30, TrainSpec(cell="vanilla", m=m, layers=2, init="scaled", seed=0))
    assert P.U2.std() == pytest.approx(np.sqrt(1 / (2 * m)), rel=0.05)
    assert P.U.std() == pytest.approx(np.sqrt(1 / (2 * 30)), rel=0.05)


def test_lstm_forget_biases_start_at_one_in_every_layer():
    P = init_network(9, TrainSpec(cell="lstm", m=3, layers=3))
    for l in range(1, 4):
        b = P.layer(l)[2]
        assert (b[3:6] == 1).all() and not np.delete(b, np.s_[3:6]).any()


def test_float32_network_and_optimizers_stay_float32():
    spec = TrainSpec(cell="lstm", m=4, layers=2, dtype="float32", optimizer="adam", eta=1e-3)
    P = init_network(7, spec)
    assert all(a.dtype == np.float32 for _, a in P.items())
    X = np.array([[1, 2], [3, 4], [5, 6]])
    states = [np.zeros((P.layer_state_size, 2), np.float32)] * 2
    loss, grads, out = loss_and_grads_layers(P, "lstm", X, X[::-1], states)
    assert isinstance(loss, float)
    assert all(g.dtype == np.float32 for _, g in grads.items())
    assert all(s.dtype == np.float32 for s in out)
    for opt in (rnn.engine.optim.Adam(), rnn.engine.optim.AdaGrad(), rnn.engine.optim.RMSProp()):
        state = opt.init(P)
        nxt, state = opt.step(P, grads, state)
        assert all(a.dtype == np.float32 for _, a in nxt.items())
        flat = rnn.engine.optim.flat_state(state)
        assert all(a.dtype == np.float32 for k, a in flat.items() if k != "t")
        back = rnn.engine.optim.unflat_state(flat, 4, 7, "lstm", 2)
        assert set(back) == set(flat)


# --- training a stack: resume, precision, the time budget, the learning-rate schedule -------


class Stop(Exception):
    pass


@pytest.fixture
def macbeth_split(macbeth):
    vocab, ids = macbeth
    return (vocab, *rnn.split_train_val(ids[:6000], 0.1))


def test_a_killed_two_layer_float32_dropout_run_resumes_bit_identically(macbeth_split, tmp_path):
    from rnn.runs import checkpoint

    vocab, ids, val_ids = macbeth_split
    cfg = rnn.Config(
        assignment="adam", cell="lstm", m=12, seq_length=10, n_updates=120, batch_size=4,
        layers=2, dropout=0.3, dtype="float32", lr_decay=0.5, lr_decay_after=1,
    )  # fmt: skip
    spec = cfg.train_spec().replace(sample_every=40, sample_length=20, eval_every=40)
    params = spec.init_params(len(vocab))

    def train(**given):
        controls = rnn.Controls(**given.pop("controls", {}))
        return rnn.train(params, ids, spec, val_ids=val_ids, controls=controls, **given)

    full = train()
    path = tmp_path / "ck.npz"

    def save_then_die(state):
        checkpoint.save(path, state, vocab_chars=vocab.chars, config=cfg.to_dict())
        if state.step == 80:
            raise Stop

    with pytest.raises(Stop):
        train(controls=dict(checkpoint=save_then_die, checkpoint_every=40))
    state, meta = checkpoint.load(path)
    assert state.step == 80 and state.theta.dtype == np.float32
    assert state.h.shape == (2 * 2 * 12, 4)  # both layers' [h; s] for each of 4 streams
    resumed = train(resume=state)
    assert full.params.layers == 2 and full.params.dtype == np.float32
    np.testing.assert_array_equal(resumed.params.flatten(), full.params.flatten())
    np.testing.assert_array_equal(resumed.best_params.flatten(), full.best_params.flatten())
    np.testing.assert_array_equal(resumed.loss, full.loss)
    np.testing.assert_array_equal(resumed.val_loss, full.val_loss)
    np.testing.assert_array_equal(resumed.state.h, full.state.h)
    for step in full.samples:
        np.testing.assert_array_equal(resumed.samples[step], full.samples[step])
    # and without dropout, the same run is another (dropout really acts while training)
    plain = rnn.train(params, ids, spec.replace(dropout=0.0), val_ids=val_ids)
    assert not np.array_equal(plain.loss, full.loss)


def test_float32_training_agrees_with_float64_over_100_updates(macbeth_split):
    """Float32 (about 7 digits) follows float64 over 100 Adam updates of a 2-layer GRU: the
    losses within 1e-5 relative and the weights (of order 1) within 1e-5 absolute (measured:
    4.5e-8 and 3.3e-7)."""
    vocab, ids, _ = macbeth_split
    base = rnn.Config(assignment="adam", cell="gru", m=16, layers=2, n_updates=100, batch_size=4)
    spec = base.train_spec().replace(sample_every=None, eval_every=None)
    runs = {}
    for dtype in ("float64", "float32"):
        s = spec.replace(dtype=dtype)
        runs[dtype] = rnn.train(s.init_params(len(vocab)), ids, s)
    a, b = runs["float64"], runs["float32"]
    assert b.params.dtype == np.float32 and a.params.dtype == np.float64
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-5)
    np.testing.assert_allclose(b.params.flatten(), a.params.flatten(), rtol=0, atol=1e-5)
    assert np.abs(b.params.flatten() - a.params.flatten()).max() > 0  # two precisions indeed


def test_a_tiny_time_budget_stops_training_and_keeps_the_best(macbeth_split):
    vocab, ids, val_ids = macbeth_split
    spec = rnn.Config(m=8, layers=2, n_updates=1_000_000, time_budget=0.5).train_spec()
    spec = spec.replace(sample_every=None, eval_every=25)
    result = rnn.train(spec.init_params(len(vocab)), ids, spec, val_ids=val_ids)
    n = len(result.loss)
    assert result.stopped_by_budget and 0 < n < spec.n_updates
    assert result.state.budget_stop == n == result.state.step
    assert np.isfinite(result.loss).all()  # only the updates made
    assert result.val_steps[-1] == n  # validated where it stopped
    assert result.best_step == result.val_steps[np.argmin(result.val_loss)]
    # the validation curve against seconds, up to the budget and a little past it
    seconds = result.val_seconds
    assert len(seconds) == len(result.val_loss) and (np.diff(seconds) > 0).all()
    assert 0.5 <= seconds[-1] < 0.5 + 5
    assert not rnn.verdict(result).failed or "time_budget" in rnn.verdict(result).advice


def test_the_learning_rate_decays_per_epoch_as_char_rnn():
    spec = rnn.Config(eta=0.1, lr_decay=0.5, lr_decay_after=2).train_spec()
    etas = [rnn.engine.optim.decayed_eta(spec, epoch) for epoch in range(5)]
    assert etas == [0.1, 0.1, 0.05, 0.025, 0.0125]  # after epochs 2, 3, 4 end
    assert rnn.engine.optim.decayed_eta(spec.replace(lr_decay=1.0), 9) == 0.1


def test_lr_decay_changes_training_only_after_the_epochs_it_waits(macbeth_split):
    vocab, ids, _ = macbeth_split
    spec = rnn.Config(m=8, n_updates=500, seq_length=25).train_spec()
    spec = spec.replace(sample_every=None, eval_every=None)
    per_epoch = (len(ids) - 1) // 25
    params = spec.init_params(len(vocab))
    plain = rnn.train(params, ids, spec)
    decayed = rnn.train(params, ids, spec.replace(lr_decay=0.5, lr_decay_after=1))
    np.testing.assert_array_equal(decayed.loss[:per_epoch], plain.loss[:per_epoch])
    assert not np.array_equal(decayed.loss[per_epoch + 1 :], plain.loss[per_epoch + 1 :])


def test_the_anneal_falls_to_zero_in_fixed_steps_over_the_last_updates():
    from rnn.engine.optim import anneal_factor, next_eta_change, scheduled_eta
    from rnn.report.heading import run_line

    spec = rnn.Config(eta=0.1, n_updates=1000, lr_anneal=0.4).train_spec()
    per_epoch = 10**6  # no epoch's end in sight
    assert [anneal_factor(spec, s) for s in (0, 599, 600, 603)] == [1.0, 1.0, 1.0, 1.0]
    assert anneal_factor(spec, 604) == pytest.approx(0.99)  # 400 updates, 100 steps of 4
    assert anneal_factor(spec, 999) == pytest.approx(0.01)  # small, never 0
    factors = [anneal_factor(spec, s) for s in range(1000)]
    assert all(a >= b for a, b in zip(factors, factors[1:])) and len(set(factors)) == 100
    assert [next_eta_change(spec, s, per_epoch) for s in (0, 599, 600, 997)] == [600] * 2 + [
        604,
        1000,
    ]
    decayed = spec.replace(lr_decay=0.5, lr_decay_after=1)  # the two schedules multiply
    assert scheduled_eta(decayed, 700, 300) == pytest.approx(0.1 * 0.5**2 * (1 - 100 / 400))
    assert next_eta_change(decayed, 550, 300) == 600  # the anneal's start, before epoch 2's end
    assert next_eta_change(decayed, 850, 300) == 852  # an anneal step, before epoch 3's end
    off = spec.replace(lr_anneal=0.0)
    assert {anneal_factor(off, s) for s in range(1000)} == {1.0}
    assert next_eta_change(off, 5, per_epoch) == 1000
    said = spec.describe()  # the report's training paragraph, and its run line
    assert "falls linearly towards 0 over the last 400 of the 1,000 updates" in said
    assert "over all 1,000 updates" in spec.replace(lr_anneal=1.0).describe()
    assert "falls linearly" not in off.describe()
    rows = [("cell", "gru"), ("n_updates", "1,000")]
    assert "η falling to 0 over the last 40% of updates" in run_line(rows + [("lr_anneal", "0.4")])
    assert "η falling to 0 over the run" in run_line(rows + [("lr_anneal", "1.0")])
    assert "η falling" not in run_line(rows + [("lr_anneal", "0.0")])
    with pytest.raises(rnn.ConfigError, match="lr_anneal: 0.004 of n_updates=100 is no whole"):
        rnn.Config(n_updates=100, lr_anneal=0.004)  # an anneal of no update: refused, not ignored


def test_an_annealed_run_is_the_same_however_training_splits_its_work(macbeth_split, monkeypatch):
    vocab, ids, _ = macbeth_split
    spec = rnn.Config(m=8, n_updates=400, seq_length=25, lr_anneal=0.5).train_spec()
    spec = spec.replace(sample_every=None, eval_every=None)
    params = spec.init_params(len(vocab))
    plain = rnn.train(params, ids, spec.replace(lr_anneal=0.0))
    annealed = rnn.train(params, ids, spec)
    monkeypatch.setattr(rnn.engine.train, "CHUNK_UPDATES", 3)  # other calls, the same rates
    split = rnn.train(params, ids, spec)
    np.testing.assert_array_equal(split.loss, annealed.loss)
    np.testing.assert_array_equal(annealed.loss[:200], plain.loss[:200])  # before the anneal
    assert not np.array_equal(annealed.loss[201:], plain.loss[201:])


# --- every way in: the command line trains, reuses and samples a stack ------------------------


def test_the_command_line_trains_a_stack_to_its_time_budget_then_reuses_and_samples_it(
    tmp_path, capsys
):
    from pathlib import Path

    from rnn.cli.commands import main
    from rnn.runs import checkpoint

    corpus = Path(__file__).parent / "data" / "macbeth-act1.txt"
    args = ["train", "--data", str(corpus), "--out", str(tmp_path), "--quiet", "--m", "8"]
    args += ["--layers", "2", "--dtype", "float32", "--dropout", "0.1", "--batch_size", "4"]
    args += ["--n_updates", "1000000", "--time_budget", "0.5", "--eval_every", "50"]
    main(args)  # a run this short may not learn: its exit status is the verdict's
    out = capsys.readouterr().out
    state, meta = checkpoint.load(tmp_path / "checkpoint.npz")
    n = state.step
    assert 0 < n < 1_000_000 and state.budget_stop == n
    assert f"time budget of 0.5 s reached: training stopped at update {n:,} of 1,000,000" in out
    assert f"{n:,} updates (" in out and "1,000,000 updates" not in out.split("reached")[1]
    assert state.theta.dtype == np.float32 and meta["config"]["layers"] == 2
    assert len(state.val_seconds) == len(state.val_steps) and state.val_steps[-1] == n

    assert main(args) in (0, 1)  # the same command again: the run is finished, not continued
    assert "nothing to train" in capsys.readouterr().out

    sample = ["sample", "--checkpoint", str(tmp_path / "checkpoint.npz"), "--length", "40"]
    for extra in ([], ["--final", "--prime", "MACBETH"]):
        assert main(sample + extra) == 0
        text = capsys.readouterr().out
        prime = "MACBETH" if extra else "?"  # or the vocabulary's first character
        assert len(text) == len(prime) + 40 + 1 and (not extra or text.startswith(prime))


# --- the report says what was trained ----------------------------------------------------------


def test_the_report_names_depth_dropout_precision_budget_and_decay_and_a_budget_stop(
    macbeth_split,
):
    from rnn.report import heading, metrics, network, results

    vocab, ids, val_ids = macbeth_split
    cfg = rnn.Config(
        m=8, layers=2, dropout=0.2, dtype="float32", n_updates=1_000_000, time_budget=0.3,
        lr_decay=0.97, lr_decay_after=3, eval_every=20,
    )  # fmt: skip
    result = rnn.train(cfg.train_spec().init_params(len(vocab)), ids, cfg.train_spec(),
                       val_ids=val_ids)  # fmt: skip
    n = len(result.loss)
    facts = metrics.metrics(result, cfg)
    assert facts["updates"] == n and facts["stopped_by_budget"] is True
    assert len(facts["val_seconds"]) == len(facts["val_loss"]) == len(facts["val_steps"])
    summary = results.summary_html(facts, len(val_ids))
    assert f"<b>Training.</b> {n:,} updates" in summary
    assert "stopped by the time budget of 0.3 s (of 1,000,000 updates allowed)" in summary
    rows = [(k, heading.shown(v)) for k, v in cfg.to_dict().items()]
    rows.append((heading.BUDGET_ROW, heading.shown(n)))
    line = heading.run_line(rows)
    assert "vanilla cell, m = 8, 2 layers, dropout 0.2, float32" in line
    assert f"{n:,} of 1,000,000 updates" in line and "stopped by the time budget" in line
    assert "η × 0.97 per epoch after epoch 3" in line and "time budget 0.3 s" in line
    plain = heading.run_line([(k, heading.shown(v)) for k, v in rnn.Config().to_dict().items()])
    assert not any(w in plain for w in ("layers", "dropout", "float", "budget", "per epoch"))
    described = cfg.train_spec().describe()
    for words in ("stacks 2 layers", "dropped with probability 0.2", "float32",
                  "0.3 s of training", "multiplied by 0.97"):  # fmt: skip
        assert words in described
    assert "layer" not in rnn.Config().train_spec().describe()
    assert "stacks 2 such layers" in network.model_html("gru", "sum", 2)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 3])
def test_the_stacks_forward_for_validation_equals_the_step_by_step_one(cell, layers):
    """mean_loss of a stack or a float32 network (rnn.engine.stack's forward, in chunks of VAL_CHUNK
    steps with the state carried across) against sequence_losses' step-by-step loop."""
    from rnn.engine.model import sequence_losses
    from rnn.engine.train import VAL_CHUNK, mean_loss

    P, X, Y, states = stack_problem(cell, layers=layers, T=VAL_CHUNK + 500, B=1)
    column = np.concatenate(states)
    ids = np.concatenate([X[:1, 0], Y[:, 0]])  # mean_loss reads ids[:-1] -> ids[1:]
    ref = sequence_losses(P, ids[:-1], ids[1:], column)
    if layers > 1:  # one float64 layer takes the compiled or reference path instead
        assert mean_loss(P, ids, h0=column) == pytest.approx(ref.mean(), rel=1e-12)
    P32 = P.astype(np.float32)
    assert mean_loss(P32, ids, h0=column) == pytest.approx(ref.mean(), rel=1e-5)


def test_uniform_init_draws_every_array_within_one_over_root_m():
    from rnn.runs.config import Config

    spec = Config(init="uniform", cell="lstm", layers=2, m=16).train_spec()
    params = init_network(7, spec)
    r = 1 / np.sqrt(16)
    for name, value in params.items():
        assert np.abs(value).max() <= r, name
        assert np.abs(value).max() > 0.8 * r, name  # drawn, not zero: the biases too
    again = init_network(7, spec)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(params.items(), again.items()))
    assert "U(−1/√m, 1/√m)" in spec.describe()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [2, 3])
def test_the_fast_stack_equals_the_readable_reference(cell, layers):
    """rnn.engine.stack (what training runs) against model.loss_and_grads_layers (the loop over each
    layer's step), with dropout: the same loss, gradients and carried states."""
    from rnn.engine.stack import loss_and_grads_stack

    P, X, Y, states = stack_problem(cell, layers=layers)
    masks = dropout_masks(P, *X.shape, 0.3)
    loss, grads, after = loss_and_grads_layers(P, cell, X, Y, states, masks)
    fast_loss, fast_grads, fast_after = loss_and_grads_stack(
        dict(P.items()), cell, X, Y, states, masks
    )
    assert fast_loss == pytest.approx(loss, rel=1e-12)
    assert sorted(fast_grads) == sorted(P.names())
    for name, g in grads.items():
        np.testing.assert_allclose(fast_grads[name], g, rtol=1e-10, atol=1e-13, err_msg=name)
    for a, b in zip(fast_after, after, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
