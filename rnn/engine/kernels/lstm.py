"""The LSTM cell compiled: rnn.engine.cells.lstm's step pair over a whole sequence (gates
i, f, o, g).

H[t] holds the state [h; s] (2m): h in H[t, :m], s in H[t, m:]; Hh[t] is h again, contiguous
for the products. Z[t] the gates i, f, o, g
after their nonlinearities, E[t] = tanh(s_t), D[t] = dL/dz_t. Scratch: see kernels.vanilla.
"""

from __future__ import annotations

from rnn.engine.kernels.blocks import (
    gates_,
    gather_inputs,
    gaxpy,
    gemm,
    gemm_set,
    jit,
    output_backward,
    output_loss,
    row_sums,
    scatter_inputs_set,
    tanh_,
    transpose,
    views,
)


@jit
def forward(theta, X, Y, sc, m, K):
    H, O, Z, D, E, Dh, Hh, wt, VT, v1, v2, v3, q, bits, scale = sc
    W, U, b, V, c = views(theta, m, K, 4)
    WT = wt.reshape((m, 4 * m))
    transpose(W, WT)
    transpose(V, VT)
    T = X.shape[0]
    Hh[0] = H[0, :m]
    gather_inputs(Z, U, b, X, T)  # z_t = U x_t + b ...
    for t in range(T):
        z = Z[t]
        gaxpy(z, Hh[t], WT)  # z = W h_{t-1} + U x_t + b
        gates_(z, 3 * m, q, bits, scale)  # i, f, o = sigmoid; g = tanh
        s_prev, s, tanh_s = H[t, m:], H[t + 1, m:], E[t]
        for i in range(m):
            s[i] = z[m + i] * s_prev[i] + z[i] * z[3 * m + i]  # s_t = f s_{t-1} + i g
            tanh_s[i] = s[i]
        tanh_(tanh_s, q, bits, scale)
        h = Hh[t + 1]
        for i in range(m):
            h[i] = z[2 * m + i] * tanh_s[i]  # h_t = o tanh(s_t)
        H[t + 1, :m] = h
    for t in range(T):
        O[t] = c
    gemm(O[:T], Hh[1 : T + 1], VT)
    return output_loss(O, Y, T, K, q, bits, scale)


@jit
def backward(theta, grad, X, Y, sc, m, K):
    H, O, Z, D, E, Dh, Hh, wt, VT, dh_next, ds_next, v3, q, bits, scale = sc
    W, U, b, V, c = views(theta, m, K, 4)
    dW, dU, db, dV, dc = views(grad, m, K, 4)
    T = X.shape[0]
    output_backward(O, Dh, V, Y, T)  # Dh[t] = V.T do_t, all t at once
    dh_next[:] = 0.0
    ds_next[:] = 0.0
    for t in range(T - 1, -1, -1):
        z, tanh_s, s_prev, dz, dh = Z[t], E[t], H[t, m:], D[t], Dh[t]
        # One loop over k reading and writing seven arrays would stay scalar (the compiler
        # vectorises a loop only when few pairs of arrays need checking for overlap); these
        # loops compute the same expressions, passing dh and ds through memory.
        for k in range(m):
            dh[k] += dh_next[k]  # dh_t (dh_next + dh: the same sum)
        for k in range(m):
            o, ts = z[2 * m + k], tanh_s[k]
            ds_next[k] = ds_next[k] + dh[k] * o * (1.0 - ts * ts)  # ds_t
        for k in range(m):
            i, f, o, g = z[k], z[m + k], z[2 * m + k], z[3 * m + k]
            ds = ds_next[k]
            dz[k] = ds * g * (i * (1.0 - i))
            dz[m + k] = ds * s_prev[k] * (f * (1.0 - f))
            dz[2 * m + k] = dh[k] * tanh_s[k] * (o * (1.0 - o))
            dz[3 * m + k] = ds * i * (1.0 - g * g)
        for k in range(m):
            ds_next[k] *= z[m + k]  # ds_{t-1} = f ds_t, from the future
        dh_next[:] = 0.0
        gaxpy(dh_next, dz, W)  # dh_{t-1} = W.T dz_t
    gemm_set(dV, O[:T].T, Hh[1 : T + 1])  # dV = sum_t do_t h_t^T
    gemm_set(dW, D[:T].T, Hh[:T])  # dW = sum_t dz_t h_{t-1}^T
    row_sums(dc, O, T)  # row_sums and gemm_set overwrite, and so does:
    row_sums(db, D, T)
    scatter_inputs_set(dU, D, X, T)  # (columns of dU absent from X are left alone)
