"""A batch of B sequences at once: the cells' own step pair run on states of B columns.

    loss = (1/B) sum_b loss_b,     grads = (1/B) sum_b dloss_b/dtheta

with loss_b the loss of sequence b as rnn.model.loss_and_grads defines it. The states are
(S, B), one column a sequence; the inputs and targets (T, B), one column a sequence. Every
product of a step (W h, V h, and in the backward step W^T dz, V^T do and the parameter
gradients' sums over the columns) is then a matrix-matrix product, numpy's BLAS `@`: this is
the path a batch takes when training (B = 1 keeps the compiled single-sequence kernels).
`streams_mean` is its reference, B single-sequence calls averaged.
"""

from __future__ import annotations

import numpy as np

from .cells import target_loss
from .model import Params, loss_and_grads, step_backward, step_forward


def loss_and_grads_batch(
    params: Params, X: np.ndarray, Y: np.ndarray, state0: np.ndarray
) -> tuple[float, Params, np.ndarray]:
    """(mean loss over the B sequences, mean gradients, state (S, B) after them) for inputs
    and targets X, Y (T, B) read from state0 (S, B)."""
    X, Y = np.asarray(X), np.asarray(Y)
    B = X.shape[1]
    state, caches, loss = state0, [], 0.0
    for x, y in zip(X, Y):  # a row: one time step of every sequence
        state, logp, cache = step_forward(params, x, state)
        loss += target_loss(logp, y)
        caches.append(cache)
    grads = params.map(np.zeros_like)
    dstate = np.zeros_like(state0)
    for y, cache in zip(reversed(Y), reversed(caches)):
        dstate = step_backward(y, dstate, cache, params, grads)
    return loss / B, grads.map(lambda g: g / B), state


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
