"""A stack of L recurrent layers over a batch of B sequences, in the parameters' precision.

Layer 1 reads the characters, layer l > 1 reads the (dropped-out) h of layer l - 1, and the
output layer reads the top layer's:

    a^1_t = W h^1_{t-1} + U x_t + b,        a^l_t = W^l h^l_{t-1} + U^l d^{l-1}_t + b^l
    h^l_t = cell(a^l_t, state^l_{t-1})     (rnn.engine.cells' equations, the same gate blocks)
    d^l_t = h^l_t * mask^l_t               (inverted dropout: entries 0 or 1/keep; none: d = h)
    o_t = V d^L_t + c,   p_t = softmax(o_t),   loss = (1/B) sum_b sum_t -ln p_t[y_t]

Parameters are a mapping name -> array: W, U, b, V, c for layer 1 and the output (a 1-layer
network is exactly rnn.engine.model.Params), then W2, U2, b2, ..., WL, UL, bL. Their dtype (float32,
float64, or complex128 for the complex-step check) is the computation's.

Rows are sequences: a layer's h is (B, m) at each step, its activations (T, B, G m), so that
every product that does not wait on the recurrence runs ONCE over all T B rows:

- forward: layer 1's U x_t + b for all steps is a gather of the rows of (U + b)^T (x is
  one-hot), a higher layer's U^l d^{l-1}_t + b^l one (T B, m) x (m, G m) product; only
  h_{t-1} W^T (B, m) x (m, G m) waits for the previous step.
- backward: per step only dz_t W (B, G m) x (G m, m); then dW = dZ^T H_prev, dU = dZ^T D_below
  and dD_below = dZ U are single (rows, T B) x (T B, cols) products.

Arrays are reused from call to call (a workspace per shape and dtype; a call is therefore not
re-entrant from two threads at once). In float64 and complex128 a layer's steps are the loops
below: a step's tanh runs through numpy's ufuncs with out= (vectorised, SIMD), the rest of its
elementwise work through one or two small compiled loops. In float32 the same loops run
compiled, a layer's T steps in one call (rnn.engine.kernels.steps32, where numpy's BLAS can be
called from compiled code; else the loops below). Threads: whatever BLAS is given; the bench
and the race pin it to one. bench/stack.py measures it; README's "Stacked layers" gives the
figures.
"""

from __future__ import annotations

import numpy as np

from rnn.engine.cells import GATES, STATE, check_cell
from rnn.engine.jit import jit

__all__ = ["layer_names", "loss_and_grads_stack", "loss_stack", "matmul_flops", "n_layers"]


def layer_names(L: int) -> tuple[str, ...]:
    """The parameters' names in order: W, U, b, V, c, W2, U2, b2, ..., WL, UL, bL."""
    return ("W", "U", "b", "V", "c") + tuple(f"{n}{l}" for l in range(2, L + 1) for n in "WUb")


def n_layers(P) -> int:
    """L, from the names present (W2 means at least two layers, and so on)."""
    L = 1
    while f"W{L + 1}" in P:
        L += 1
    return L


def matmul_flops(cell: str, L: int, m: int, K: int) -> int:
    """The model's matrix-multiply FLOPs per character of training (forward and backward):
    forward 2 m G m for each layer's W and each higher layer's U, and 2 m K for V; backward
    twice that (the gradient of the weights and of their input). Layer 1's U x is a gather of
    one column (x one-hot) and its dU a scatter: no product, not counted."""
    G = GATES[cell]
    return 3 * (2 * m * G * m * (2 * L - 1) + 2 * m * K)


def _layer(P, l: int):
    """(W, U, b) of layer l = 1..L."""
    s = "" if l == 1 else str(l)
    return P["W" + s], P["U" + s], P["b" + s]


# --- the workspace: every array a call needs, allocated once per shape and dtype ---------------


