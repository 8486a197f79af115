"""The fast path: whole training chunks compiled with numba, same mathematics as rnn.model.

The parameters travel as one flat float64 vector theta in the order W, U, b, V, c
(`Params.flatten`), so AdaGrad, clipping and keeping the best model are single loops.

Why it is fast: one update does 25 matrix-vector products forward and 25 backward that
cannot be batched (the recurrence), plus work that can. Python's per-call overhead
dominates at m = 100, so the whole loop over updates runs compiled. Inside, every inner
loop runs along contiguous memory with no floating-point reassociation: the output
projection and all outer-product gradients are accumulated after the recurrence, one
parameter row at a time, so each matrix is streamed once per update instead of once per
time step. Results agree with the reference to rounding (tests hold them to 1e-9).
"""
from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError:  # numba is pinned in requirements; this guards exotic platforms only
    numba = None

AVAILABLE = numba is not None


def _jit(fn):
    # error_model="numpy": float division without Python's zero check, which would
    # otherwise keep the AdaGrad loop from vectorising (no division here can be by zero).
    return numba.njit(cache=True, nogil=True, error_model="numpy")(fn) if AVAILABLE else fn


@_jit
def _views(theta, m, K):
    """W (m, m), U (m, K), b (m,), V (K, m), c (K,) as views of theta."""
    o1 = m * m
    o2 = o1 + m * K
    o3 = o2 + m
    o4 = o3 + K * m
    return (theta[:o1].reshape((m, m)), theta[o1:o2].reshape((m, K)), theta[o2:o3],
            theta[o3:o4].reshape((K, m)), theta[o4:o4 + K])


@_jit
def _transpose(A, AT):
    """AT[:, :] = A.T, in 8 x 8 tiles so both sides stay in cache lines already loaded."""
    rows, cols = A.shape
    for i0 in range(0, rows, 8):
        for j0 in range(0, cols, 8):
            for i in range(i0, min(i0 + 8, rows)):
                for j in range(j0, min(j0 + 8, cols)):
                    AT[j, i] = A[i, j]


@_jit
def _forward(theta, X, Y, H, O, WT, VT, m, K):
    """Run the sequence forward from H[0] = h0. Fills H[t+1] = h_t (T+1, m) and O[t] = p_t
    (T, K); returns the loss (nats, summed). WT, VT are scratch for the transposes."""
    W, U, b, V, c = _views(theta, m, K)
    _transpose(W, WT)  # rows of W.T are columns of W: W h becomes contiguous axpys
    _transpose(V, VT)
    T = X.shape[0]
    for t in range(T):
        hp = H[t]
        a = H[t + 1]
        x = X[t]
        for i in range(m):
            a[i] = b[i] + U[i, x]
        for j in range(m):
            s = hp[j]
            row = WT[j]
            for i in range(m):
                a[i] += s * row[i]
        for i in range(m):
            a[i] = math.tanh(a[i])
    # o_t = V h_t + c for all t at once: each row of V.T is read once, not T times.
    for t in range(T):
        O[t, :] = c
    for j in range(m):
        row = VT[j]
        for t in range(T):
            s = H[t + 1, j]
            o = O[t]
            for k in range(K):
                o[k] += s * row[k]
    loss = 0.0
    for t in range(T):
        o = O[t]
        top = o.max()
        loss += top - o[Y[t]]  # -ln p[y] = logsumexp(o) - o[y], shifted by the max
        total = 0.0
        for k in range(K):
            o[k] = math.exp(o[k] - top)
            total += o[k]
        loss += math.log(total)
        for k in range(K):
            o[k] /= total
    return loss


