"""The GRU cell (Cho et al. 2014, the reset gate applied before the recurrent product), gates
stacked z, r, n in the rows of W (3m, m), U (3m, K), b (3m, 1):

    z = sigma(W_z h_{t-1} + U_z x_t + b_z),   r = sigma(W_r h_{t-1} + U_r x_t + b_r)
    n = tanh(W_n (r * h_{t-1}) + U_n x_t + b_n)
    h_t = (1 - z) * h_{t-1} + z * n

The carried state is h (m, 1).
"""

from __future__ import annotations

import numpy as np

from . import output_backward, output_forward, sigmoid


def step_forward(params, x: int, h_prev: np.ndarray):
    """One step from h_{t-1} (m, 1). Returns h_t (m, 1), ln p_t (K, 1), cache."""
    m = params.m
    W, U, b = params.W, params.U, params.b
    zr = sigmoid(W[..., : 2 * m, :] @ h_prev + U[..., : 2 * m, [x]] + b[..., : 2 * m, :])
    z, r = zr[..., :m, :], zr[..., m:, :]
    rh = r * h_prev
    n = np.tanh(W[..., 2 * m :, :] @ rh + U[..., 2 * m :, [x]] + b[..., 2 * m :, :])
    h = (1.0 - z) * h_prev + z * n
    logp = output_forward(params, h)
    return h, logp, (x, h_prev, z, r, rh, n, h, logp)


def step_backward(y, dh_next: np.ndarray, cache, params, grads) -> np.ndarray:
    """Backward through one step, given dL/dh_t carried from step t+1; returns dL/dh_{t-1}."""
    x, h_prev, z, r, rh, n, h, logp = cache
    m = params.m
    W = params.W
    dh = dh_next + output_backward(y, logp, h, params, grads)
    da_n = dh * z * (1.0 - n * n)  # tanh' = 1 - tanh^2
    drh = W[2 * m :].T @ da_n  # dL/d(r * h_{t-1})
    da_zr = np.concatenate([dh * (n - h_prev) * (z * (1.0 - z)), drh * h_prev * (r * (1.0 - r))])
    if grads is not None:
        grads.W[: 2 * m] += da_zr @ h_prev.T
        grads.W[2 * m :] += da_n @ rh.T
        grads.U[:, [x]] += np.concatenate([da_zr, da_n])
        grads.b += np.concatenate([da_zr, da_n])
    return dh * (1.0 - z) + drh * r + W[: 2 * m].T @ da_zr
