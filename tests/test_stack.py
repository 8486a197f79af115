"""rnn.engine.stack: the stacked, batched path against the cells' step-by-step equations,
its gradient against complex steps of its own loss, dropout, precision, carried state and
bad input."""

from __future__ import annotations

import numpy as np
import pytest

import rnn
from rnn.engine.cells import CELLS, GATES, STATE, gru, log_softmax, lstm, vanilla
from rnn.engine.model import Params
from rnn.engine.stack import layer_names, loss_and_grads_stack, loss_stack, matmul_flops, n_layers

STEPS = {"vanilla": vanilla, "lstm": lstm, "gru": gru}


def make_problem(cell, L, m=3, K=5, T=4, B=2, seed=0, dtype=np.float64):
    """Parameters (biases not zero, so that their gradients are tested), inputs, targets and a
    state that is not zero."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    shapes = {"W": (G * m, m), "U": (G * m, K), "b": (G * m, 1), "V": (K, m), "c": (K, 1)}
    for l in range(2, L + 1):
        shapes |= {f"W{l}": (G * m, m), f"U{l}": (G * m, m), f"b{l}": (G * m, 1)}
    P = {name: (0.6 * rng.standard_normal(shapes[name])).astype(dtype) for name in layer_names(L)}
    X, Y = rng.integers(0, K, (T, B)), rng.integers(0, K, (T, B))
    state0 = [(0.4 * rng.standard_normal((STATE[cell] * m, B))).astype(dtype) for _ in range(L)]
    return P, X, Y, state0


def make_masks(L, T, B, m, keep=0.6, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [((rng.random((T, B, m)) < keep) / keep).astype(dtype) for _ in range(L)]


def reference(P, cell, X, Y, state0, masks=None):
    """(loss, states) one sequence, one step and one layer at a time through rnn.engine.cells' own
    step_forward: layer l > 1's input U^l d is handed to the cell as U's only column."""
    L, (T, B) = n_layers(P), X.shape
    K, m = P["V"].shape
    total, states = 0.0, []
    for b in range(B):
        state = [s[:, [b]] for s in state0]
        for t in range(T):
            below = None
            for l in range(1, L + 1):
                s = "" if l == 1 else str(l)
                W, U, bias = P["W" + s], P["U" + s], P["b" + s]
                x = int(X[t, b])
                if l > 1:
                    U, x = U @ below, 0  # (G m, 1): the one column the cell reads
                net = Params(W=W, U=U, b=bias, V=P["V"], c=P["c"])
                state[l - 1], _, _ = STEPS[cell].step_forward(net, x, state[l - 1])
                below = state[l - 1][:m]
                if masks is not None:
                    below = below * masks[l - 1][t, b][:, None]
            total -= log_softmax(P["V"] @ below + P["c"])[Y[t, b], 0]
        states.append(state)
    return total / B, [np.concatenate([s[l] for s in states], axis=1) for l in range(L)]


def complex_step_grads(P, cell, X, Y, state0, masks=None, h=1e-20):
    """dloss/dtheta for every entry, each from Im loss(theta + i h e_j) / h."""
    Pc = {name: a.astype(complex) for name, a in P.items()}
    grads = {}
    for name, a in Pc.items():
        g = np.empty(a.shape)
        for j in np.ndindex(a.shape):
            a[j] += 1j * h
            g[j] = loss_and_grads_stack(Pc, cell, X, Y, state0, masks)[0].imag / h
            a[j] -= 1j * h
        grads[name] = g
    return grads


def assert_close(a, b, rel, name=""):
    """Every entry within rel of the larger array's largest entry."""
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-300)
    assert np.abs(a - b).max() <= rel * scale, (name, np.abs(a - b).max() / scale)


# --- the forward against the cells' equations ---------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dropout", [False, True])
def test_two_layer_loss_and_state_are_the_cells_step_by_step(cell, dropout):
    P, X, Y, state0 = make_problem(cell, L=2, T=5, B=3)
    masks = make_masks(2, 5, 3, 3) if dropout else None
    loss, _, state = loss_and_grads_stack(P, cell, X, Y, state0, masks)
    ref_loss, ref_state = reference(P, cell, X, Y, state0, masks)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for got, want in zip(state, ref_state):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("B", [1, 3])
