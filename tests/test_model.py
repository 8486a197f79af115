"""The reference BPTT of every cell against derivatives computed independently of it."""

import numpy as np
import pytest

import rnn
from rnn.engine.model import CELLS, PARAM_NAMES


def sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def forward_from_the_equations(cell, P, x, state, m):
    """One step of `cell` written from its equations alone (complex-safe); returns (state, h)."""
    W, U, b = P["W"], P["U"], P["b"]
    if cell == "vanilla":
        h = np.tanh(W @ state + U[:, [x]] + b)
        return h, h
    if cell == "lstm":
        h, s = state[:m], state[m:]
        z = W @ h + U[:, [x]] + b
        i, f, o, g = sig(z[:m]), sig(z[m : 2 * m]), sig(z[2 * m : 3 * m]), np.tanh(z[3 * m :])
        s = f * s + i * g
        h = o * np.tanh(s)
        return np.vstack([h, s]), h
    h = state
    z = sig(W[:m] @ h + U[:m, [x]] + b[:m])
    r = sig(W[m : 2 * m] @ h + U[m : 2 * m, [x]] + b[m : 2 * m])
    n = np.tanh(W[2 * m :] @ (r * h) + U[2 * m :, [x]] + b[2 * m :])
    h = (1 - z) * h + z * n
    return h, h


def complex_step_grads(cell, params, X, Y, state0, mean=False, step=1e-30):
    """dL/dtheta by the complex-step method on the forward pass above: Im(L(theta + i step
    e_k)) / step is exact to rounding (no subtraction), an independent reference to 1e-10.
    mean: of the mean loss, the sum divided by the number of characters."""

    def loss(P):
        state, total = state0.astype(complex), 0.0
        for x, y in zip(X, Y):
            state, h = forward_from_the_equations(cell, P, x, state, params.m)
            o = P["V"] @ h + P["c"]
            shift = o.real.max()  # a real constant: the shift cancels analytically
            total = total - (o[y, 0] - shift - np.log(np.exp(o - shift).sum()))
        return total / len(X) if mean else total

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


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bptt_matches_complex_step_to_1e10(small_problem, cell, seed):
    params, X, Y, state0 = small_problem(K=9, m=6, T=12, seed=seed, sigma=0.5, cell=cell)
    _, grads, _ = rnn.loss_and_grads(params, X, Y, state0)
    ref = complex_step_grads(cell, params, X, Y, state0)
    for name in PARAM_NAMES:
        g = getattr(grads, name)
        assert g.shape == ref[name].shape
        scale = np.abs(ref[name]).max()
        assert np.abs(g - ref[name]).max() <= 1e-10 * max(scale, 1e-12), (cell, name)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("seed", [0, 1])
def test_mean_loss_gradients_match_complex_step_to_1e10(small_problem, cell, seed):
    params, X, Y, state0 = small_problem(K=9, m=6, T=12, seed=seed, sigma=0.5, cell=cell)
    total, _, _ = rnn.loss_and_grads(params, X, Y, state0)
    loss, grads, _ = rnn.loss_and_grads(params, X, Y, state0, "mean")
    assert loss == pytest.approx(total / len(X), rel=1e-15)
    ref = complex_step_grads(cell, params, X, Y, state0, mean=True)
    for name in PARAM_NAMES:
        g = getattr(grads, name)
        scale = np.abs(ref[name]).max()
        assert np.abs(g - ref[name]).max() <= 1e-10 * max(scale, 1e-12), (cell, name)


@pytest.mark.parametrize("cell", CELLS)
def test_scaled_init_draws_each_block_with_its_own_variance(cell):
    K, m = 60, 80
    p = rnn.init_params(K, m, seed=0, cell=cell, init="scaled")
    gates = p.W.shape[0] // m
    for k in range(gates):  # every gate's block alike
        W, U = p.W[k * m : (k + 1) * m], p.U[k * m : (k + 1) * m]
        assert W.std() == pytest.approx(np.sqrt(1 / (2 * m)), rel=0.05)
        assert U.std() == pytest.approx(np.sqrt(1 / (2 * K)), rel=0.05)
    assert p.V.std() == pytest.approx(np.sqrt(1 / m), rel=0.05)
    assert not p.c.any()
    forget = slice(m, 2 * m) if cell == "lstm" else slice(0, 0)
    assert not np.delete(p.b, forget).any() and (p.b[forget] == 1).all()
    sigma = rnn.init_params(K, m, sigma=0.3, seed=0, cell=cell)
    assert sigma.W.std() == pytest.approx(0.3, rel=0.05)  # the earlier rule, same draws
    np.testing.assert_allclose(sigma.W / 0.3, p.W / np.sqrt(1 / (2 * m)))


