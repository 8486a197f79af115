"""The fast path: whole training chunks compiled with numba, same mathematics as rnn.model.

The parameters travel as one flat float64 vector theta in the order W, U, b, V, c
(`Params.flatten`), so AdaGrad, clipping and keeping the best model are single loops. The
carried state travels as a column (S, 1), as everywhere in the package. Character indices
may be any integer dtype (uint8, uint16, int32, ...): numba compiles one specialisation per
dtype, and nothing is copied to int64.

One module per cell (vanilla, lstm, gru) holds its compiled forward and backward over a
sequence; `blocks` holds what they share. The functions here pick the cell by its number of
gate blocks (1, 4, 3) inside compiled code, so one compiled update loop serves all three.
numba's cache notices edits only to the file that defines a function: after editing a cell's
file, remove rnn/kernels/__pycache__ (a stale compiled caller would otherwise be reused).
"""

from __future__ import annotations

import numpy as np

from . import gru, lstm, vanilla
from .blocks import AVAILABLE, adagrad, adagrad_columns, adagrad_keep, jit

__all__ = ["AVAILABLE", "loss_and_grads_flat", "mean_loss_flat", "run_updates", "scratch"]


@jit
def scratch(T, m, K, gates, S):
    """Working memory for sequences of up to T steps (see kernels.vanilla for the names)."""
    Gm = gates * m
    n = max(Gm, K)
    bits = np.zeros(n, dtype=np.int64)
    return (
        np.zeros((T + 1, S)),  # H
        np.zeros((T, K)),  # O
        np.zeros((T, Gm)),  # Z
        np.zeros((T, Gm)),  # D
        np.zeros((T, m)),  # E
        np.zeros((T, m)),  # Dh
        np.zeros((T + 1, m)),  # Hh: h alone, when the state holds more
        np.zeros(m * Gm),  # wt: W transposed, flat (a cell reshapes it, block by block)
        np.zeros((m, K)),  # VT
        np.zeros(m),  # v1
        np.zeros(m),  # v2
        np.zeros(m),  # v3
        np.zeros(2 * n),  # q (tanh_ uses both halves)
        bits,
        bits.view(np.float64),  # scale: the same memory as bits, read as float64
    )


@jit
def _forward(theta, X, Y, sc, m, K, gates):
    if gates == 4:
        return lstm.forward(theta, X, Y, sc, m, K)
    if gates == 3:
        return gru.forward(theta, X, Y, sc, m, K)
    return vanilla.forward(theta, X, Y, sc, m, K)


@jit
def _backward(theta, grad, X, Y, sc, m, K, gates):
    if gates == 4:
        lstm.backward(theta, grad, X, Y, sc, m, K)
    elif gates == 3:
        gru.backward(theta, grad, X, Y, sc, m, K)
    else:
        vanilla.backward(theta, grad, X, Y, sc, m, K)


@jit
def _update(theta, G2, grad, X, m, K, gates, eta, eps, clip, seen, keep, old):
    """Clipping and AdaGrad on every entry whose gradient can be nonzero: all but U's columns
    of characters absent from X (seen: scratch of K booleans). With keep, theta as it was
    before the update is copied into old on the way."""
    Gm = gates * m
    o1, o2 = Gm * m, Gm * m + Gm * K
    seen[:] = False
    for t in range(X.shape[0]):
        seen[X[t]] = True
    cols = np.flatnonzero(seen)
    if keep:
        adagrad_keep(theta[:o1], G2[:o1], grad[:o1], eta, eps, clip, old[:o1])  # W
        old[o1:o2] = theta[o1:o2]
    else:
        adagrad(theta[:o1], G2[:o1], grad[:o1], eta, eps, clip)  # W
    U, GU, dU = (
        theta[o1:o2].reshape((Gm, K)),
        G2[o1:o2].reshape((Gm, K)),
        grad[o1:o2].reshape((Gm, K)),
    )
    adagrad_columns(U, GU, dU, cols, eta, eps, clip)
    if keep:
        adagrad_keep(theta[o2:], G2[o2:], grad[o2:], eta, eps, clip, old[o2:])  # b, V, c
    else:
        adagrad(theta[o2:], G2[o2:], grad[o2:], eta, eps, clip)  # b, V, c


@jit
def loss_and_grads_flat(theta, X, Y, state0, m, K, gates):
    """(loss, dL/dtheta, state (S, 1)) for one sequence from state0 (S, 1): the compiled
    twin of model.loss_and_grads."""
    T, S = X.shape[0], state0.shape[0]
    sc = scratch(T, m, K, gates, S)
    sc[0][0] = state0[:, 0]
    grad = np.zeros_like(theta)  # (the LSTM's backward writes only X's columns of dU)
    loss = _forward(theta, X, Y, sc, m, K, gates)
    _backward(theta, grad, X, Y, sc, m, K, gates)
    return loss, grad, sc[0][T].copy().reshape((S, 1))


@jit
def mean_loss_flat(theta, ids, state0, m, K, gates):
    """Mean -ln p per character of ids[1:] given ids[:-1], the state carried from state0
    (S, 1) through all of it. Forward only, in chunks of 1024 characters."""
    n = ids.shape[0] - 1
    chunk = max(1, min(n, 1024))
    S = state0.shape[0]
    sc = scratch(chunk, m, K, gates, S)
    H = sc[0]
    H[0] = state0[:, 0]
    total = 0.0
    for start in range(0, n, chunk):
        T = min(chunk, n - start)
        total += _forward(
            theta, ids[start : start + T], ids[start + 1 : start + T + 1], sc, m, K, gates
        )
        H[0] = H[T]
    return total / max(n, 1)


@jit
def run_updates(
    ids,
    theta,
    G2,
    state,
    step0,
    n,
    starts,
    resets,
    L,
    m,
    K,
    gates,
    eta,
    eps,
    clip,
    decay,
    weight,
    smooth,
    best_smooth,
    best_step,
    best_theta,
    best_state,
    losses,
    smooths,
):
    """Run updates step0 .. step0+n-1 in place; returns (smooth, best_smooth, best_step).

    Update step0 + i trains on the sequence starting at starts[i], from the state (S, 1)
    zeroed when resets[i] and carried otherwise (rnn.order chooses both). theta, G2
    (AdaGrad's sums of squared gradients), state, best_theta and best_state (the parameters
    with the lowest smooth loss so far and the state they started that update from) are
    updated in place; losses[step] and smooths[step] receive the loss and the smooth loss
    (smooth = decay smooth + weight loss) measured before update `step`.
    """
    S = state.shape[0]
    sc = scratch(L, m, K, gates, S)
    H = sc[0]
    grad = np.zeros_like(theta)
    seen = np.zeros(K, dtype=np.bool_)
    for step in range(step0, step0 + n):
        if resets[step - step0]:
            state[:] = 0.0
        start = starts[step - step0]
        X = ids[start : start + L]
        Y = ids[start + 1 : start + L + 1]
        H[0] = state[:, 0]
        loss = _forward(theta, X, Y, sc, m, K, gates)
        _backward(theta, grad, X, Y, sc, m, K, gates)
        state[:, 0] = H[L]
        smooth = decay * smooth + weight * loss
        losses[step] = loss
        smooths[step] = smooth
        keep = smooth < best_smooth
        if keep:
            best_smooth = smooth
            best_step = step
            best_state[:, 0] = H[0]
        # with keep, best_theta receives the parameters this loss was measured with
        _update(theta, G2, grad, X, m, K, gates, eta, eps, clip, seen, keep, best_theta)
    return smooth, best_smooth, best_step
