"""The vanilla cell (Elman):  a_t = W h_{t-1} + U x_t + b,  h_t = tanh(a_t).

W (m, m), U (m, K), b (m, 1); the carried state is h (m, 1).
"""

from __future__ import annotations

import numpy as np

from . import output_backward, output_forward


def step_forward(params, x: int, h_prev: np.ndarray):
    """One step from h_{t-1} (m, 1) and input x. Returns h_t (m, 1), ln p_t (K, 1), cache."""
    a = params.W @ h_prev + params.U[..., [x]] + params.b
    h = np.tanh(a)
    logp = output_forward(params, h)
    return h, logp, (x, h_prev, h, logp)


def step_backward(y, dh_next: np.ndarray, cache, params, grads) -> np.ndarray:
    """Backward through one step, given dL/dh_t carried from step t+1; returns dL/dh_{t-1}."""
    x, h_prev, h, logp = cache
    dh = dh_next + output_backward(y, logp, h, params, grads)  # the output's, plus the future's
    da = (1.0 - h * h) * dh  # tanh' = 1 - tanh^2
    if grads is not None:
        grads.W += da @ h_prev.T
        grads.U[:, [x]] += da
        grads.b += da
    return params.W.T @ da
