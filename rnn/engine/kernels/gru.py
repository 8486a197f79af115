"""The GRU compiled: rnn.engine.cells.gru's step pair over a whole sequence (gates z, r, n).

Z[t] holds z, r, n after their nonlinearities, E[t] = r * h_{t-1}, D[t] = dL/d(pre-activations)
of z, r, n. Scratch: see kernels.vanilla.
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
    sigmoid_,
    tanh_,
    transpose,
    views,
)


@jit
def forward(theta, X, Y, sc, m, K):
    H, O, Z, D, E, Dh, Hh, wt, VT, v1, v2, v3, q, bits, scale = sc
    W, U, b, V, c = views(theta, m, K, 3)
    WzrT = wt[: 2 * m * m].reshape((m, 2 * m))  # (W_z; W_r).T and W_n.T, each contiguous
    WnT = wt[2 * m * m :].reshape((m, m))
    transpose(W[: 2 * m], WzrT)
    transpose(W[2 * m :], WnT)
    transpose(V, VT)
    T = X.shape[0]
    gather_inputs(Z, U, b, X, T)  # U x_t + b for all gates ...
    for t in range(T):
        z, h_prev, rh = Z[t], H[t], E[t]
        gaxpy(z[: 2 * m], h_prev, WzrT)  # W_z h + U_z x + b_z, and r's
        sigmoid_(z[: 2 * m], q, bits, scale)
        for i in range(m):
            rh[i] = z[m + i] * h_prev[i]
        gaxpy(z[2 * m :], rh, WnT)  # W_n (r h) + U_n x + b_n
        tanh_(z[2 * m :], q, bits, scale)
        h = H[t + 1]
        for i in range(m):
            h[i] = (1.0 - z[i]) * h_prev[i] + z[i] * z[2 * m + i]
    for t in range(T):
        O[t] = c
    gemm(O[:T], H[1 : T + 1], VT)
    return output_loss(O, Y, T, K, q, bits, scale)


@jit
def backward(theta, grad, X, Y, sc, m, K):
    H, O, Z, D, E, Dh, Hh, wt, VT, dh_next, drh, v3, q, bits, scale = sc
    W, U, b, V, c = views(theta, m, K, 3)
    dW, dU, db, dV, dc = views(grad, m, K, 3)
    T = X.shape[0]
    output_backward(O, Dh, V, Y, T)
    dh_next[:] = 0.0
    for t in range(T - 1, -1, -1):
        a, h_prev, da, dh = Z[t], H[t], D[t], Dh[t]
        for k in range(m):
            dh[k] += dh_next[k]
            da[2 * m + k] = dh[k] * a[k] * (1.0 - a[2 * m + k] * a[2 * m + k])  # da_n
        drh[:] = 0.0
        gaxpy(drh, da[2 * m :], W[2 * m :])  # dL/d(r h) = W_n.T da_n
        for k in range(m):
            z, r, n = a[k], a[m + k], a[2 * m + k]
            da[k] = dh[k] * (n - h_prev[k]) * (z * (1.0 - z))
            da[m + k] = drh[k] * h_prev[k] * (r * (1.0 - r))
            dh_next[k] = dh[k] * (1.0 - z) + drh[k] * r
        gaxpy(dh_next, da[: 2 * m], W[: 2 * m])  # + W_zr.T da_zr
    grad[:] = 0.0
    gemm(dV, O[:T].T, H[1 : T + 1])
    gemm(dW[: 2 * m], D[:T, : 2 * m].T, H[:T])  # dW_zr = sum_t da_zr h_{t-1}^T
    gemm(dW[2 * m :], D[:T, 2 * m :].T, E[:T])  # dW_n = sum_t da_n (r h_{t-1})^T
    row_sums(dc, O, T)
    row_sums(db, D, T)
    scatter_inputs(dU, D, X, T)
