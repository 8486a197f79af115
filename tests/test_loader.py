"""A finished run is a folder with a typed loader: rnn.runs.driver.Run.load reads back exactly what
training produced, and trains nothing; read_run is what the report notebook shows."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import rnn
from rnn.engine import kernels
from rnn.engine.model import PARAM_NAMES
from rnn.runs import checkpoint, driver

MACBETH = Path(__file__).parent / "data" / "macbeth-act1.txt"


@pytest.fixture
def refuse_training(monkeypatch):
    """Every way into the training loop fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the training loop was called")

    monkeypatch.setattr(driver, "train", refuse)
    monkeypatch.setattr(kernels, "run_updates", refuse)
    monkeypatch.setattr(sys.modules["rnn.engine.train"], "run_updates_reference", refuse)


def assert_same_result(a, b):
    """Two TrainResults bit for bit: curves, samples, parameters, the best model and state."""
    for name in ("loss", "smooth_loss", "val_steps", "val_loss", "best_h"):
        got, want = getattr(a, name), getattr(b, name)
        assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True), name
    for which in ("params", "best_params"):
        pa, pb = getattr(a, which), getattr(b, which)
        assert pa.cell == pb.cell
        for name in PARAM_NAMES:
            assert np.array_equal(getattr(pa, name), getattr(pb, name)), (which, name)
    assert a.samples.keys() == b.samples.keys()
    for step in a.samples:
        assert np.array_equal(a.samples[step], b.samples[step]), step
    for name in ("best_step", "best_by", "per_epoch", "seconds", "epochs"):
        assert getattr(a, name) == getattr(b, name), name


def test_the_loader_reads_back_what_training_produced(finished_run, refuse_training):
    folder, trained = finished_run
    loaded = driver.Run.load(folder)
    assert_same_result(loaded.result, trained.result)
    assert loaded.cfg == trained.cfg
    assert loaded.checkpoint == folder / driver.FINAL
    assert loaded.sessions == trained.sessions
    # the corpus: the file the run recorded, re-read, its vocabulary and both splits
    corpus = loaded.data.corpus
    assert corpus.path == MACBETH.resolve() and corpus.sha256 == trained.data.corpus.sha256
    assert corpus.vocab.chars == trained.data.vocab.chars
    assert np.array_equal(loaded.data.train_ids, trained.data.train_ids)
    assert np.array_equal(loaded.data.val_ids, trained.data.val_ids)
    # what the report shows of it: samples at every sample_every, validation at eval_every
    cfg = trained.cfg
    assert list(loaded.result.samples) == list(range(0, cfg.n_updates, cfg.sample_every))
    expected = list(range(0, cfg.n_updates, cfg.eval_every)) + [cfg.n_updates]
    assert list(loaded.result.val_steps) == expected
    assert loaded.provenance.startswith("rendered from the finished run of ")


def test_a_build_reads_its_own_run_as_trained_in_this_build(finished_run, tmp_path):
    folder, trained = finished_run
    build_id = trained.sessions[-1]["build_id"]  # "" here: as python -m rnn train leaves it
    copy = shutil.copytree(folder, tmp_path / "run")
    ckpt = copy / driver.FINAL
    state, meta = checkpoint.load(ckpt)
    sessions = [dict(s, build_id="b1") for s in meta["sessions"]]
    checkpoint.save(
        ckpt,
        state,
        vocab_chars=meta["vocab"],
        config=meta["config"],
        corpus_sha256=meta["corpus_sha256"],
        sessions=sessions,
    )
    assert driver.Run.load(copy, build_id="b1").provenance == (
        f"trained in this build ({sessions[-1]['seconds']:.1f} s)"
    )
    assert driver.Run.load(copy, build_id=build_id or "other").provenance.startswith("rendered")


