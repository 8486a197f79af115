"""The recurrent cells, one module each, and the output layer they share.

Every cell is a pair of functions side by side (as CS231n's rnn_step_forward/backward):

    step_forward(params, x, state) -> (state_next (S, 1), logp (K, 1), cache)
    step_backward(y, dstate_next, cache, params, grads) -> dstate_prev (S, 1)

x is the index of the input character (U x_t is the column U[:, x]); y the target's index,
or None when the step has no loss term (only the carried gradient flows back); grads a
Params the step adds its parameter gradients into, or None to skip them. The carried state
is a column (S, 1) whose first m rows are h: h itself for the vanilla cell and the GRU
(S = m), the stacked [h; s] for the LSTM (S = 2m).

The forward steps also accept stacks of networks: arrays with leading batch axes broadcast
through every product (the gradient check evaluates hundreds of perturbed copies at once).
"""

from __future__ import annotations

import numpy as np

from rnn.errors import ConfigError

CELLS = ("vanilla", "lstm", "gru")
GATES = {"vanilla": 1, "lstm": 4, "gru": 3}  # row blocks of W, U and b
STATE = {"vanilla": 1, "lstm": 2, "gru": 1}  # the carried state has STATE * m rows


def check_cell(cell) -> str:
    """The cell's name, or ConfigError naming the parameter `cell`."""
    if cell not in CELLS:
        raise ConfigError(f"parameter cell must be one of {', '.join(CELLS)}; got {cell!r}")
    return cell


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
    do[y] -= 1.0  # dL/do = p - onehot(y)
    if grads is not None:
        grads.V += do @ h.T
        grads.c += do
    return params.V.T @ do


# --- one step of a one-layer network, whatever the cell: its layer, then the output layer -----
# Each cell's module passes its own layer_forward / layer_backward; every cell's layer cache
# ends with h_t, which the output layer reads.


def network_step_forward(layer_forward, params, x: int, state: np.ndarray):
    """One step from state_{t-1} and input x: (state_t, ln p_t (K, 1), cache)."""
    state, h, cache = layer_forward(params.W, params.b, params.U[..., [x]], state)
    logp = output_forward(params, h)
    return state, logp, (x, cache, logp)


def network_step_backward(layer_backward, y, dstate_next, cache, params, grads):
    """Backward through network_step_forward given dL/dstate_t carried from step t+1; adds
    into grads (unless None) and returns dL/dstate_{t-1}."""
    x, layer, logp = cache
    dh = output_backward(y, logp, layer[-1], params, grads)
    dW = None if grads is None else grads.W
    da, dstate_prev = layer_backward(dh, dstate_next, layer, params.W, dW)
    if grads is not None:
        grads.U[:, [x]] += da  # x one-hot: only its column of U
        grads.b += da
    return dstate_prev