def test_one_layer_agrees_with_the_single_sequence_reference(cell, B):
    P, X, Y, state0 = make_problem(cell, L=1, m=4, K=6, T=7, B=B, seed=2)
    loss, grads, state = loss_and_grads_stack(P, cell, X, Y, state0)
    params = Params(**P)
    singles = [rnn.loss_and_grads(params, X[:, b], Y[:, b], state0[0][:, [b]]) for b in range(B)]
    assert loss == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-12)
    for name, g in grads.items():
        mean = np.mean([getattr(s[1], name) for s in singles], axis=0)
        assert g.shape == P[name].shape and g.dtype == P[name].dtype
        assert_close(g, mean, 1e-12, name)
        assert np.abs(mean).max() > 1e-3  # a gradient that is there to compare
    np.testing.assert_allclose(state[0], np.concatenate([s[2] for s in singles], axis=1))


# --- the gradient against complex steps -----------------------------------------------------------


@pytest.mark.parametrize(("cell", "L"), [(c, 2) for c in CELLS] + [("lstm", 3)])
def test_stack_gradient_matches_complex_step(cell, L):
    P, X, Y, state0 = make_problem(cell, L=L)
    _, grads, _ = loss_and_grads_stack(P, cell, X, Y, state0)
    want = complex_step_grads(P, cell, X, Y, state0)
    assert list(grads) == list(layer_names(L))
    for name in P:
        assert_close(grads[name], want[name], 1e-10, name)
        assert np.abs(want[name]).max() > 1e-4, name  # every layer's gradient is there


@pytest.mark.parametrize("cell", CELLS)
def test_dropout_gradient_matches_complex_step(cell):
    P, X, Y, state0 = make_problem(cell, L=2, seed=3)
    masks = make_masks(2, *X.shape, 3, keep=0.5)
    _, grads, _ = loss_and_grads_stack(P, cell, X, Y, state0, masks)
    want = complex_step_grads(P, cell, X, Y, state0, masks)
    for name in P:
        assert_close(grads[name], want[name], 1e-10, name)
    _, plain, _ = loss_and_grads_stack(P, cell, X, Y, state0)
    assert not np.allclose(plain["W2"], grads["W2"])  # the masks did something