class _Workspace:
    def __init__(self, cell: str, L: int, T: int, B: int, m: int, K: int, dtype):
        G = GATES[cell]
        e = lambda *shape: np.empty(shape, dtype)  # noqa: E731
        # pre-activations, then gate values (layer 1's is made afresh by each call's gather)
        self.A = [None] + [e(T, B, G * m) for _ in range(L - 1)]
        self.H = [e(T + 1, B, m) for _ in range(L)]  # h_0 .. h_T
        self.D = None  # d = h * mask, (T, B, m) a layer, made at the first call with dropout
        self.S = [e(T + 1, B, m) for _ in range(L)] if cell == "lstm" else None  # s_0 .. s_T
        self.TS = [e(T, B, m) for _ in range(L)] if cell == "lstm" else None  # tanh(s_t)
        self.RH = [e(T, B, m) for _ in range(L)] if cell == "gru" else None  # r * h_{t-1}
        self.DZ = e(T, B, G * m)  # dL/da of the layer being differentiated
        self.dD = [e(T, B, m), e(T, B, m)]  # dL/dd from above, for this layer and the next
        self.O = e(T * B, K)  # o, then ln p, then dL/do
        self.tG = e(B, G * m)
        self.tm = [e(B, m) for _ in range(4)]
        # the compiled steps' constants in the parameters' dtype: a float64 literal would
        # turn float32 arithmetic into float64 and halve its speed
        self.one, self.half = np.dtype(dtype).type(1), np.dtype(dtype).type(0.5)


_WORKSPACES: dict = {}


def _workspace(cell, L, T, B, m, K, dtype) -> _Workspace:
    key = (cell, L, T, B, m, K, np.dtype(dtype))
    ws = _WORKSPACES.get(key)
    if ws is None:
        if len(_WORKSPACES) >= 4:  # a few shapes at once (training, validation); not more
            _WORKSPACES.clear()
        ws = _WORKSPACES[key] = _Workspace(cell, L, T, B, m, K, dtype)
    return ws


# --- each cell over the T steps of one layer: forward beside backward ---------------------------
# Forward: A[t] holds U x_t + b on entry (every step's, computed at once) and the gates on exit.
# WT is W^T as its own C-ordered array (h_{t-1} W^T as a plain product runs about 1.3x faster
# than through a transposed view, in OpenBLAS at these sizes), W's rows of the sigmoid gates
# halved, and so were U's and b's in A: then
# sigma(a) = (1 + tanh(a / 2)) / 2 takes ONE tanh over the step's whole contiguous (B, G m)
# block (halving is exact: the numbers are those of sigma(a) itself).
# Backward: dD (T, B, m) is dL/dh_t from above (the output or the next layer, through the mask);
# DZ[t] receives dL/da_t. A step's elementwise work without a tanh is one compiled loop (numpy
# would make a dozen passes over small strided blocks, each costing more than its arithmetic).

HALVED = {"vanilla": 0, "lstm": 3, "gru": 2}  # gate blocks (first rows of W, U, b) with a sigma


def _vanilla_forward(WT, A, H, ws, lay):
    tG = ws.tG
    for t in range(len(A)):
        np.matmul(H[t], WT, out=tG)  # a = W h + U x + b
        np.add(A[t], tG, out=A[t])
        np.tanh(A[t], out=H[t + 1])  # h = tanh(a)


def _vanilla_backward(W, dD, ws, lay):
    H, DZ, dnext = ws.H[lay], ws.DZ, ws.tm[0]
    dnext[...] = 0.0
    for t in range(len(dD) - 1, -1, -1):
        _vanilla_step_backward(dD[t], dnext, H[t + 1], DZ[t], ws.one)
        np.matmul(DZ[t], W, out=dnext)  # dh_{t-1} = W^T da


@jit
def _vanilla_step_backward(dD, dnext, h, da, one):
    """da = dh (1 - h^2) (tanh' = 1 - tanh^2), dh = dD + dnext: from above and from t+1."""
    B, m = h.shape
    for b in range(B):
        for j in range(m):
            da[b, j] = (dD[b, j] + dnext[b, j]) * (one - h[b, j] * h[b, j])


def _lstm_forward(WT, A, H, ws, lay):
    S, TS, tG = ws.S[lay], ws.TS[lay], ws.tG
    m = H.shape[2]
    for t in range(len(A)):
        z = A[t]  # gates i, f, o, g
        np.matmul(H[t], WT, out=tG)  # z = W h + U x + b (i, f, o rows halved)
        np.add(z, tG, out=z)
        np.tanh(z, out=z)
        _lstm_gates(z, S[t], S[t + 1], ws.half)  # i, f, o = sigma(z); s = f * s_prev + i * g
        np.tanh(S[t + 1], out=TS[t])
        np.multiply(z[:, 2 * m : 3 * m], TS[t], out=H[t + 1])  # h = o * tanh(s)