@_jit
def _backward(theta, grad, X, Y, H, O, D, m, K):
    """BPTT through the sequence that `_forward` just ran. Writes dL/dtheta into grad.

    O holds p_t and is overwritten with dL/do_t = p_t - onehot(y_t); D (T, m) is scratch
    and ends holding dL/da_t."""
    W, U, b, V, c = _views(theta, m, K)
    dW, dU, db, dV, dc = _views(grad, m, K)
    grad[:] = 0.0
    T = X.shape[0]
    for t in range(T):
        O[t, Y[t]] -= 1.0
    # dL/dh_t from the outputs, for all t: D[t] = V.T do_t, V streamed once.
    D[:, :] = 0.0
    for k in range(K):
        row = V[k]
        for t in range(T):
            s = O[t, k]
            g = D[t]
            for i in range(m):
                g[i] += s * row[i]
    # The recurrence, backwards: da_t = (1 - h_t^2) (dh from output + W.T da_{t+1}).
    for t in range(T - 1, -1, -1):
        h = H[t + 1]
        g = D[t]
        if t < T - 1:
            nxt = D[t + 1]
            for i in range(m):
                s = nxt[i]
                row = W[i]
                for j in range(m):
                    g[j] += s * row[j]
        for i in range(m):
            g[i] *= 1.0 - h[i] * h[i]
    # Gradients from the stored deltas, one parameter row at a time.
    for k in range(K):
        row = dV[k]
        for t in range(T):
            s = O[t, k]
            h = H[t + 1]
            for j in range(m):
                row[j] += s * h[j]
            dc[k] += s
    for i in range(m):
        row = dW[i]
        for t in range(T):
            s = D[t, i]
            hp = H[t]
            for j in range(m):
                row[j] += s * hp[j]
            db[i] += s
            dU[i, X[t]] += s


@_jit
def _scratch(T, m, K):
    return (np.zeros((T + 1, m)), np.zeros((T, K)), np.zeros((T, m)),
            np.zeros((m, m)), np.zeros((m, K)))


@_jit
def loss_and_grads_flat(theta, X, Y, h0, m, K):
    """(loss, dL/dtheta, h_last) for one sequence; the compiled twin of model.loss_and_grads."""
    H, O, D, WT, VT = _scratch(X.shape[0], m, K)
    H[0] = h0
    grad = np.empty_like(theta)
    loss = _forward(theta, X, Y, H, O, WT, VT, m, K)
    _backward(theta, grad, X, Y, H, O, D, m, K)
    return loss, grad, H[X.shape[0]].copy()


@_jit
def mean_loss_flat(theta, ids, h0, m, K):
    """Mean -ln p per character over the sequence ids[1:] given ids[:-1], hidden state
    carried from h0 through all of it. Forward only; used for the validation split."""
    n = ids.shape[0] - 1
    chunk = min(n, 1024)
    H, O, _, WT, VT = _scratch(chunk, m, K)
    h = h0.copy()
    total = 0.0
    for start in range(0, n, chunk):
        T = min(chunk, n - start)
        H[0] = h
        total += _forward(theta, ids[start:start + T], ids[start + 1:start + T + 1],
                          H[:T + 1], O[:T], WT, VT, m, K)
        h = H[T].copy()
    return total / max(n, 1)


@_jit
def run_updates(ids, theta, G2, best_theta, h, step0, n, per_epoch, L, m, K,
                eta, eps, clip, smooth, best_smooth, best_step, losses, smooths):
    """Run updates step0 .. step0+n-1 in place; returns (smooth, best_smooth, best_step).

    Update `step` trains on the sequence starting at (step % per_epoch) * L, with the hidden
    state zeroed when that is 0 (an epoch's start) and carried otherwise. theta: parameters,
    G2: AdaGrad's sums of squared gradients, best_theta: the parameters with the lowest
    smooth loss so far, h (m,): the carried hidden state; all updated in place. losses[step]
    and smooths[step] receive the loss and smooth loss measured before update `step`.
    """
    H, O, D, WT, VT = _scratch(L, m, K)
    grad = np.empty_like(theta)
    for step in range(step0, step0 + n):
        j = step % per_epoch
        if j == 0:
            h[:] = 0.0
        start = j * L
        X = ids[start:start + L]
        Y = ids[start + 1:start + L + 1]
        H[0] = h
        loss = _forward(theta, X, Y, H, O, WT, VT, m, K)
        _backward(theta, grad, X, Y, H, O, D, m, K)
        h[:] = H[L]
        smooth = 0.999 * smooth + 0.001 * loss
        losses[step] = loss
        smooths[step] = smooth
        if smooth < best_smooth:
            best_smooth = smooth
            best_step = step
            best_theta[:] = theta  # the parameters this loss was measured with
        for i in range(theta.shape[0]):  # clip, then AdaGrad; written to vectorise
            g = grad[i]
            g = clip if g > clip else g
            g = -clip if g < -clip else g
            acc = G2[i] + g * g
            G2[i] = acc
            theta[i] -= eta * g / math.sqrt(acc + eps)
    return smooth, best_smooth, best_step