# --- dropout off, precision, carried state --------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_no_masks_is_bit_identical_and_masks_of_ones_equal(cell):
    P, X, Y, state0 = make_problem(cell, L=2, seed=4)
    a = loss_and_grads_stack(P, cell, X, Y, state0)
    b = loss_and_grads_stack(P, cell, X, Y, state0, masks=None)
    c = loss_and_grads_stack(P, cell, X, Y, state0, masks=make_masks(2, *X.shape, 3, keep=1.0))
    for other in (b, c):
        assert other[0] == a[0]
        for name in P:
            np.testing.assert_array_equal(other[1][name], a[1][name])
        for s, t in zip(other[2], a[2]):
            np.testing.assert_array_equal(s, t)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_agrees_with_float64(cell):
    """Single precision: the loss within 1e-5 relative, every gradient within 1e-4 of its
    largest entry, at char-rnn-like scales (m = 32, 20 steps, 4 sequences)."""
    P, X, Y, state0 = make_problem(cell, L=2, m=32, K=20, T=20, B=4, seed=5)
    P = {name: a / np.sqrt(a.shape[1]) for name, a in P.items()}  # init-like scales
    loss64, g64, s64 = loss_and_grads_stack(P, cell, X, Y, state0)
    f32 = lambda arrays: [a.astype(np.float32) for a in arrays]  # noqa: E731
    P32 = dict(zip(P, f32(P.values())))
    loss32, g32, s32 = loss_and_grads_stack(P32, cell, X, Y, f32(state0))
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for name in P:
        assert g32[name].dtype == np.float32
        assert_close(g32[name].astype(np.float64), g64[name], 1e-4, name)
    for a, b in zip(s32, s64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_two_calls_carrying_the_state_are_one_call_of_twice_the_length(cell):
    P, X, Y, state0 = make_problem(cell, L=2, T=6, B=3, seed=6)
    whole, _, end = loss_and_grads_stack(P, cell, X, Y, state0)
    first, _, middle = loss_and_grads_stack(P, cell, X[:3], Y[:3], state0)
    second, _, end2 = loss_and_grads_stack(P, cell, X[3:], Y[3:], middle)
    assert first + second == pytest.approx(whole, rel=1e-13)
    for a, b in zip(end, end2):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_only_is_the_same_loss_and_state(cell):
    P, X, Y, state0 = make_problem(cell, L=3, T=5, B=2, seed=8)
    loss, _, state = loss_and_grads_stack(P, cell, X, Y, state0)
    loss_only, state_only = loss_stack(P, cell, X, Y, state0)
    assert loss_only == loss
    for a, b in zip(state_only, state):
        np.testing.assert_array_equal(a, b)


def test_results_are_not_views_of_reused_arrays():
    """A later call of the same shapes (the same workspace) leaves earlier results alone."""
    P, X, Y, state0 = make_problem("lstm", L=2, seed=7)
    loss, grads, state = loss_and_grads_stack(P, "lstm", X, Y, state0)
    kept = ({k: v.copy() for k, v in grads.items()}, [s.copy() for s in state])
    loss_and_grads_stack(P, "lstm", Y, X, [2 * s for s in state0])
    for name in P:
        np.testing.assert_array_equal(grads[name], kept[0][name])
    for a, b in zip(state, kept[1]):
        np.testing.assert_array_equal(a, b)
    assert loss_and_grads_stack(P, "lstm", X, Y, state0)[0] == loss


def test_bad_input_is_refused_in_one_line():
    P, X, Y, state0 = make_problem("gru", L=2)
    with pytest.raises(ValueError, match="state0 must be 2 arrays"):
        loss_and_grads_stack(P, "gru", X, Y, state0[:1])
    with pytest.raises(ValueError, match="X and Y"):
        loss_and_grads_stack(P, "gru", X, Y[:2], state0)
    with pytest.raises(ValueError, match="masks must be"):
        loss_and_grads_stack(P, "gru", X, Y, state0, masks=make_masks(2, 3, 2, 3))
    with pytest.raises(ValueError, match="X must hold character indices 0..4"):
        loss_and_grads_stack(P, "gru", X + 5, Y, state0)
    with pytest.raises(ValueError, match="Y must hold"):
        loss_and_grads_stack(P, "gru", X, -Y - 1, state0)
    with pytest.raises(ValueError, match="share one dtype"):
        loss_and_grads_stack(P | {"U2": P["U2"].astype(np.float32)}, "gru", X, Y, state0)
    with pytest.raises(rnn.ConfigError, match="cell"):
        loss_and_grads_stack(P, "lsmt", X, Y, state0)


def test_names_and_flops():
    assert layer_names(3) == ("W", "U", "b", "V", "c", "W2", "U2", "b2", "W3", "U3", "b3")
    assert n_layers(make_problem("vanilla", L=4)[0]) == 4
    # char-rnn's two-layer LSTM: 3 x (2 m 4m (W, W2, U2) + 2 m K), K = 65
    assert matmul_flops("lstm", 2, 128, 65) == 3 * (3 * 2 * 128 * 512 + 2 * 128 * 65)


# --- float32's compiled loops (rnn.engine.kernels.steps32) ----------------------------------------


def _numpy_blas_is_openblas() -> bool:
    from threadpoolctl import threadpool_info

    return any(i.get("internal_api") == "openblas" for i in threadpool_info())


@pytest.fixture
def steps32():
    """The compiled loops, which float32 takes wherever numpy's BLAS is OpenBLAS (numpy's own
    wheels, so CI): there they must be in use, not silently replaced by the numpy loops."""
    import rnn.engine.stack as stack

    if not _numpy_blas_is_openblas():
        pytest.skip("numpy's BLAS is not OpenBLAS: float32 keeps the numpy loops")
    fast = stack._compiled_steps(np.float32)
    assert fast is not None
    assert stack._compiled_steps(np.float64) is None
    return fast


def test_sgemm_from_compiled_code_is_numpys_product(steps32):
    rng = np.random.default_rng(11)
    for M, K, N in ((1, 1, 1), (7, 13, 5), (32, 256, 768)):
        a, b = rng.standard_normal((M, K), np.float32), rng.standard_normal((K, N), np.float32)
        c = np.full((M, N), np.nan, np.float32)
        steps32.matmul(a, b, c)
        np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5 * np.sqrt(K))


