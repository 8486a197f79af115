"""rnn.engine.stack's loops over the T steps of one layer, compiled, in single precision.

The same arithmetic as the stack's numpy loops (its comments give the equations and the arrays'
meaning), each cell's forward beside its backward; what changes is that a layer's T steps are
one call. A step's products go to numpy's own OpenBLAS through rnn.engine.kernels.blas and its
elementwise work runs in the same compiled loop, so nothing returns to Python between steps (a
forward step of configs/ten-minutes.yaml's GRU layers, B = 32 and m = 256, went from 210 us to
146, of which the two products take about 123). The elementwise work is several short loops a
step, each writing an array it reads at the same index only, and touching few arrays: the
compiler vectorises a loop only when checks at run time can rule out that a store feeds a later
load, and gives up past a few pairs of arrays (a store at z[2m + j] beside a load at z[j] kept
the GRU's state update scalar, at twice the time).

tanh is a rational function, x times an even polynomial of degree 12 over one of degree 6, with
Eigen's coefficients for float, its argument clamped to +-7.905 (where the function is within 4
ulp of +-1): the compiler vectorises it, where numba's math.tanh would call libm one element at
a time. Over 400,001 points of [-20, 20] its error is at most 4.6 ulp in float32 (numpy's own
float32 tanh: 1.4); the tests hold it to 5. It never reaches +-1 (0.99999976 at most), wobbles
by an ulp near the clamp and rounds subnormal inputs coarsely: differences of the order of
float32's own rounding. It serves float32 only: float64 and the complex-step check keep the
numpy loops.
"""

from __future__ import annotations

import numpy as np

from rnn.engine.kernels.blas import NO_TRANS, ROW_MAJOR, SGEMM
from rnn.engine.kernels.blocks import jit

ONE, HALF, ZERO = np.float32(1.0), np.float32(0.5), np.float32(0.0)
_CLAMP = np.float32(7.90531110763549805)  # beyond it tanh(x) is within 4 ulp of +-1
# p(x) = x (a1 + a3 x^2 + ... + a13 x^12), q(x) = b0 + b2 x^2 + b4 x^4 + b6 x^6
_A = [np.float32(v) for v in (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
                              5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13,
                              -2.76076847742355e-16)]  # fmt: skip
_B = [np.float32(v) for v in (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04,
                              1.19825839466702e-06)]  # fmt: skip
A1, A3, A5, A7, A9, A11, A13 = _A
B0, B2, B4, B6 = _B


@jit
def tanh32(x):
    """tanh of a float32 by the rational function above. NaN stays NaN (the comparisons are
    false for it), so a diverged run still shows as one."""
    x = _CLAMP if x > _CLAMP else x
    x = -_CLAMP if x < -_CLAMP else x
    x2 = x * x
    p = x2 * A13 + A11
    p = x2 * p + A9
    p = x2 * p + A7
    p = x2 * p + A5
    p = x2 * p + A3
    p = x2 * p + A1
    q = x2 * B6 + B4
    q = x2 * q + B2
    q = x2 * q + B0
    return (x * p) / q


@jit
def tanh_rows(X, out):
    """out = tanh32(X) for a 2-D array (the tests' way to reach tanh32)."""
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            out[i, j] = tanh32(X[i, j])


@jit
def _mm(a, b, c, M, N, K, lda, ldb, ldc):
    """c = a b: (M, K) x (K, N), row-major, each given by its first element (a view that
    starts there) and its leading dimension."""
    SGEMM(ROW_MAJOR, NO_TRANS, NO_TRANS, M, N, K, ONE, a.ctypes, lda, b.ctypes, ldb, ZERO,
          c.ctypes, ldc)  # fmt: skip


@jit
def matmul(a, b, c):
    """c = a b for C-contiguous 2-D arrays (the tests' check of the binding)."""
    M, K = a.shape
    N = b.shape[1]
    _mm(a, b, c, M, N, K, K, N, N)


# --- vanilla: a = W h + U x + b, h = tanh(a) ----------------------------------------------------


@jit
def vanilla_forward(WT, A, H, tG):
    T, B, m = A.shape
    for t in range(T):
        _mm(H[t], WT, tG, B, m, m, m, m, m)
        for b in range(B):
            a, g, h = A[t, b], tG[b], H[t + 1, b]
            for j in range(m):
                a[j] = a[j] + g[j]
                h[j] = tanh32(a[j])


@jit
def vanilla_backward(W, dD, H, DZ, dnext):
    T, B, m = dD.shape
    dnext[:] = ZERO
    for t in range(T - 1, -1, -1):
        for b in range(B):
            d, dn, h, da = dD[t, b], dnext[b], H[t + 1, b], DZ[t, b]
            for j in range(m):
                da[j] = (d[j] + dn[j]) * (ONE - h[j] * h[j])
        _mm(DZ[t], W, dnext, B, m, m, m, m, m)  # dh_{t-1} = W^T da


# --- LSTM: gates i, f, o, g (i, f, o's rows of W, U, b halved: sigma by one tanh) ---------------


@jit
def _gates4(row, m):
    """The LSTM's four blocks of a row of 4 m: i, f, o, g."""
    return row[:m], row[m : 2 * m], row[2 * m : 3 * m], row[3 * m :]


