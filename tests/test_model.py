"""The reference BPTT against two independent derivatives: complex-step and finite differences."""

import numpy as np
import pytest

import rnn
from rnn import kernels
from rnn.model import PARAM_NAMES

from .conftest import small_problem


def complex_step_grads(params, X, Y, h0, step=1e-30):
    """dL/dtheta by the complex-step method, on a forward pass written here from the
    equations alone: Im(L(theta + i*step*e_k)) / step is exact to rounding (no
    subtraction), so it is an independent reference to 1e-10 and better."""

    def loss(P):
        h, total = h0.astype(complex), 0.0
        for x, y in zip(X, Y):
            h = np.tanh(P["W"] @ h + P["U"][:, [x]] + P["b"])
            o = P["V"] @ h + P["c"]
            shift = o.real.max()  # a real constant: the shift cancels analytically
            total = total - (o[y, 0] - shift - np.log(np.exp(o - shift).sum()))
        return total

    grads = {}
    for name in PARAM_NAMES:
        P = {n: getattr(params, n).astype(complex) for n in PARAM_NAMES}
        g = np.zeros(P[name].shape)
        for k in np.ndindex(g.shape):
            P[name][k] += 1j * step
            g[k] = loss(P).imag / step
            P[name][k] -= 1j * step
        grads[name] = g
    return grads


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bptt_matches_complex_step_to_1e10(seed):
    params, X, Y, h0 = small_problem(K=9, m=6, T=12, seed=seed)
    _, grads, _ = rnn.loss_and_grads(params, X, Y, h0)
    ref = complex_step_grads(params, X, Y, h0)
    for name in PARAM_NAMES:
        g = getattr(grads, name)
        assert g.shape == ref[name].shape
        scale = np.abs(ref[name]).max()
        assert np.abs(g - ref[name]).max() <= 1e-10 * max(scale, 1e-12), name


def test_compiled_bptt_matches_reference():
    if not kernels.AVAILABLE:
        pytest.skip("numba not installed")
    params, X, Y, h0 = small_problem(K=11, m=7, T=15, seed=4)
    loss, grads, h = rnn.loss_and_grads(params, X, Y, h0)
    loss_f, grad_f, h_f = kernels.loss_and_grads_flat(
        params.flatten(), X, Y, h0[:, 0], params.m, params.K
    )
    assert loss_f == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(grad_f, grads.flatten(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(h_f, h[:, 0], rtol=0, atol=1e-15)


def test_gradient_check_every_entry_below_1e6_at_m5(text):
    vocab = rnn.Vocab.from_text(text)
    ids = vocab.encode(text)
    params = rnn.init_params(len(vocab), m=5, sigma=0.01, seed=0)
    X, Y = ids[:25], ids[1:26]
    errors = rnn.gradient_check(params, X, Y, np.zeros((5, 1)))
    assert set(errors) == set(PARAM_NAMES)
    for name, err in errors.items():
        assert err < 1e-6, (name, err)


def test_gradient_check_catches_a_wrong_gradient():
    params, X, Y, h0 = small_problem(K=6, m=4, T=6, seed=1)

    def broken(p, X, Y, h0):
        loss, grads, h = rnn.loss_and_grads(p, X, Y, h0)
        grads.W[1, 2] *= 1.01  # a 1% error in one entry
        return loss, grads, h

    errors = rnn.gradient_check(params, X, Y, h0, grad_fn=broken)
    assert errors["W"] > 1e-3
    assert errors["V"] < 1e-6


def test_numerical_grads_leave_params_untouched():
    params, X, Y, h0 = small_problem(K=5, m=3, T=4)
    before = params.flatten()
    rnn.numerical_grads(params, X, Y, h0)
    np.testing.assert_array_equal(params.flatten(), before)


def test_loss_at_initialisation_is_seq_length_ln_K(text):
    vocab = rnn.Vocab.from_text(text)
    ids = vocab.encode(text)
    params = rnn.init_params(len(vocab), m=100, sigma=0.01, seed=0)
    loss, _, _ = rnn.loss_and_grads(params, ids[:25], ids[1:26], np.zeros((100, 1)))
    assert abs(loss - 25 * np.log(len(vocab))) < 0.5


def test_init_params_shapes_and_seed():
    p = rnn.init_params(K=7, m=4, sigma=0.01, seed=3)
    assert {n: a.shape for n, a in p.items()} == {
        "W": (4, 4),
        "U": (4, 7),
        "b": (4, 1),
        "V": (7, 4),
        "c": (7, 1),
    }
    assert all(a.dtype == np.float64 for _, a in p.items())
    assert not p.b.any() and not p.c.any()
    assert 0.005 < p.U.std() < 0.02
    np.testing.assert_array_equal(p.W, rnn.init_params(K=7, m=4, sigma=0.01, seed=3).W)
    assert not np.array_equal(p.W, rnn.init_params(K=7, m=4, sigma=0.01, seed=4).W)


def test_flatten_round_trips():
    p = rnn.init_params(K=7, m=4, seed=1)
    q = rnn.Params.unflatten(p.flatten(), 4, 7)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(getattr(p, name), getattr(q, name))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(K=5, m=0), "m"),
        (dict(K=5, m=-3), "m"),
        (dict(K=0), "K"),
        (dict(K=5, sigma=0.0), "sigma"),
    ],
)
def test_init_params_rejects_nonsense(kwargs, name):
    with pytest.raises(rnn.ConfigError, match=name):
        rnn.init_params(**kwargs)


def test_adagrad_step_is_explicit_and_pure():
    p = rnn.init_params(K=3, m=2, seed=0)
    g = p.map(lambda a: np.full_like(a, 2.0))
    opt = rnn.AdaGrad(eta=0.1)
    G = opt.init(p)
    p1, G1 = opt.step(p, g, G)
    np.testing.assert_allclose(G1.W, 4.0)
    np.testing.assert_allclose(p1.W, p.W - 0.1 * 2.0 / np.sqrt(4.0 + 1e-8))
    assert not G.W.any()  # inputs untouched
    clipped = rnn.clip(p.map(lambda a: np.full_like(a, -9.0)))
    assert clipped.V.min() == -5.0


def test_compiled_exp_and_tanh_agree_with_numpy():
    if not kernels.AVAILABLE:
        pytest.skip("numba not installed")
    x = np.concatenate([np.linspace(-700, 0, 20001), -np.logspace(-20, 2.5, 10001)])
    q, bits = np.empty_like(x), np.empty(len(x), dtype=np.int64)
    y = x.copy()
    total = kernels._exp_shifted(y, q, bits, bits.view(np.float64))
    ref = np.exp(x - x.max())
    assert np.max(np.abs(y - ref) / ref) < 4e-16
    assert total == pytest.approx(ref.sum(), rel=1e-14)
    for a in [
        np.linspace(-30, 30, 40001),
        np.logspace(-20, 1, 10001),
        -np.logspace(-20, 3, 10001),
        np.array([0.0, 400.0, -400.0, 1e-300]),
    ]:
        t = a.copy()
        q, bits = np.empty_like(a), np.empty(len(a), dtype=np.int64)
        kernels._tanh(t, q, bits, bits.view(np.float64))
        ref = np.tanh(a)
        assert np.max(np.abs(t - ref) / np.maximum(np.abs(ref), 1e-300)) < 6e-16