@pytest.mark.parametrize("cell", CELLS)
def test_forward_matches_the_equations(small_problem, cell):
    params, X, Y, state0 = small_problem(K=9, m=6, T=12, seed=3, sigma=0.5, cell=cell)
    loss, _, state = rnn.loss_and_grads(params, X, Y, state0)
    P = dict(params.items())
    s, total = state0, 0.0
    for x, y in zip(X, Y):
        s, h = forward_from_the_equations(cell, P, x, s, params.m)
        o = P["V"] @ h + P["c"]
        total += np.log(np.exp(o - o.max()).sum()) + o.max() - o[y, 0]
    assert loss == pytest.approx(total, rel=1e-13)
    np.testing.assert_allclose(state, s, rtol=0, atol=1e-15)


@pytest.mark.parametrize("cell", CELLS)
def test_step_backward_without_target_or_grads(small_problem, cell):
    """y=None: only the carried gradient flows back; grads=None: nothing is accumulated.
    d state_T / d state_0 through steps without targets equals the complex-step Jacobian."""
    params, X, _, state0 = small_problem(K=7, m=4, T=5, seed=1, sigma=0.8, cell=cell)
    caches, state = [], state0
    for x in X:
        state, _, cache = rnn.engine.model.step_forward(params, int(x), state)
        caches.append(cache)
    S, P = params.state_size, {n: a.astype(complex) for n, a in params.items()}
    for k in range(S):
        d = np.zeros((S, 1))
        d[k] = 1.0
        for cache in reversed(caches):
            d = rnn.engine.model.step_backward(None, d, cache, params, None)
        for j in range(S):
            s = state0.astype(complex)
            s[j] += 1e-30j
            for x in X:
                s, _ = forward_from_the_equations(cell, P, x, s, params.m)
            assert d[j, 0] == pytest.approx(s[k, 0].imag / 1e-30, rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_loss_at_initialisation_is_seq_length_ln_K(text, cell):
    vocab = rnn.Vocab.from_text(text)
    ids = vocab.encode(text)
    params = rnn.init_params(len(vocab), m=100, sigma=0.01, seed=0, cell=cell)
    loss, _, _ = rnn.loss_and_grads(
        params, ids[:25], ids[1:26], rnn.engine.model.zero_state(params)
    )
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


@pytest.mark.parametrize("cell, gates, S", [("vanilla", 1, 4), ("lstm", 4, 8), ("gru", 3, 4)])
def test_gated_shapes_and_properties(cell, gates, S):
    p = rnn.init_params(K=7, m=4, sigma=0.01, seed=3, cell=cell)
    assert p.W.shape == (gates * 4, 4) and p.U.shape == (gates * 4, 7)
    assert p.b.shape == (gates * 4, 1) and p.V.shape == (7, 4) and p.c.shape == (7, 1)
    assert (p.cell, p.m, p.K, p.state_size) == (cell, 4, 7, S)
    expected_b = np.zeros((gates * 4, 1))
    if cell == "lstm":
        expected_b[4:8] = 1.0  # the forget gate's bias (gates i, f, o, g)
    np.testing.assert_array_equal(p.b, expected_b)
    q = rnn.Params.unflatten(p.flatten(), 4, 7, cell)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(getattr(p, name), getattr(q, name))
    state, logp, _ = rnn.engine.model.step_forward(p, 3, rnn.engine.model.zero_state(p))
    assert state.shape == (S, 1) and logp.shape == (7, 1)


def test_unknown_cell_is_refused():
    with pytest.raises(rnn.ConfigError, match="parameter cell"):
        rnn.init_params(K=5, m=3, cell="transformer")
    with pytest.raises(rnn.ConfigError, match="parameter cell"):
        rnn.Params.unflatten(np.zeros(10), 2, 2, cell="lstn")


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
    state = opt.init(p)
    p1, state1 = opt.step(p, g, state)
    np.testing.assert_allclose(state1["G"].W, 4.0)
    np.testing.assert_allclose(p1.W, p.W - 0.1 * 2.0 / np.sqrt(4.0 + 1e-8))
    assert not state["G"].W.any()  # inputs untouched
    clipped = rnn.clip(p.map(lambda a: np.full_like(a, -9.0)))
    assert clipped.V.min() == -5.0


def test_half_of_a_sampled_U_lies_in_the_columns_the_sequence_reads():
    from rnn.engine.gradcheck import SAMPLE, entries_to_check

    params = rnn.init_params(2000, m=5, seed=0)  # U has 10,000 entries: sampled
    X = np.array([3, 17, 17, 400])
    picked = entries_to_check(params, seed=1, X=X)["U"]
    assert len(picked) == len(set(picked)) == SAMPLE
    live = (np.arange(5)[:, None] * 2000 + np.array([3, 17, 400])).ravel()  # 15 < SAMPLE / 2
    assert np.isin(live, picked).all()
    errors = rnn.gradient_check(params, X, np.array([17, 17, 400, 3]), rnn.zero_state(params))
    assert errors["U"].sampled and 0 < errors["U"] < 1e-6  # nonzero: real gradients compared
