import functools
import json
import zipfile

import numpy as np
import pytest

import rnn
from rnn.engine import kernels
from rnn.runs import checkpoint

from .training import fit

CONFIG = rnn.Config(m=24, seq_length=20).to_dict()


class Stop(Exception):
    pass


def run(params, ids, val_ids, **kwargs):
    return fit(
        params,
        ids,
        n_updates=400,
        seq_length=20,
        sample_every=100,
        sample_length=30,
        seed=3,
        val_ids=val_ids,
        eval_every=100,
        **kwargs,
    )


@pytest.fixture
def problem(macbeth):
    vocab, ids = macbeth
    train_ids, val_ids = rnn.split_train_val(ids[:6000], 0.1)
    return vocab, train_ids, val_ids, rnn.init_params(len(vocab), m=24, seed=1)


def test_killed_at_half_and_resumed_equals_uninterrupted(problem, tmp_path):
    vocab, ids, val_ids, params = problem
    full = run(params, ids, val_ids)

    path = tmp_path / "ck.npz"
    saver = functools.partial(checkpoint.save, path, vocab_chars=vocab.chars, config=CONFIG)

    def save_then_die(state):
        saver(state)
        if state.step == 200:
            raise Stop  # the process dies right after the checkpoint at N/2

    with pytest.raises(Stop):
        run(params, ids, val_ids, checkpoint=save_then_die, checkpoint_every=100)
    state, meta = checkpoint.load(path)
    assert state.step == 200 and meta["config"] == CONFIG
    resumed = run(params, ids, val_ids, resume=state)

    np.testing.assert_array_equal(resumed.params.flatten(), full.params.flatten())
    np.testing.assert_array_equal(resumed.best_params.flatten(), full.best_params.flatten())
    np.testing.assert_array_equal(resumed.loss, full.loss)
    np.testing.assert_array_equal(resumed.smooth_loss, full.smooth_loss)
    np.testing.assert_array_equal(resumed.val_loss, full.val_loss)
    assert resumed.samples.keys() == full.samples.keys()
    for step in full.samples:
        np.testing.assert_array_equal(resumed.samples[step], full.samples[step])


def test_checkpoint_round_trip_and_its_identity(problem, tmp_path):
    vocab, ids, val_ids, params = problem
    path = tmp_path / "ck.npz"
    sessions = [
        {
            "started": "2026-01-01T00:00:00",
            "finished": "2026-01-01T00:00:01",
            "from": 0,
            "to": 400,
            "seconds": 1.0,
            "build_id": "b",
        }
    ]
    saver = functools.partial(
        checkpoint.save,
        path,
        vocab_chars=vocab.chars,
        config=CONFIG,
        corpus_sha256="abc",
        sessions=sessions,
    )
    result = run(params, ids, val_ids, checkpoint=saver, checkpoint_every=150)
    state, meta = checkpoint.load(path)
    assert state.step == 400 and meta["sessions"] == sessions
    np.testing.assert_array_equal(state.theta, result.params.flatten())
    key = rnn.Config(m=24, seq_length=20).training_key()
    assert checkpoint.differences(meta, key, "abc") == []
    assert checkpoint.differences(meta, key | {"m": 30}, "abc") == ["m: 24 -> 30"]
    assert checkpoint.differences(meta, key, "abd") == [
        "the corpus (another file or other contents)"
    ]
    with zipfile.ZipFile(path) as z:  # plain arrays: nothing in it needs pickle
        assert all(name.endswith(".npy") for name in z.namelist())


def test_arrays_that_do_not_fit_their_metadata_are_refused(problem, tmp_path):
    vocab, ids, val_ids, params = problem
    path = tmp_path / "ck.npz"
    checkpoint.save(path, run(params, ids, val_ids).state, vocab_chars=vocab.chars, config=CONFIG)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "digest"}
    arrays["h"] = np.zeros(7)  # a hidden state of 7 for a network of m = 24
    arrays["digest"] = np.frombuffer(checkpoint._digest(arrays).encode(), dtype=np.uint8)
    np.savez(tmp_path / "odd.npz", **arrays)
    with pytest.raises(rnn.CheckpointError, match="array h has 7 entries, its metadata"):
        checkpoint.load(tmp_path / "odd.npz")


