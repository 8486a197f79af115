"""The vanilla cell compiled: rnn.engine.cells.vanilla's step pair over a whole sequence.

Scratch `sc` (see rnn.engine.kernels.scratch): H (T+1, S) the states, H[0] the initial one; O (T, K)
outputs; Z (T, G m) gate activations; D (T, G m) their gradients; E (T, m) a cell's extra
per-step vector; Dh (T, m); Hh (T+1, m) h alone for the LSTM; wt (m G m,) W transposed;
VT (m, K); v1, v2, v3 (m,); q, bits, scale for exp. Every array a product streams along
is C-contiguous: numba vectorises only loops over unit-stride rows.
"""

from __future__ import annotations

from rnn.engine.kernels.blocks import (
    gather_inputs,
    gaxpy,
    gemm,
    jit,
    output_backward,
    output_loss,
    row_sums,
    scatter_inputs,
    tanh_,
    transpose,
    views,
)


@jit
def forward(theta, X, Y, sc, m, K):
    """Fills H[t+1] = h_t and O[t] = p_t; returns the loss (nats, summed over the sequence)."""
    H, O, Z, D, E, Dh, Hh, wt, VT, v1, v2, v3, q, bits, scale = sc
    W, U, b, V, c = views(theta, m, K, 1)
    WT = wt.reshape((m, m))
    transpose(W, WT)  # rows of W.T are columns of W: W h = sum_j h[j] W.T[j]
    transpose(V, VT)
    T = X.shape[0]
    gather_inputs(H[1:], U, b, X, T)  # a_t = U x_t + b ...
    for t in range(T):
        a = H[t + 1]
        gaxpy(a, H[t], WT)  # a_t = W h_{t-1} + U x_t + b
        tanh_(a, q, bits, scale)  # h_t = tanh(a_t)
    for t in range(T):
        O[t] = c
    gemm(O[:T], H[1 : T + 1], VT)  # o_t = V h_t + c, all t at once
    return output_loss(O, Y, T, K, q, bits, scale)


@jit
def backward(theta, grad, X, Y, sc, m, K):
    """BPTT through the sequence `forward` just ran; writes dL/dtheta into grad."""
    H, O, Z, D, E, Dh, Hh, wt, VT, v1, v2, v3, q, bits, scale = sc
    W, U, b, V, c = views(theta, m, K, 1)
    dW, dU, db, dV, dc = views(grad, m, K, 1)
    T = X.shape[0]
    output_backward(O, D, V, Y, T)  # D[t] = dh_t from the output, all t at once
    for t in range(T - 1, -1, -1):
        g = D[t]
        if t < T - 1:
            gaxpy(g, D[t + 1], W)  # dh_t += W.T da_{t+1}
        h = H[t + 1]
        for i in range(m):
            g[i] *= 1.0 - h[i] * h[i]  # da_t = (1 - h_t^2) dh_t
    grad[:] = 0.0
    gemm(dV, O[:T].T, H[1 : T + 1])  # dV = sum_t do_t h_t^T
    gemm(dW, D[:T].T, H[:T])  # dW = sum_t da_t h_{t-1}^T
    row_sums(dc, O, T)  # dc = sum_t do_t
    row_sums(db, D, T)  # db = sum_t da_t
    scatter_inputs(dU, D, X, T)  # U x_t picks column x_t