@jit
def _lstm_gates(z, s_prev, s, half):
    B, m = s.shape
    for b in range(B):
        for j in range(3 * m):
            z[b, j] = half * z[b, j] + half  # sigma(a) = (1 + tanh(a / 2)) / 2
        for j in range(m):
            s[b, j] = z[b, m + j] * s_prev[b, j] + z[b, j] * z[b, 3 * m + j]


def _lstm_backward(W, dD, ws, lay):
    A, S, TS, DZ = ws.A[lay], ws.S[lay], ws.TS[lay], ws.DZ
    dnext, ds = ws.tm[0], ws.tm[1]
    dnext[...] = 0.0
    ds[...] = 0.0  # dL/ds_t carried from step t+1: f_{t+1} * ds_{t+1}
    for t in range(len(dD) - 1, -1, -1):
        _lstm_step_backward(dD[t], dnext, A[t], S[t], TS[t], ds, DZ[t], ws.one)
        np.matmul(DZ[t], W, out=dnext)  # dh_{t-1} = W^T dz


@jit
def _lstm_step_backward(dD, dnext, z, s_prev, tanh_s, ds, dz, one):
    """dz of one step from dh = dD + dnext; ds in: carried from step t+1, out: to step t-1."""
    B, m = ds.shape
    for b in range(B):
        for j in range(m):
            i, f, o, g = z[b, j], z[b, m + j], z[b, 2 * m + j], z[b, 3 * m + j]
            ts = tanh_s[b, j]
            dh = dD[b, j] + dnext[b, j]
            d = ds[b, j] + dh * o * (one - ts * ts)  # h = o tanh(s)
            dz[b, j] = d * g * (i * (one - i))  # sigma' = sigma (1 - sigma)
            dz[b, m + j] = d * s_prev[b, j] * (f * (one - f))
            dz[b, 2 * m + j] = dh * ts * (o * (one - o))
            dz[b, 3 * m + j] = d * i * (one - g * g)  # tanh' = 1 - tanh^2
            ds[b, j] = d * f


def _gru_forward(WT, A, H, ws, lay):
    RH, tG = ws.RH[lay], ws.tG
    m = H.shape[2]
    WzrT, WnT = WT[:, : 2 * m], WT[:, 2 * m :]
    tzr, tn = tG[:, : 2 * m], tG[:, 2 * m :]
    for t in range(len(A)):
        zr, n = A[t][:, : 2 * m], A[t][:, 2 * m :]
        np.matmul(H[t], WzrT, out=tzr)  # z, r = sigma(W_zr h + U_zr x + b_zr), rows halved
        np.add(zr, tzr, out=zr)
        np.tanh(zr, out=zr)
        _gru_gates(zr, H[t], RH[t], ws.half)  # z, r; r * h_prev
        np.matmul(RH[t], WnT, out=tn)  # n = tanh(W_n (r * h) + U_n x + b_n)
        np.add(n, tn, out=n)
        np.tanh(n, out=n)
        _gru_state(zr, n, H[t], H[t + 1], ws.one)  # h = (1 - z) h_prev + z n


@jit
def _gru_gates(zr, h_prev, rh, half):
    B, m = h_prev.shape
    for b in range(B):
        for j in range(2 * m):
            zr[b, j] = half * zr[b, j] + half  # sigma(a) = (1 + tanh(a / 2)) / 2
        for j in range(m):
            rh[b, j] = zr[b, m + j] * h_prev[b, j]


@jit
def _gru_state(zr, n, h_prev, h, one):
    B, m = h.shape
    for b in range(B):
        for j in range(m):
            h[b, j] = (one - zr[b, j]) * h_prev[b, j] + zr[b, j] * n[b, j]