@jit
def lstm_forward(WT, A, H, S, TS, tG):
    T, B, G = A.shape
    m = G // 4
    for t in range(T):
        _mm(H[t], WT, tG, B, G, m, m, G, G)
        for b in range(B):
            z, g, s_prev, s, ts, h = A[t, b], tG[b], S[t, b], S[t + 1, b], TS[t, b], H[t + 1, b]
            for j in range(G):
                z[j] = tanh32(z[j] + g[j])
            for j in range(3 * m):
                z[j] = HALF * z[j] + HALF  # sigma(a) = (1 + tanh(a / 2)) / 2
            i, f, o, gg = _gates4(z, m)
            for j in range(m):
                s[j] = f[j] * s_prev[j] + i[j] * gg[j]
            for j in range(m):
                ts[j] = tanh32(s[j])
                h[j] = o[j] * ts[j]  # h = o tanh(s)


@jit
def lstm_backward(W, dD, A, S, TS, DZ, dnext, ds, dh):
    """ds in: dL/ds_t carried from step t+1 (f_{t+1} ds_{t+1}); out: to step t-1."""
    T, B, m = dD.shape
    dnext[:] = ZERO
    ds[:] = ZERO
    for t in range(T - 1, -1, -1):
        for b in range(B):
            i, f, o, g = _gates4(A[t, b], m)
            di, df, do, dg = _gates4(DZ[t, b], m)
            ts, s_prev, dsb, dhb, dDb, dnb = TS[t, b], S[t, b], ds[b], dh[b], dD[t, b], dnext[b]
            for j in range(m):
                dhb[j] = dDb[j] + dnb[j]
            for j in range(m):
                do[j] = dhb[j] * ts[j] * (o[j] * (ONE - o[j]))
            for j in range(m):
                dsb[j] = dsb[j] + dhb[j] * o[j] * (ONE - ts[j] * ts[j])  # h = o tanh(s)
            for j in range(m):
                di[j] = dsb[j] * g[j] * (i[j] * (ONE - i[j]))  # sigma' = sigma (1 - sigma)
            for j in range(m):
                df[j] = dsb[j] * s_prev[j] * (f[j] * (ONE - f[j]))
            for j in range(m):
                dg[j] = dsb[j] * i[j] * (ONE - g[j] * g[j])  # tanh' = 1 - tanh^2
            for j in range(m):
                dsb[j] = dsb[j] * f[j]
        _mm(DZ[t], W, dnext, B, m, 4 * m, 4 * m, m, m)  # dh_{t-1} = W^T dz


# --- GRU: gates z, r (rows halved), n = tanh(W_n (r * h) + U_n x + b_n) -------------------------


@jit
def gru_forward(WT, A, H, RH, tG):
    T, B, G = A.shape
    m = G // 3
    for t in range(T):
        _mm(H[t], WT, tG, B, 2 * m, m, m, G, G)  # h (W_z; W_r)^T
        for b in range(B):
            zr, g, h_prev, rh = A[t, b], tG[b], H[t, b], RH[t, b]
            for j in range(2 * m):
                zr[j] = HALF * tanh32(zr[j] + g[j]) + HALF
            for j in range(m):
                rh[j] = zr[m + j] * h_prev[j]
        _mm(RH[t], WT[0, 2 * m :], tG[0, 2 * m :], B, m, m, m, G, G)  # (r * h) W_n^T
        for b in range(B):
            z, n, gn = A[t, b, :m], A[t, b, 2 * m :], tG[b, 2 * m :]
            h_prev, h = H[t, b], H[t + 1, b]
            for j in range(m):
                n[j] = tanh32(n[j] + gn[j])
            for j in range(m):
                h[j] = (ONE - z[j]) * h_prev[j] + z[j] * n[j]


@jit
def gru_backward(W, dD, A, H, DZ, dh, drh, dnext, rest):
    """dnext + rest is dL/dh_{t-1} through W_zr and around it (the numpy loop's dnext after
    its add): added where it is read, in the same order."""
    T, B, m = dD.shape
    G = 3 * m
    dnext[:] = ZERO
    rest[:] = ZERO
    for t in range(T - 1, -1, -1):
        for b in range(B):
            z, n, dzn, dDb, dnb, rb, dhb = (
                A[t, b, :m], A[t, b, 2 * m :], DZ[t, b, 2 * m :], dD[t, b], dnext[b], rest[b], dh[b]
            )  # fmt: skip
            for j in range(m):
                dhb[j] = dDb[j] + (dnb[j] + rb[j])
            for j in range(m):
                dzn[j] = dhb[j] * z[j] * (ONE - n[j] * n[j])  # tanh' = 1 - tanh^2
        _mm(DZ[t, 0, 2 * m :], W[2 * m :], drh, B, m, m, G, m, m)  # dL/d(r h) = W_n^T dn
        for b in range(B):
            z, r, n, h_prev = A[t, b, :m], A[t, b, m : 2 * m], A[t, b, 2 * m :], H[t, b]
            dzz, dzr, dhb, drb, rb = DZ[t, b, :m], DZ[t, b, m : 2 * m], dh[b], drh[b], rest[b]
            for j in range(m):
                dzz[j] = dhb[j] * (n[j] - h_prev[j]) * (z[j] * (ONE - z[j]))
            for j in range(m):
                dzr[j] = drb[j] * h_prev[j] * (r[j] * (ONE - r[j]))
            for j in range(m):
                rb[j] = dhb[j] * (ONE - z[j]) + drb[j] * r[j]
        _mm(DZ[t], W, dnext, B, m, 2 * m, G, m, m)  # W_zr^T dzr
