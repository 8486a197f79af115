"""A batch of B sequences at once, in matrix-matrix products (numpy's BLAS `@`).

    loss = (1/B) sum_b loss_b,     grads = (1/B) sum_b dloss_b/dtheta

with loss_b the loss of sequence b as rnn.engine.model.loss_and_grads defines it. States are (S, B),
one column a sequence; inputs and targets (T, B). The work is rnn.engine.stack's, a stack of one
layer: every product that does not wait on the recurrence runs once over all T B rows, the
recurrence step by step on (B, G m) blocks. This is the path a batch takes when training
(B = 1 keeps the compiled single-sequence kernels); the equations are rnn.engine.cells', and
`streams_mean`, B single-sequence calls of rnn.engine.model averaged, is its reference.
"""

from __future__ import annotations

import numpy as np

from rnn.engine.model import Params, loss_and_grads
from rnn.engine.stack import loss_and_grads_stack


def loss_and_grads_batch(
    params: Params, X: np.ndarray, Y: np.ndarray, state0: np.ndarray
) -> tuple[float, Params, np.ndarray]:
    """(mean loss over the B sequences, mean gradients, state (S, B) after them) for inputs
    and targets X, Y (T, B) read from state0 (S, B)."""
    loss, grads, state = loss_and_grads_stack(dict(params.items()), params.cell, X, Y, [state0])
    return loss, Params(**grads), state[0]


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