def _gru_backward(W, dD, ws, lay):
    A, H, DZ = ws.A[lay], ws.H[lay], ws.DZ
    m = H.shape[2]
    Wzr, Wn = W[: 2 * m], W[2 * m :]
    dh, drh, dnext, rest = ws.tm
    dnext[...] = 0.0
    for t in range(len(dD) - 1, -1, -1):
        _gru_step_backward_n(dD[t], dnext, A[t], dh, DZ[t], ws.one)
        np.matmul(DZ[t][:, 2 * m :], Wn, out=drh)  # dL/d(r * h_prev) = W_n^T dn
        _gru_step_backward_zr(dh, drh, A[t], H[t], DZ[t], rest, ws.one)
        np.matmul(DZ[t][:, : 2 * m], Wzr, out=dnext)  # dh_prev = W_zr^T dzr + rest
        np.add(dnext, rest, out=dnext)


@jit
def _gru_step_backward_n(dD, dnext, g, dh, dz, one):
    """dh = dD + dnext; dn = dh z (1 - n^2) (tanh' = 1 - tanh^2)."""
    B, m = dh.shape
    for b in range(B):
        for j in range(m):
            d = dD[b, j] + dnext[b, j]
            n = g[b, 2 * m + j]
            dh[b, j] = d
            dz[b, 2 * m + j] = d * g[b, j] * (one - n * n)


@jit
def _gru_step_backward_zr(dh, drh, g, h_prev, dz, rest, one):
    """dz = dh (n - h_prev) sigma'(z), dr = drh h_prev sigma'(r), and rest = dh (1 - z) +
    drh r, the part of dh_prev that does not pass through W_zr."""
    B, m = dh.shape
    for b in range(B):
        for j in range(m):
            z, r, n = g[b, j], g[b, m + j], g[b, 2 * m + j]
            dz[b, j] = dh[b, j] * (n - h_prev[b, j]) * (z * (one - z))
            dz[b, m + j] = drh[b, j] * h_prev[b, j] * (r * (one - r))
            rest[b, j] = dh[b, j] * (one - z) + drh[b, j] * r


_FORWARD = {"vanilla": _vanilla_forward, "lstm": _lstm_forward, "gru": _gru_forward}
_BACKWARD = {"vanilla": _vanilla_backward, "lstm": _lstm_backward, "gru": _gru_backward}


# --- the same loops compiled, for float32 (rnn.engine.kernels.steps32) --------------------------

_COMPILED = {}  # "steps32": the module, or None where it cannot run


def _compiled_steps(dtype):
    """rnn.engine.kernels.steps32 for float32 when numpy's BLAS can be called from compiled
    code, else None: the loops above. Checked once a process, on one product against numpy's;
    a binding that fails to compile or link, or computes anything else, leaves float32 on
    the loops above (slower, the same results). float64 and complex128 always take them."""
    if np.dtype(dtype) != np.float32:
        return None
    if "steps32" not in _COMPILED:
        _COMPILED["steps32"] = None
        from rnn.engine.kernels import blas

        if blas.SGEMM is not None:
            rng = np.random.default_rng(0)
            a, b = rng.random((5, 7), np.float32), rng.random((7, 3), np.float32)
            c = np.zeros((5, 3), np.float32)
            try:
                from rnn.engine.kernels import steps32

                steps32.matmul(a, b, c)
            except Exception:  # numba's or the linker's errors: no compiled loops here
                return None
            if np.allclose(c, a @ b, rtol=1e-5, atol=1e-6):
                _COMPILED["steps32"] = steps32
    return _COMPILED["steps32"]


def _layer_forward(cell, WT, A, H, ws, lay):
    """A layer's T steps forward: compiled (float32) or the numpy loop."""
    fast = _compiled_steps(A.dtype)
    if fast is None:
        _FORWARD[cell](WT, A, H, ws, lay)
    elif cell == "gru":
        fast.gru_forward(WT, A, H, ws.RH[lay], ws.tG)
    elif cell == "lstm":
        fast.lstm_forward(WT, A, H, ws.S[lay], ws.TS[lay], ws.tG)
    else:
        fast.vanilla_forward(WT, A, H, ws.tG)


def _layer_backward(cell, W, dD, ws, lay):
    """A layer's T steps backward, filling ws.DZ: compiled (float32) or the numpy loop."""
    fast = _compiled_steps(dD.dtype)
    if fast is None:
        _BACKWARD[cell](W, dD, ws, lay)
        return
    W = np.ascontiguousarray(W)
    if cell == "gru":
        fast.gru_backward(W, dD, ws.A[lay], ws.H[lay], ws.DZ, *ws.tm)
    elif cell == "lstm":
        fast.lstm_backward(W, dD, ws.A[lay], ws.S[lay], ws.TS[lay], ws.DZ, *ws.tm[:3])
    else:
        fast.vanilla_backward(W, dD, ws.H[lay], ws.DZ, ws.tm[0])


