"""The GRU cell (Cho et al. 2014, the reset gate applied before the recurrent product), gates
stacked z, r, n in the rows of W (3m, m), U (3m, K), b (3m, 1):

    z = sigma(W_z h_{t-1} + U_z x_t + b_z),   r = sigma(W_r h_{t-1} + U_r x_t + b_r)
    n = tanh(W_n (r * h_{t-1}) + U_n x_t + b_n)
    h_t = (1 - z) * h_{t-1} + z * n

The carried state is h (m, 1).
"""

from __future__ import annotations

import numpy as np

from rnn.engine.cells import network_step_backward, network_step_forward, sigmoid


def layer_forward(W: np.ndarray, b: np.ndarray, ux: np.ndarray, h_prev: np.ndarray):
    """The recurrence alone, given its input's term ux = U x_t (3m, B): (h_t, h_t, cache)."""
    m = W.shape[-1]
    zr = sigmoid(W[..., : 2 * m, :] @ h_prev + ux[..., : 2 * m, :] + b[..., : 2 * m, :])
    z, r = zr[..., :m, :], zr[..., m:, :]
    rh = r * h_prev
    n = np.tanh(W[..., 2 * m :, :] @ rh + ux[..., 2 * m :, :] + b[..., 2 * m :, :])
    h = (1.0 - z) * h_prev + z * n
    return h, h, (h_prev, z, r, rh, n, h)


def layer_backward(dh: np.ndarray, dh_next: np.ndarray, cache, W: np.ndarray, dW):
    """Backward through layer_forward given dL/dh_t from above (dh) and carried from step t+1;
    adds into dW (unless None). Returns (dL/d[a_z; a_r; a_n] (3m, B), dL/dh_{t-1})."""
    h_prev, z, r, rh, n, h = cache
    m = W.shape[-1]
    dh = dh_next + dh
    da_n = dh * z * (1.0 - n * n)  # tanh' = 1 - tanh^2
    drh = W[2 * m :].T @ da_n  # dL/d(r * h_{t-1})
    da_zr = np.concatenate([dh * (n - h_prev) * (z * (1.0 - z)), drh * h_prev * (r * (1.0 - r))])
    if dW is not None:
        dW[: 2 * m] += da_zr @ h_prev.T
        dW[2 * m :] += da_n @ rh.T
    return np.concatenate([da_zr, da_n]), dh * (1.0 - z) + drh * r + W[: 2 * m].T @ da_zr


def step_forward(params, x: int, h_prev: np.ndarray):
    """One step from h_{t-1} (m, 1). Returns h_t (m, 1), ln p_t (K, 1), cache."""
    return network_step_forward(layer_forward, params, x, h_prev)


def step_backward(y, dh_next: np.ndarray, cache, params, grads) -> np.ndarray:
    """Backward through one step, given dL/dh_t carried from step t+1; returns dL/dh_{t-1}."""
    return network_step_backward(layer_backward, y, dh_next, cache, params, grads)