def test_truncated_or_tampered_checkpoint_is_refused(problem, tmp_path):
    vocab, ids, val_ids, params = problem
    path = tmp_path / "ck.npz"
    checkpoint.save(path, run(params, ids, val_ids).state, vocab_chars=vocab.chars, config=CONFIG)
    data = path.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(rnn.CheckpointError, match="truncated.npz: not a readable checkpoint"):
        checkpoint.load(truncated)

    # Change one stored parameter: the file stays a valid .npz, the checksum catches it.
    tampered = tmp_path / "tampered.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["theta"] = arrays["theta"].copy()
    arrays["theta"][0] += 1e-3
    np.savez(tampered, **arrays)
    with pytest.raises(rnn.CheckpointError, match="do not match their checksum"):
        checkpoint.load(tampered)

    with pytest.raises(rnn.CheckpointError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "missing.npz")


def test_a_failed_write_leaves_the_previous_checkpoint(problem, tmp_path, monkeypatch):
    vocab, ids, val_ids, params = problem
    path = tmp_path / "ck.npz"
    state = run(params, ids, val_ids).state
    checkpoint.save(path, state, vocab_chars=vocab.chars, config=CONFIG)
    before = path.read_bytes()

    def dies_halfway(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, state, vocab_chars=vocab.chars, config=CONFIG | {"eta": 1.0})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


def test_a_checkpoint_of_other_training_code_is_another_run(problem, tmp_path, monkeypatch):
    vocab, ids, val_ids, params = problem
    path = tmp_path / "ck.npz"
    checkpoint.save(
        path,
        run(params, ids, val_ids).state,
        vocab_chars=vocab.chars,
        config=CONFIG,
        corpus_sha256="abc",
    )
    _, meta = checkpoint.load(path)
    key = rnn.Config(m=24, seq_length=20).training_key()
    assert checkpoint.differences(meta, key, "abc") == []
    monkeypatch.setattr(checkpoint, "CODE_SHA256", "0" * 64)  # the code changed since
    assert checkpoint.differences(meta, key, "abc") == [
        "the training code (the network, its kernels or the training loop)"
    ]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda meta, arrays: meta.update(rng="garbage"), "random generator's state"),
        (lambda meta, arrays: meta.update(sessions="oops"), "training sessions"),
        (lambda meta, arrays: arrays.update(theta=arrays["theta"].astype(str)), "not float64"),
        (lambda meta, arrays: meta.update(vocab=5), "vocabulary is not of K="),
    ],
)
def test_edited_checkpoints_with_a_valid_checksum_are_refused(problem, tmp_path, change, message):
    vocab, ids, val_ids, params = problem
    path = tmp_path / "ck.npz"
    checkpoint.save(path, run(params, ids, val_ids).state, vocab_chars=vocab.chars, config=CONFIG)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "digest"}
    meta = json.loads(arrays["meta"].tobytes())
    change(meta, arrays)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    arrays["digest"] = np.frombuffer(checkpoint._digest(arrays).encode(), dtype=np.uint8)
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(rnn.CheckpointError, match=message):
        checkpoint.load(tmp_path / "edited.npz")


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
@pytest.mark.parametrize("backend", ["reference", "numba"] if kernels.AVAILABLE else ["reference"])
def test_an_interrupted_run_of_each_optimizer_continues_bit_identically(
    problem, tmp_path, optimizer, backend
):
    """Adam's m, v and t (RMSProp's G) are saved and restored: the continued run is the
    uninterrupted one, bit for bit."""
    vocab, ids, val_ids, _ = problem
    cfg = rnn.Config(assignment="adam", optimizer=optimizer, m=24, seq_length=20, n_updates=400)
    spec = cfg.train_spec().replace(sample_every=100, sample_length=30, eval_every=100)
    params = spec.init_params(len(vocab))

    def train(**given):
        controls = rnn.Controls(backend=backend, **given.pop("controls", {}))
        return rnn.train(params, ids, spec, val_ids=val_ids, controls=controls, **given)

    full = train()
    path = tmp_path / "ck.npz"
    saver = functools.partial(checkpoint.save, path, vocab_chars=vocab.chars, config=cfg.to_dict())

    def save_then_die(state):
        saver(state)
        if state.step == 200:
            raise Stop

    with pytest.raises(Stop):
        train(controls=dict(checkpoint=save_then_die, checkpoint_every=100))
    state, meta = checkpoint.load(path)
    assert state.step == 200 and meta["config"]["optimizer"] == optimizer
    assert sorted(state.opt) == sorted(rnn.engine.optim.state_names(optimizer))
    if optimizer == "adam":
        assert state.opt["t"].tolist() == [200] and state.opt["v"].any()
    resumed = train(resume=state)
    np.testing.assert_array_equal(resumed.params.flatten(), full.params.flatten())
    np.testing.assert_array_equal(resumed.loss, full.loss)
    np.testing.assert_array_equal(resumed.val_loss, full.val_loss)
    for name in full.state.opt:
        np.testing.assert_array_equal(resumed.state.opt[name], full.state.opt[name])
    # a state of another shape is refused, not silently reinterpreted (AdaGrad and RMSProp
    # both keep a G: the training key, which names the optimizer, tells their runs apart)
    if optimizer == "adam":
        with pytest.raises(rnn.DataError, match="optimizer state"):
            rnn.train(params, ids, spec.replace(optimizer="adagrad"), resume=state)