def _dW(cell, ws, lay, T, B, m):
    """dL/dW of a layer after its backward loop: (G m, T B) x (T B, m) products."""
    G = GATES[cell]
    DZ = ws.DZ.reshape(T * B, G * m)
    Hprev = ws.H[lay][:T].reshape(T * B, m)
    if cell != "gru":
        return DZ.T @ Hprev
    dW = np.empty((G * m, m), ws.DZ.dtype)
    np.matmul(DZ[:, : 2 * m].T, Hprev, out=dW[: 2 * m])  # z, r read h_prev
    np.matmul(DZ[:, 2 * m :].T, ws.RH[lay].reshape(T * B, m), out=dW[2 * m :])  # n reads r * h
    return dW


# --- the whole stack ----------------------------------------------------------------------------


def loss_and_grads_stack(P, cell: str, X, Y, state0, masks=None):
    """(loss, grads, state) of an L-layer stack on a batch.

    P: mapping name -> array (layer_names(L)), one dtype. X, Y: integers (T, B), inputs and
    targets. state0: list of L arrays (S, B), S = m (vanilla, GRU) or 2 m (LSTM's [h; s]),
    column b sequence b. masks: None (no dropout) or a list of L arrays (T, B, m) of the
    parameters' dtype, entries 0 or 1/keep, applied to each layer's h (the top's before V).

    loss: the mean over the B sequences of each one's summed cross-entropy, nats (a Python
    float; complex for complex parameters). grads: dict, the same names, shapes and dtype as
    P, the gradient of that loss. state: list of L arrays (S, B) after the T steps (copies;
    the undropped h).
    """
    X, Y = np.asarray(X), np.asarray(Y)
    L, (T, B), (K, m) = n_layers(P), X.shape, P["V"].shape
    ws, D = _forward(P, cell, X, Y, state0, masks)
    TB, dtype = T * B, D.dtype
    loss = _output_loss(P, D, Y, ws.O)

    # dL/do = (p - onehot(y)) / B: the 1/B of the mean once, here
    O, rows, y = ws.O, np.arange(TB), Y.reshape(TB)
    np.exp(O, out=O)
    O[rows, y] -= 1.0
    O *= 1.0 / B
    grads = {"V": O.T @ D, "c": O.sum(axis=0)[:, None]}

    # backward, from the top layer down
    dD, dD_below = ws.dD
    np.matmul(O, P["V"], out=dD.reshape(TB, m))
    for lay in range(L - 1, -1, -1):
        W, U, b = _layer(P, lay + 1)
        s = "" if lay == 0 else str(lay + 1)
        if masks is not None:
            np.multiply(dD, masks[lay], out=dD)
        _layer_backward(cell, W, dD, ws, lay)
        DZ = ws.DZ.reshape(TB, -1)
        grads["W" + s] = _dW(cell, ws, lay, T, B, m)
        grads["b" + s] = DZ.sum(axis=0)[:, None]
        if lay == 0:
            dUT = np.zeros((K, DZ.shape[1]), dtype)
            _scatter_rows(DZ, X.reshape(TB), dUT)
            grads["U"] = dUT.T.copy()
        else:
            Dl = (ws.H[lay - 1][1:] if masks is None else ws.D[lay - 1]).reshape(TB, m)
            grads["U" + s] = DZ.T @ Dl
            np.matmul(DZ, U, out=dD_below.reshape(TB, m))
            dD, dD_below = dD_below, dD

    grads = {name: grads[name] for name in layer_names(L)}
    return loss.item(), grads, _state(ws, cell, L, T, m)


def loss_stack(P, cell: str, X, Y, state0):
    """Forward only, without dropout (evaluation): (loss, state) as loss_and_grads_stack's."""
    X, Y = np.asarray(X), np.asarray(Y)
    L, T, m = n_layers(P), X.shape[0], P["V"].shape[1]
    ws, D = _forward(P, cell, X, Y, state0, None)
    return _output_loss(P, D, Y, ws.O).item(), _state(ws, cell, L, T, m)


