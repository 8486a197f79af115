"""The verdict on a finished run (rnn.verdict), on real runs: one whose loss rises without
diverging, one whose validation never improves, healthy ones."""

import numpy as np
import pytest

import rnn

from .training import fit


@pytest.fixture(scope="module")
def macbeth():
    from tests.conftest import _macbeth

    vocab, ids = _macbeth()
    split = int(len(ids) * 0.95)
    return len(vocab), ids[:split], ids[split:]


def test_a_run_whose_loss_rises_failed(macbeth):
    K, train, val = macbeth
    params = rnn.init_params(K, m=16, sigma=0.01, seed=0)
    result = fit(
        params, train, n_updates=1000, eta=5.0, val_ids=val, eval_every=250, sample_every=None
    )
    # finite, and not past rnn.engine.train's divergence limit: a run that finished, badly
    assert np.isfinite(result.smooth_loss).all()
    assert result.smooth_loss[-1] > 2 * result.smooth_loss[0]
    found = rnn.verdict(result)
    assert found.failed
    first, last = result.smooth_loss[0], result.smooth_loss[-1]
    assert found.findings[0] == (
        f"the smooth loss rose from {first:,.1f} to {last:,.1f} over 1,000 updates"
    )
    assert found.advice == "lower eta"
    assert found.line.startswith("training failed: the smooth loss rose from ")
    assert found.line.endswith(": lower eta")
    # validation got worse too, so the best model is the untrained one, and it says so
    assert result.best_step == 0
    assert "the best model is the untrained one" in found.findings[1]


def test_the_same_run_without_validation_names_the_initial_best_model(macbeth):
    K, train, _ = macbeth
    params = rnn.init_params(K, m=16, sigma=0.01, seed=0)
    result = fit(params, train, n_updates=1000, eta=5.0, sample_every=None)
    found = rnn.verdict(result)
    assert found.failed and result.best_by == "smooth loss" and result.best_step == 0
    assert found.findings[1] == (
        "the best model (by smooth loss) is the initial one: no update improved on it"
    )


def test_a_run_whose_validation_never_improves_failed():
    # Training text that cycles a, b, c; held-out text that cycles the other way: the model
    # learns its training text (the smooth loss falls) and reads the held-out text worse.
    vocab = rnn.Vocab.from_text("abc")
    train, val = vocab.encode("abc" * 400), vocab.encode("cba" * 40)
    params = rnn.init_params(3, m=8, sigma=0.01, seed=0)
    result = fit(
        params, train, n_updates=400, eta=0.1, val_ids=val, eval_every=100, sample_every=None
    )
    assert result.smooth_loss[-1] < result.smooth_loss[0]
    assert result.val_loss[1:].min() > result.val_loss[0]
    found = rnn.verdict(result)
    assert found.failed
    assert len(found.findings) == 1
    assert found.findings[0].startswith("the validation loss never fell below its value before")
    assert "the best model is the untrained one" in found.findings[0]
    assert found.advice.startswith("lower eta or train for more updates")
    # the same training text, judged without the odd held-out text, is a success
    alone = fit(params, train, n_updates=400, eta=0.1, sample_every=None)
    assert not rnn.verdict(alone).failed and rnn.verdict(alone).line == ""


def test_a_healthy_run_and_a_run_of_no_updates_did_not_fail(macbeth):
    K, train, val = macbeth
    params = rnn.init_params(K, m=16, sigma=0.01, seed=0)
    result = fit(
        params, train, n_updates=1000, eta=0.1, val_ids=val, eval_every=250, sample_every=None
    )
    assert result.best_step > 0
    assert rnn.verdict(result) == rnn.Verdict(failed=False)
    none = fit(params, train, n_updates=0, val_ids=val, eval_every=250, sample_every=None)
    assert not rnn.verdict(none).failed


def test_a_short_run_whose_loss_rose_is_told_to_train_longer(macbeth):
    """At the defaults the smooth loss climbs over the first updates: 100 updates are no
    reason to lower eta."""
    K, train, _ = macbeth
    params = rnn.init_params(K, m=100, seed=0)
    result = fit(params, train, n_updates=100, sample_every=None)
    found = rnn.verdict(result)
    assert found.failed and found.findings[0].startswith("the smooth loss rose from")
    assert found.advice == "train for more updates (100 are too few to judge a run by)"