def test_a_checkpoint_of_format_3_loads_with_adagrads_G(problem, tmp_path):
    """Before the optimizers became a family, AdaGrad's G was stored as "G" (format 3)."""
    vocab, ids, val_ids, params = problem
    result = run(params, ids, val_ids)
    path = tmp_path / "ck.npz"
    old_config = {k: v for k, v in CONFIG.items() if k not in rnn.runs.config.PRESETS["adam"]}
    old_config |= {"eta": 0.1}
    checkpoint.save(path, result.state, vocab_chars=vocab.chars, config=old_config)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "digest"}
    arrays["G"] = arrays.pop("opt_G")
    meta = json.loads(arrays["meta"].tobytes()) | {"format": 3}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    arrays["digest"] = np.frombuffer(checkpoint._digest(arrays).encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    state, meta = checkpoint.load(tmp_path / "old.npz")
    assert list(state.opt) == ["G"]
    np.testing.assert_array_equal(state.opt["G"], result.state.opt["G"])
    again = run(params, ids, val_ids, resume=state)  # and it trains on as AdaGrad
    np.testing.assert_array_equal(again.params.flatten(), result.params.flatten())


def test_a_checkpoint_of_format_4_loads_as_one_float64_layer(problem, tmp_path):
    """Format 4 had no layers, dtype, validation seconds or time budget: it reads as one
    float64 layer, its validation seconds unknown (NaN), not stopped by a budget."""
    vocab, ids, val_ids, params = problem
    result = run(params, ids, val_ids)
    path = tmp_path / "ck.npz"
    old_config = {k: v for k, v in CONFIG.items() if k not in ("layers", "dtype", "dropout")}
    checkpoint.save(path, result.state, vocab_chars=vocab.chars, config=old_config)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in ("digest", "val_seconds")}
    meta = json.loads(arrays["meta"].tobytes()) | {"format": 4}
    del meta["budget_stop"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    arrays["digest"] = np.frombuffer(checkpoint._digest(arrays).encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    state, meta = checkpoint.load(tmp_path / "old.npz")
    assert state.budget_stop == -1 and state.val_seconds == []
    np.testing.assert_array_equal(state.theta, result.state.theta)
    from rnn.engine.train import result_of

    old = result_of(state, "vanilla", 24, len(vocab), result.per_epoch)
    assert old.best_params.layers == 1 and not old.stopped_by_budget
    assert np.isnan(old.val_seconds).all() and len(old.val_seconds) == len(old.val_steps)


def test_a_float32_checkpoint_whose_arrays_are_not_its_dtype_is_refused(problem, tmp_path):
    vocab, ids, val_ids, params = problem
    result = run(params, ids, val_ids)
    path = tmp_path / "ck.npz"
    config = CONFIG | {"dtype": "float32"}  # says float32, holds float64
    checkpoint.save(path, result.state, vocab_chars=vocab.chars, config=config)
    with pytest.raises(rnn.CheckpointError, match="array theta is float64, not float32"):
        checkpoint.load(path)
