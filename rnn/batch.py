"""A batch of B sequences at once, in matrix-matrix products (numpy's BLAS `@`).

    loss = (1/B) sum_b loss_b,     grads = (1/B) sum_b dloss_b/dtheta

with loss_b the loss of sequence b as rnn.model.loss_and_grads defines it. States are (S, B),
one column a sequence; inputs and targets (T, B). Each cell's recurrence runs step by step on
(m, B) blocks (W h and, backward, W^T dz are (G m, m) x (m, B) products); the output layer,
and every parameter gradient, runs once over all T B columns: V (K, m) x (m, T B) forward,
and dV, dW, dU as (rows, T B) x (T B, cols) products. This is the path a batch takes when
training (B = 1 keeps the compiled single-sequence kernels); the equations are rnn.cells',
and `streams_mean`, B single-sequence calls of rnn.model averaged, is its reference.
"""

from __future__ import annotations

import numpy as np

from .cells import log_softmax, sigmoid
from .model import Params, loss_and_grads

BLOCK = 256  # columns (time steps x sequences) per product of the output layer and of dU


def loss_and_grads_batch(
    params: Params, X: np.ndarray, Y: np.ndarray, state0: np.ndarray
) -> tuple[float, Params, np.ndarray]:
    """(mean loss over the B sequences, mean gradients, state (S, B) after them) for inputs
    and targets X, Y (T, B) read from state0 (S, B)."""
    X, Y = np.asarray(X), np.asarray(Y)
    T, B = X.shape
    forward, backward = _CELLS[params.cell]
    H, state, cache = forward(params, X, state0)  # H (T, m, B): h_t of every sequence
    grads = params.map(np.zeros_like)
    dH = np.empty_like(H)  # dL/dh_t from the output
    loss = 0.0
    # the output layer, o = V h + c, p = softmax(o), a block of time steps at a time: one
    # product over as many columns as keep the block's arrays in cache
    step = max(1, BLOCK // B)
    for t0 in range(0, T, step):
        t1 = min(T, t0 + step)
        Hs = _columns(H[t0:t1])
        logp = log_softmax(params.V @ Hs + params.c)
        y, cols = Y[t0:t1].ravel(), np.arange((t1 - t0) * B)
        loss -= logp[y, cols].sum()
        dO = np.exp(logp)
        dO[y, cols] -= 1.0  # dL/do = p - onehot(y)
        grads.V += dO @ Hs.T
        grads.c += dO.sum(axis=1, keepdims=True)
        dH[t0:t1] = (params.V.T @ dO).reshape(params.m, t1 - t0, B).transpose(1, 0, 2)
    backward(params, X, dH, cache, grads)
    return float(loss) / B, grads.map(lambda g: g / B), state


def _columns(A: np.ndarray) -> np.ndarray:
    """(T, r, B) -> (r, T B): every time step's B columns side by side, t-major."""
    T, r, B = A.shape
    return A.transpose(1, 0, 2).reshape(r, T * B)


def _onehot(X: np.ndarray, K: int) -> np.ndarray:
    """(T B, K): row t B + b is the one-hot vector of X[t, b]; d @ onehot adds the columns of d
    of each character into its column of dU (repeated characters add up)."""
    x = X.ravel()
    onehot = np.zeros((len(x), K))
    onehot[np.arange(len(x)), x] = 1.0
    return onehot


def _inputs(params: Params, X: np.ndarray, d: np.ndarray, grads: Params) -> None:
    """The input-side gradients from d (T, G m, B), the gradient of each step's W h + U x + b."""
    T, B = X.shape
    step = max(1, BLOCK // B)
    for t0 in range(0, T, step):
        dc = _columns(d[t0 : t0 + step])
        grads.U += dc @ _onehot(X[t0 : t0 + step], params.K)
        grads.b += dc.sum(axis=1, keepdims=True)


# --- each cell over a whole batch: forward beside backward, as rnn.cells states them ---------


def _vanilla_forward(params, X, state0):
    T, B = X.shape
    W, b = params.W, params.b
    UX = params.U[:, X]  # (m, T, B): U x_t for every step and sequence
    H = np.empty((T + 1, params.m, B))
    H[0] = state0
    for t in range(T):
        H[t + 1] = np.tanh(W @ H[t] + UX[:, t] + b)  # a = W h + U x + b, h = tanh(a)
    return H[1:], H[T].copy(), H


def _vanilla_backward(params, X, dH, H, grads):
    T = X.shape[0]
    DA = np.empty_like(dH)
    dnext = np.zeros_like(dH[0])
    for t in range(T - 1, -1, -1):
        DA[t] = (1.0 - H[t + 1] * H[t + 1]) * (dH[t] + dnext)  # tanh' = 1 - tanh^2
        dnext = params.W.T @ DA[t]
    grads.W += _columns(DA) @ _columns(H[:T]).T
    _inputs(params, X, DA, grads)


def _lstm_forward(params, X, state0):
    T, B = X.shape
    m, W, b = params.m, params.W, params.b
    UX = params.U[:, X]
    Hh, S = np.empty((T + 1, m, B)), np.empty((T + 1, m, B))
    Hh[0], S[0] = state0[:m], state0[m:]
    gates, TS = np.empty((T, 4 * m, B)), np.empty((T, m, B))
    for t in range(T):
        z = W @ Hh[t] + UX[:, t] + b  # gates i, f, o, g
        gates[t, : 3 * m] = sigmoid(z[: 3 * m])
        gates[t, 3 * m :] = np.tanh(z[3 * m :])
        i, f, o, g = gates[t, :m], gates[t, m : 2 * m], gates[t, 2 * m : 3 * m], gates[t, 3 * m :]
        S[t + 1] = f * S[t] + i * g
        TS[t] = np.tanh(S[t + 1])
        Hh[t + 1] = o * TS[t]
    return Hh[1:], np.concatenate([Hh[T], S[T]]), (Hh, S, gates, TS)


def _lstm_backward(params, X, dH, cache, grads):
    Hh, S, gates, TS = cache
    T, m = X.shape[0], params.m
    DZ = np.empty_like(gates)
    dh_next, ds_next = np.zeros_like(dH[0]), np.zeros_like(dH[0])
    for t in range(T - 1, -1, -1):
        i, f, o, g = gates[t, :m], gates[t, m : 2 * m], gates[t, 2 * m : 3 * m], gates[t, 3 * m :]
        dh = dH[t] + dh_next
        ds = ds_next + dh * o * (1.0 - TS[t] * TS[t])  # h = o tanh(s)
        DZ[t, :m] = ds * g * (i * (1.0 - i))  # sigma' = sigma (1 - sigma)
        DZ[t, m : 2 * m] = ds * S[t] * (f * (1.0 - f))
        DZ[t, 2 * m : 3 * m] = dh * TS[t] * (o * (1.0 - o))
        DZ[t, 3 * m :] = ds * i * (1.0 - g * g)
        dh_next, ds_next = params.W.T @ DZ[t], f * ds
    grads.W += _columns(DZ) @ _columns(Hh[:T]).T
    _inputs(params, X, DZ, grads)


def _gru_forward(params, X, state0):
    T, B = X.shape
    m, W, b = params.m, params.W, params.b
    UX = params.U[:, X]
    H = np.empty((T + 1, m, B))
    H[0] = state0
    ZR, RH, N = np.empty((T, 2 * m, B)), np.empty((T, m, B)), np.empty((T, m, B))
    for t in range(T):
        ZR[t] = sigmoid(W[: 2 * m] @ H[t] + UX[: 2 * m, t] + b[: 2 * m])  # z, r
        RH[t] = ZR[t, m:] * H[t]
        N[t] = np.tanh(W[2 * m :] @ RH[t] + UX[2 * m :, t] + b[2 * m :])
        z = ZR[t, :m]
        H[t + 1] = (1.0 - z) * H[t] + z * N[t]
    return H[1:], H[T].copy(), (H, ZR, RH, N)


def _gru_backward(params, X, dH, cache, grads):
    H, ZR, RH, N = cache
    T, m, W = X.shape[0], params.m, params.W
    D = np.empty((T, 3 * m, dH.shape[2]))  # da_z, da_r, da_n of each step
    dnext = np.zeros_like(dH[0])
    for t in range(T - 1, -1, -1):
        z, r = ZR[t, :m], ZR[t, m:]
        dh = dH[t] + dnext
        D[t, 2 * m :] = dh * z * (1.0 - N[t] * N[t])  # tanh' = 1 - tanh^2
        drh = W[2 * m :].T @ D[t, 2 * m :]  # dL/d(r * h_{t-1})
        D[t, :m] = dh * (N[t] - H[t]) * (z * (1.0 - z))
        D[t, m : 2 * m] = drh * H[t] * (r * (1.0 - r))
        dnext = dh * (1.0 - z) + drh * r + W[: 2 * m].T @ D[t, : 2 * m]
    grads.W[: 2 * m] += _columns(D[:, : 2 * m]) @ _columns(H[:T]).T
    grads.W[2 * m :] += _columns(D[:, 2 * m :]) @ _columns(RH).T
    _inputs(params, X, D, grads)


_CELLS = {
    "vanilla": (_vanilla_forward, _vanilla_backward),
    "lstm": (_lstm_forward, _lstm_backward),
    "gru": (_gru_forward, _gru_backward),
}


def streams_mean(
    params: Params, X: np.ndarray, Y: np.ndarray, state0: np.ndarray
) -> tuple[float, Params, np.ndarray]:
    """The same as loss_and_grads_batch, one sequence at a time (the reference)."""
    X, Y = np.asarray(X), np.asarray(Y)
    B = X.shape[1]
    total, grads, states = 0.0, params.map(np.zeros_like), []
    for b in range(B):
        loss, g, state = loss_and_grads(params, X[:, b], Y[:, b], state0[:, [b]])
        total += loss
        for name, value in g.items():
            getattr(grads, name)[...] += value
        states.append(state)
    return total / B, grads.map(lambda g: g / B), np.concatenate(states, axis=1)


def sequences(ids: np.ndarray, starts: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets (L, B) of the sequences starting at starts (B,): column b is
    ids[starts[b] : starts[b] + L] and the L characters after each."""
    at = np.asarray(starts)[None, :] + np.arange(L)[:, None]
    return ids[at], ids[at + 1]
