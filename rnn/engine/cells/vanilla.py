"""The vanilla cell (Elman):  a_t = W h_{t-1} + U x_t + b,  h_t = tanh(a_t).

W (m, m), U (m, K), b (m, 1); the carried state is h (m, 1).
"""

from __future__ import annotations

import numpy as np

from rnn.engine.cells import network_step_backward, network_step_forward


def layer_forward(W: np.ndarray, b: np.ndarray, ux: np.ndarray, h_prev: np.ndarray):
    """The recurrence alone, given its input's term ux = U x_t (m, B): (h_t, h_t, cache)."""
    h = np.tanh(W @ h_prev + ux + b)  # a = W h + U x + b, h = tanh(a)
    return h, h, (h_prev, h)


def layer_backward(dh: np.ndarray, dh_next: np.ndarray, cache, W: np.ndarray, dW):
    """Backward through layer_forward given dL/dh_t from above (dh) and carried from step t+1;
    adds into dW (unless None). Returns (dL/da_t (m, B), dL/dh_{t-1})."""
    h_prev, h = cache
    da = (1.0 - h * h) * (dh_next + dh)  # tanh' = 1 - tanh^2; the future's plus the output's
    if dW is not None:
        dW += da @ h_prev.T
    return da, W.T @ da


def step_forward(params, x: int, h_prev: np.ndarray):
    """One step from h_{t-1} (m, 1) and input x. Returns h_t (m, 1), ln p_t (K, 1), cache."""
    return network_step_forward(layer_forward, params, x, h_prev)


def step_backward(y, dh_next: np.ndarray, cache, params, grads) -> np.ndarray:
    """Backward through one step, given dL/dh_t carried from step t+1; returns dL/dh_{t-1}."""
    return network_step_backward(layer_backward, y, dh_next, cache, params, grads)
