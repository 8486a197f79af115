"""The recurrent cells, one module each, and the output layer they share.

Every cell is a pair of functions side by side (as CS231n's rnn_step_forward/backward):

    step_forward(params, x, state) -> (state_next (S, 1), logp (K, 1), cache)
    step_backward(y, dstate_next, cache, params, grads) -> dstate_prev (S, 1)

x is the index of the input character (U x_t is the column U[:, x]); y the target's index,
or None when the step has no loss term (only the carried gradient flows back); grads a
Params the step adds its parameter gradients into, or None to skip them. The carried state
is a column (S, 1) whose first m rows are h: h itself for the vanilla cell and the GRU
(S = m), the stacked [h; s] for the LSTM (S = 2m).

States may hold B columns, one per sequence of a batch, with x and y then (B,) arrays of
indices (rnn.batch): every product becomes a matrix-matrix one and the parameter gradients
sum over the columns. The forward steps also accept stacks of networks: arrays with leading
batch axes broadcast through every product (the gradient check evaluates hundreds of
perturbed copies at once).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

CELLS = ("vanilla", "lstm", "gru")
GATES = {"vanilla": 1, "lstm": 4, "gru": 3}  # row blocks of W, U and b
STATE = {"vanilla": 1, "lstm": 2, "gru": 1}  # the carried state has STATE * m rows


def check_cell(cell) -> str:
    """The cell's name, or ConfigError naming the parameter `cell`."""
    if cell not in CELLS:
        raise ConfigError(f"parameter cell must be one of {', '.join(CELLS)}; got {cell!r}")
    return cell


def input_columns(U: np.ndarray, x) -> np.ndarray:
    """U x_t: column x of U, (.., G m, 1), for one input index; for a batch of B indices
    (B,) (rnn.batch), the B columns side by side, (.., G m, B)."""
    return U[..., [x]] if np.ndim(x) == 0 else U[..., x]


def add_input_columns(dU: np.ndarray, x, d: np.ndarray) -> None:
    """dU += d x_t^T for one index, or a batch's (d (G m, B)) as the product with the one-hot
    inputs (B, K): a character repeated within the batch adds each column's share (numpy's
    fancy `+=` would keep only one, and np.add.at is slower than the product)."""
    if np.ndim(x) == 0:
        dU[:, [x]] += d
    else:
        onehot = np.zeros((len(x), dU.shape[-1]))
        onehot[np.arange(len(x)), x] = 1.0
        dU += d @ onehot


def over_columns(d: np.ndarray) -> np.ndarray:
    """A bias's gradient: d (rows, 1) as it is, or a batch's (rows, B) summed over its columns."""
    return d if d.shape[-1] == 1 else d.sum(axis=-1, keepdims=True)


def target_loss(logp: np.ndarray, y) -> float:
    """-ln p[y] summed over the columns: one sequence's step, or a batch's (y (B,))."""
    if np.ndim(y) == 0:
        return -float(logp[int(y), 0])
    return -float(logp[y, np.arange(len(y))].sum())


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x), written as (1 + tanh(x/2)) / 2 so that no exp can overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def log_softmax(o: np.ndarray) -> np.ndarray:
    """ln softmax(o) over the K rows (axis -2), shifted by the maximum so exp never overflows.

    Taking logs before exponentiating keeps -ln p[y] finite even where p[y] underflows.
    """
    shifted = o - o.max(axis=-2, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-2, keepdims=True))


# --- the output layer, shared by every cell: o = V h + c, p = softmax(o) ----------------------


def output_forward(params, h: np.ndarray) -> np.ndarray:
    """ln p (K, 1) from h (m, 1)."""
    return log_softmax(params.V @ h + params.c)


def output_backward(y, logp: np.ndarray, h: np.ndarray, params, grads):
    """dL/dh (m, 1) from the loss term -ln p[y] (0.0 when y is None); adds dV, dc to grads."""
    if y is None:
        return 0.0
    do = np.exp(logp)
    if np.ndim(y) == 0:
        do[y] -= 1.0  # dL/do = p - onehot(y)
    else:  # a batch: one target per column
        do[y, np.arange(len(y))] -= 1.0
    if grads is not None:
        grads.V += do @ h.T
        grads.c += over_columns(do)
    return params.V.T @ do
