"""The LSTM cell, gates stacked i, f, o, g in the rows of W (4m, m), U (4m, K), b (4m, 1):

    z = W h_{t-1} + U x_t + b
    i = sigma(z_i),  f = sigma(z_f),  o = sigma(z_o),  g = tanh(z_g)
    s_t = f * s_{t-1} + i * g,        h_t = o * tanh(s_t)

The carried state is [h; s] (2m, 1): h in the first m rows, the cell state s below.
"""

from __future__ import annotations

import numpy as np

from rnn.engine.cells import network_step_backward, network_step_forward, sigmoid


def layer_forward(W: np.ndarray, b: np.ndarray, ux: np.ndarray, state: np.ndarray):
    """The recurrence alone, given its input's term ux = U x_t (4m, B), from [h_{t-1}; s_{t-1}]
    (2m, B). Returns ([h_t; s_t], h_t, cache)."""
    m = W.shape[-1]
    h_prev, s_prev = state[..., :m, :], state[..., m:, :]
    z = W @ h_prev + ux + b  # (4m, B), all gates at once
    ifo = sigmoid(z[..., : 3 * m, :])
    i, f, o = ifo[..., :m, :], ifo[..., m : 2 * m, :], ifo[..., 2 * m :, :]
    g = np.tanh(z[..., 3 * m :, :])
    s = f * s_prev + i * g
    tanh_s = np.tanh(s)
    h = o * tanh_s
    return np.concatenate([h, s], axis=-2), h, (h_prev, s_prev, i, f, o, g, tanh_s, h)


def layer_backward(dh: np.ndarray, dstate_next: np.ndarray, cache, W: np.ndarray, dW):
    """Backward through layer_forward given dL/dh_t from above (dh) and dL/d[h_t; s_t] carried
    from step t+1; adds into dW (unless None). Returns (dL/dz_t (4m, B), dL/d[h_{t-1}; s_{t-1}])."""
    h_prev, s_prev, i, f, o, g, tanh_s, h = cache
    m = W.shape[-1]
    dh = dstate_next[:m] + dh
    ds = dstate_next[m:] + dh * o * (1.0 - tanh_s * tanh_s)  # h = o tanh(s)
    dz = np.concatenate(
        [
            ds * g * (i * (1.0 - i)),  # sigma' = sigma (1 - sigma)
            ds * s_prev * (f * (1.0 - f)),
            dh * tanh_s * (o * (1.0 - o)),
            ds * i * (1.0 - g * g),
        ]
    )
    if dW is not None:
        dW += dz @ h_prev.T
    return dz, np.concatenate([W.T @ dz, f * ds])


def step_forward(params, x: int, state: np.ndarray):
    """One step from [h_{t-1}; s_{t-1}] (2m, 1). Returns [h_t; s_t] (2m, 1), ln p_t, cache."""
    return network_step_forward(layer_forward, params, x, state)


def step_backward(y, dstate_next: np.ndarray, cache, params, grads) -> np.ndarray:
    """Backward through one step, given dL/d[h_t; s_t] carried from step t+1 (2m, 1);
    returns dL/d[h_{t-1}; s_{t-1}]."""
    return network_step_backward(layer_backward, y, dstate_next, cache, params, grads)