def test_reusing_a_finished_run_trains_nothing(finished_run, tmp_path, refuse_training):
    folder, trained = finished_run
    copy = shutil.copytree(folder, tmp_path / "run")
    data = driver.prepare(trained.cfg, MACBETH)
    again = driver.run(trained.cfg, data, copy)
    assert_same_result(again.result, trained.result)
    assert again.provenance.startswith("rendered from the finished run of ")


def test_an_unfinished_run_is_not_shown_as_finished(finished_run, tmp_path):
    folder, trained = finished_run
    cfg = rnn.Config(**(trained.cfg.to_dict() | {"n_updates": 400}))
    out = tmp_path / "run"
    with pytest.raises(rnn.Interrupted):
        stop = driver.Controls(should_stop=iter([0, 0, 1]).__next__)
        driver.run(cfg, driver.prepare(cfg, MACBETH), out, controls=stop)
    partial = out / driver.PARTIAL
    with pytest.raises(rnn.RNNError) as err:
        driver.Run.load(partial)
    message = str(err.value)
    assert "\n" not in message and f"{partial}: an unfinished run, at update " in message
    assert "of 400; run the command that made it again" in message


def test_the_corpus_must_be_the_text_the_run_was_trained_on(finished_run, tmp_path):
    folder, _ = finished_run
    edited = tmp_path / "macbeth.txt"
    edited.write_text(MACBETH.read_text(encoding="utf-8") + "x", encoding="utf-8")
    with pytest.raises(rnn.DataError, match=r"macbeth.txt: not the text .* was trained on"):
        driver.Run.load(folder, corpus=edited)
    # a run that records no corpus (made before runs recorded it) says what to give
    copy = shutil.copytree(folder, tmp_path / "run")
    state, meta = checkpoint.load(copy / driver.FINAL)
    sessions = [{k: v for k, v in s.items() if k != "corpus"} for s in meta["sessions"]]
    checkpoint.save(
        copy / driver.FINAL,
        state,
        vocab_chars=meta["vocab"],
        config=meta["config"],
        corpus_sha256=meta["corpus_sha256"],
        sessions=sessions,
    )
    with pytest.raises(rnn.DataError, match="records no corpus file; give the text"):
        driver.Run.load(copy)
    assert driver.Run.load(copy, corpus=MACBETH).data.corpus.path == MACBETH


def test_read_run_without_a_run_says_which_command_makes_one(tmp_path, refuse_training):
    cfg = rnn.Config()
    with pytest.raises(rnn.RNNError) as err:
        driver.read_run(cfg, tmp_path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"no finished run in {tmp_path}: ")
    assert "`make report`" in message and "python -m rnn train" in message
    assert "train_if_missing = True" in message


def test_read_run_refuses_a_run_of_other_training_parameters(finished_run, refuse_training):
    folder, trained = finished_run
    other = rnn.Config(**(trained.cfg.to_dict() | {"eta": 0.05, "m": 8}))
    with pytest.raises(rnn.RNNError, match=r"a run of other parameters \(m = 16 there, 8 here; "):
        driver.read_run(other, folder)
    # report parameters are the notebook's own: they change what is drawn, not which run
    shown = rnn.Config(**(trained.cfg.to_dict() | {"passage_length": 7, "title": "Mine"}))
    found = driver.read_run(shown, folder)
    assert found.cfg == shown and found.checkpoint == folder / driver.FINAL
    assert_same_result(found.result, trained.result)


def test_read_run_trains_when_asked(finished_run, tmp_path, capsys):
    _, trained = finished_run
    cfg = rnn.Config(**(trained.cfg.to_dict() | {"n_updates": 120, "analysis": False}))
    made = driver.read_run(cfg, tmp_path, data_path=str(MACBETH), train_if_missing=True)
    assert made.checkpoint == tmp_path / driver.FINAL and len(made.result.loss) == 120
    assert "update 120 of 120" in capsys.readouterr().err  # visibly: the progress lines
    assert_same_result(driver.read_run(cfg, tmp_path).result, made.result)
