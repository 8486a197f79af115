"""The gradient check: float64 on every platform, the same verdict, sampled for large K."""

import numpy as np
import pytest

import rnn
from rnn.engine import gradcheck
from rnn.engine.model import CELLS, PARAM_NAMES


@pytest.fixture
def float64_only(monkeypatch):
    """Extended precision switched off (np.longdouble is float64 on Windows and Apple silicon),
    and every forward pass of the check asserted to run in float64."""
    monkeypatch.setattr(np, "longdouble", np.float64)
    forward = gradcheck.sequence_losses

    def float64_forward(params, X, Y, state0):
        assert all(a.dtype == np.float64 for _, a in params.items()) and state0.dtype == np.float64
        return forward(params, X, Y, state0)

    monkeypatch.setattr(gradcheck, "sequence_losses", float64_forward)


@pytest.mark.parametrize("cell", CELLS)
def test_the_reports_check_passes_in_float64(float64_only, macbeth, cell):
    """Part I of the report at the default parameters, on Macbeth: K its vocabulary, m =
    check_m, seq_length characters, the report's initialisation."""
    vocab, ids = macbeth
    cfg = rnn.Config(cell=cell)
    params = rnn.init_params(len(vocab), m=cfg.check_m, sigma=cfg.sigma, seed=cfg.seed, cell=cell)
    X, Y = ids[: cfg.seq_length], ids[1 : cfg.seq_length + 1]
    errors = rnn.gradient_check(params, X, Y, rnn.engine.model.zero_state(params))
    assert set(errors) == set(PARAM_NAMES)
    for name, err in errors.items():
        assert err < gradcheck.PASS_BELOW, (cell, name, err)
        assert err.checked == err.size == getattr(params, name).size  # every entry


@pytest.mark.parametrize("cell", CELLS)
def test_the_current_editions_case_passes_for_the_mean_loss(float64_only, macbeth, cell):
    """The mean loss and the scaled initialisation, as the adam preset trains: the check
    differences the mean too, and a wrong scale of the gradients would fail it."""
    vocab, ids = macbeth
    params = rnn.init_params(67, m=10, seed=0, cell=cell, init="scaled")
    X, Y, h0 = ids[:25], ids[1:26], rnn.engine.model.zero_state(params)
    errors = rnn.gradient_check(params, X, Y, h0, "mean")
    assert max(errors.values()) < gradcheck.PASS_BELOW, (cell, errors)

    def summed(p, X, Y, h0, loss):  # the sum's gradients against the mean's differences
        return rnn.loss_and_grads(p, X, Y, h0, "sum")

    assert rnn.gradient_check(params, X, Y, h0, "mean", grad_fn=summed)["V"] > 0.5


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("seed, sigma", [(0, 0.1), (1, 0.3), (2, 0.5)])
def test_random_cases_pass_in_float64(float64_only, small_problem, cell, seed, sigma):
    params, X, Y, state0 = small_problem(K=40, m=5, T=25, seed=seed, sigma=sigma, cell=cell)
    errors = rnn.gradient_check(params, X, Y, state0)
    assert max(errors.values()) < gradcheck.PASS_BELOW, (cell, errors)


def test_gradient_check_catches_a_wrong_gradient(small_problem):
    params, X, Y, h0 = small_problem(K=6, m=4, T=6, seed=1)

    def broken(p, X, Y, h0, loss):
        loss, grads, h = rnn.loss_and_grads(p, X, Y, h0, loss)
        grads.W[1, 2] *= 1.01  # a 1% error in one entry
        return loss, grads, h

    errors = rnn.gradient_check(params, X, Y, h0, grad_fn=broken)
    assert errors["W"] > 1e-3
    assert errors["V"] < gradcheck.PASS_BELOW


@pytest.mark.parametrize("cell", CELLS)
def test_readable_and_batched_differences_agree(small_problem, cell):
    params, X, Y, state0 = small_problem(K=5, m=3, T=6, seed=2, sigma=0.5, cell=cell)
    batched = rnn.numerical_grads(params, X, Y, state0)
    for name in PARAM_NAMES:
        x = getattr(params, name)
        before = x.copy()
        readable = gradcheck.eval_numerical_gradient(
            lambda: rnn.engine.model.sequence_losses(params, X, Y, state0), x
        )
        np.testing.assert_array_equal(x, before)  # every entry restored
        np.testing.assert_allclose(getattr(batched, name), readable, rtol=1e-9, atol=1e-12)


def test_numerical_grads_leave_params_untouched(small_problem):
    params, X, Y, h0 = small_problem(K=5, m=3, T=4)
    before = params.flatten()
    rnn.numerical_grads(params, X, Y, h0)
    np.testing.assert_array_equal(params.flatten(), before)


def test_large_vocabulary_is_checked_on_a_stated_sample():
    K, m = 5000, 5
    rng = np.random.default_rng(0)
    params = rnn.init_params(K, m=m, sigma=0.01, seed=0)
    ids = rng.integers(0, K, 26).astype(np.uint16)
    errors = rnn.gradient_check(params, ids[:25], ids[1:], rnn.engine.model.zero_state(params))
    assert (errors["W"].checked, errors["W"].size) == (m * m, m * m)  # small: every entry
    assert (errors["U"].checked, errors["U"].size) == (gradcheck.SAMPLE, m * K)
    assert (errors["c"].checked, errors["c"].size) == (gradcheck.SAMPLE, K)
    assert errors["U"].sampled and not errors["b"].sampled
    assert max(errors.values()) < gradcheck.PASS_BELOW
    again = rnn.gradient_check(params, ids[:25], ids[1:], rnn.engine.model.zero_state(params))
    assert {n: float(e) for n, e in again.items()} == {n: float(e) for n, e in errors.items()}