def test_tanh32_is_within_5_ulp_of_tanh(steps32):
    x = np.concatenate([np.linspace(-20, 20, 400_001), [0.0, -0.0, 1e-30, -1e-8, 3e-4, 7.9, 7.91]])
    x = x.astype(np.float32)[None, :]
    out = np.empty_like(x)
    steps32.tanh_rows(x, out)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - exact) / ulp) <= 5.0
    assert np.array_equal(np.signbit(out), np.signbit(x))  # odd, -0 included
    special = np.array([[np.nan, np.inf, -np.inf, 100.0]], np.float32)
    steps32.tanh_rows(special, out[:, :4])
    assert np.isnan(out[0, 0])  # a diverged run still shows as one
    np.testing.assert_allclose(out[0, 1:4], [1.0, -1.0, 1.0], rtol=3e-7)  # within 5 ulp


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("m", [13, 32])
def test_float32_compiled_loops_equal_the_numpy_loops(cell, m, steps32, monkeypatch):
    """The same network, batch and dropout through both float32 paths: the loss to 1e-6, every
    gradient and state to 1e-5 of its largest entry (single-precision rounding: the two add in
    different orders inside BLAS and tanh differs by a few ulp)."""
    import rnn.engine.stack as stack

    P, X, Y, state0 = make_problem(cell, L=2, m=m, K=11, T=9, B=5, seed=12)
    f32 = lambda arrays: [a.astype(np.float32) for a in arrays]  # noqa: E731
    P = dict(zip(P, f32(a / np.sqrt(a.shape[1]) for a in P.values())))
    masks = make_masks(2, 9, 5, m, keep=0.7, dtype=np.float32)
    fast = loss_and_grads_stack(P, cell, X, Y, f32(state0), masks)
    monkeypatch.setitem(stack._COMPILED, "steps32", None)
    slow = loss_and_grads_stack(P, cell, X, Y, f32(state0), masks)
    assert fast[0] == pytest.approx(slow[0], rel=1e-6)
    for name in P:
        assert fast[1][name].dtype == np.float32
        assert_close(fast[1][name], slow[1][name], 1e-5, name)
    for a, b in zip(fast[2], slow[2]):
        assert_close(a, b, 1e-5, "state")


def test_float32_without_the_binding_takes_the_numpy_loops(monkeypatch):
    """Where numpy's BLAS cannot be called from compiled code (no OpenBLAS), float32 still
    trains, on the numpy loops."""
    import rnn.engine.stack as stack
    from rnn.engine.kernels import blas

    monkeypatch.setattr(blas, "SGEMM", None)
    monkeypatch.setattr(stack, "_COMPILED", {})
    assert stack._compiled_steps(np.float32) is None
    P, X, Y, state0 = make_problem("gru", L=2, seed=13)
    P32 = {name: a.astype(np.float32) for name, a in P.items()}
    loss32, g32, _ = loss_and_grads_stack(P32, "gru", X, Y, [s.astype(np.float32) for s in state0])
    loss64, g64, _ = loss_and_grads_stack(P, "gru", X, Y, state0)
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for name in P:
        assert_close(g32[name], g64[name], 1e-4, name)