def _forward(P, cell, X, Y, state0, masks):
    """(workspace, d of the top layer (T B, m)), every layer run forward over the T steps."""
    check_cell(cell)
    L = n_layers(P)
    dtype = P["W"].dtype
    K, m = P["V"].shape
    if X.ndim != 2 or X.shape != Y.shape or X.shape[0] < 1:
        raise ValueError(f"X and Y must both be (T, B) with T >= 1; got {X.shape} and {Y.shape}")
    T, B = X.shape
    if len(state0) != L or any(s.shape != (STATE[cell] * m, B) for s in state0):
        got = [getattr(s, "shape", None) for s in state0]
        raise ValueError(f"state0 must be {L} arrays ({STATE[cell] * m}, {B}); got {got}")
    if masks is not None and (len(masks) != L or any(k.shape != (T, B, m) for k in masks)):
        raise ValueError(f"masks must be None or {L} arrays ({T}, {B}, {m})")
    for name, Z in (("X", X), ("Y", Y)):  # an index outside 0..K-1 would read another row
        if not np.issubdtype(Z.dtype, np.integer) or Z.min() < 0 or Z.max() >= K:
            raise ValueError(f"{name} must hold character indices 0..{K - 1} (K = {K})")
    other = {name: str(P[name].dtype) for name in layer_names(L) if P[name].dtype != dtype}
    if other:
        raise ValueError(f"the parameters must share one dtype ({dtype} as W's); got {other}")
    ws = _workspace(cell, L, T, B, m, K, dtype)
    TB = T * B
    below = None  # d of the layer below, (T, B, m)
    half = np.ones((GATES[cell] * m, 1), dtype)
    half[: HALVED[cell] * m] = 0.5  # sigma's rows: see HALVED
    for lay in range(L):
        W, U, b = (a * half for a in _layer(P, lay + 1))
        H = ws.H[lay]
        if lay == 0:
            # U x_t + b: x one-hot picks a column; a fresh array (a gather into out= is slower)
            A = ws.A[0] = np.ascontiguousarray((U + b).T)[X]
        else:
            A = ws.A[lay]
            np.matmul(below.reshape(TB, m), U.T, out=A.reshape(TB, -1))
            np.add(A, b[:, 0], out=A)
        H[0] = state0[lay][:m].T
        if cell == "lstm":
            ws.S[lay][0] = state0[lay][m:].T
        _layer_forward(cell, np.ascontiguousarray(W.T), A, H, ws, lay)
        if masks is None:
            below = H[1:]
        else:
            if ws.D is None:
                ws.D = [np.empty_like(H[1:]) for _ in range(L)]
            below = np.multiply(H[1:], masks[lay], out=ws.D[lay])
    return ws, below.reshape(TB, m)


def _output_loss(P, D, Y, O):
    """The output layer over all T B rows: o = V d + c, ln p = log_softmax(o) left in O;
    returns the loss, -sum ln p[y] / B (a numpy scalar)."""
    TB, B = D.shape[0], Y.shape[1]
    np.matmul(D, P["V"].T, out=O)
    np.add(O, P["c"][:, 0], out=O)
    O -= O.real.max(axis=1, keepdims=True)  # the shift keeps exp from overflowing
    O -= np.log(np.exp(O).sum(axis=1, keepdims=True))
    return -O[np.arange(TB), Y.reshape(TB)].sum() / B


def _state(ws, cell, L, T, m):
    """Each layer's state after step T, (S, B) copies: h, or the LSTM's [h; s]."""
    state = []
    for lay in range(L):
        h = ws.H[lay][T].T
        state.append(np.concatenate([h, ws.S[lay][T].T]) if cell == "lstm" else h.copy())
    return state


@jit
def _scatter_rows(DZ, x, out):
    """out[x[r]] += DZ[r] for every row r: the transpose of layer 1's dU (x one-hot: each step
    adds its dz to U's column of x_t). Compiled: numpy's add.at and reduceat take ~10x longer."""
    for r in range(DZ.shape[0]):
        k = x[r]
        for j in range(DZ.shape[1]):
            out[k, j] += DZ[r, j]
