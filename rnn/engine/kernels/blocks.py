"""The compiled building blocks every cell's kernel shares: exp, tanh and the sigmoid in a
form the compiler vectorises, and register-blocked matrix products along contiguous rows.

Why it is fast. At m = 100 Python's per-call overhead would dominate, so the whole loop over
updates runs compiled. Of one update's products, the recurrence's matrix-vector products
forward and backward cannot be batched; the output layer and every gradient can, and are done
as matrix-matrix products after the recurrence. All of them are one loop, `gaxpy` or `gemm`,
that runs along C-contiguous rows (numba vectorises only unit-stride loops) and holds partial
sums in registers across several rows, so memory traffic, not arithmetic, sets the pace less
often. No sum is reassociated (multiply-adds may be fused): results differ from the
reference's BLAS only by rounding, and the tests hold the two paths together.

What is left, measured for the LSTM at m = 100 (about 480 us an update): the recurrence's
products stream W (320 KB) from the L2 cache at every step, forward and backward (about 40%
of an update, at the cache's bandwidth); the gradient's products (dW alone about 12%) run
near the multiply-add units' peak; AdaGrad over the 54,000 or so entries a sequence touches
(about 15%) no longer waits on the divider (`_adagrad_step`).
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError:  # numba is pinned in requirements; this guards exotic platforms only
    numba = None

AVAILABLE = numba is not None


def jit(fn):
    # error_model="numpy": float division without Python's zero check, which would
    # otherwise keep the AdaGrad loop from vectorising (no division here can be by zero).
    # fastmath "contract" only: a * b + c may become one fused multiply-add (one rounding
    # instead of two, as BLAS does); nothing is reassociated or assumed finite.
    if not AVAILABLE:
        return fn
    return numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})(fn)


# exp and tanh in a form the compiler vectorises. numba calls libm one element at a time
# for math.exp and math.tanh; a step's 100 tanh and 80 exp then cost as much as its matrix
# products. Here x = k ln2 + r with |r| <= ln2 / 2, e^r - 1 is a degree-13 Taylor polynomial
# (truncation error < 5e-18), and 2^k is built from its exponent bits. Accuracy is within
# a few ulp of libm's; tests compare both against numpy.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two, so k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_X_MIN = -708.0  # exp(-708) is still a normal double; below it the result is clamped there


@jit
def _expm1_parts(x, n, q, bits):
    """For i < n, with x[i] = k ln2 + r (x[i] <= 709): q[i] = e^r - 1 and bits[i] = the
    bits of 2^k. Then e^x = 2^k q + 2^k and e^x - 1 = 2^k q + (2^k - 1). q may be x."""
    for i in range(n):
        v = x[i]
        v = _X_MIN if v < _X_MIN else v
        k = math.floor(v * _LOG2E + 0.5)
        r = (v - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        q[i] = (p * r) * r + r
        bits[i] = (np.int64(k) + 1023) << 52


@jit
def exp_shifted(x, q, bits, scale):
    """x[:] = exp(x - x.max()) in place; returns the sum (the softmax denominator).
    scale is bits read as float64 (see scratch)."""
    n = x.shape[0]
    top = x.max()
    for i in range(n):
        x[i] -= top
    _expm1_parts(x, n, q, bits)
    total = 0.0
    for i in range(n):
        x[i] = scale[i] * q[i] + scale[i]
        total += x[i]
    return total


@jit
def tanh_(a, q, bits, scale):
    """a[:] = tanh(a) in place: tanh|a| = -e / (2 + e) with e = expm1(-2|a|), exact near 0.
    q holds at least 2 n entries: -2|a| goes to its second half, so that _expm1_parts reads
    and writes separate memory (the compiler vectorises a loop only if they cannot overlap;
    in place it ran four times slower)."""
    n = a.shape[0]
    x = q[n : 2 * n]
    for i in range(n):
        x[i] = -2.0 * abs(a[i])
    _expm1_parts(x, n, q, bits)
    for i in range(n):
        e = scale[i] * q[i] + (scale[i] - 1.0)
        t = -e / (2.0 + e)
        a[i] = t if a[i] >= 0.0 else -t


@jit
def transpose(A, AT):
    """AT[:, :] = A.T (a plain double loop: three times faster here than 8 x 8 tiles)."""
    rows, cols = A.shape
    for j in range(cols):
        for i in range(rows):
            AT[j, i] = A[i, j]


@jit
def gaxpy(acc, coef, R):
    """acc += sum_j coef[j] * R[j] over the rows of R, added in order j = 0, 1, 2, ...

    The recurrence's matrix-vector products are this loop (and `gemm` is it for four
    accumulators at once). Eight rows at a time, with the sum held in a register between
    them, it loads and stores acc an eighth as often as a plain axpy per row (measured: 1.3
    to 1.5 times four rows' speed on the gated cells' 300 to 400 wide rows); the order of
    the additions, and so the rounding, is the plain one's."""
    n, width = coef.shape[0], acc.shape[0]
    j = 0
    while j + 8 <= n:
        c0, c1, c2, c3 = coef[j], coef[j + 1], coef[j + 2], coef[j + 3]
        c4, c5, c6, c7 = coef[j + 4], coef[j + 5], coef[j + 6], coef[j + 7]
        r0, r1, r2, r3 = R[j], R[j + 1], R[j + 2], R[j + 3]
        r4, r5, r6, r7 = R[j + 4], R[j + 5], R[j + 6], R[j + 7]
        for i in range(width):
            a = (((acc[i] + c0 * r0[i]) + c1 * r1[i]) + c2 * r2[i]) + c3 * r3[i]
            acc[i] = (((a + c4 * r4[i]) + c5 * r5[i]) + c6 * r6[i]) + c7 * r7[i]
        j += 8
    while j + 4 <= n:
        c0, c1, c2, c3 = coef[j], coef[j + 1], coef[j + 2], coef[j + 3]
        r0, r1, r2, r3 = R[j], R[j + 1], R[j + 2], R[j + 3]
        for i in range(width):
            acc[i] = (((acc[i] + c0 * r0[i]) + c1 * r1[i]) + c2 * r2[i]) + c3 * r3[i]
        j += 4
    while j < n:
        c0, r0 = coef[j], R[j]
        for i in range(width):
            acc[i] += c0 * r0[i]
        j += 1


@jit
def gemm(C, A, B):
    """C += A @ B for row-major C (n, w), B (p, w); A (n, p) may be a transposed view.

    Four rows of C against four rows of B at a time: per element, 4 loads of B and 4 loads
    and stores of C serve 16 multiply-adds. Each C[r, i] still adds its terms in order
    j = 0, 1, 2, ..., so the rounding is that of the plain loop."""
    _gemm(C, A, B, False)


@jit
def gemm_set(C, A, B):
    """C = A @ B, the same numbers as C[:] = 0 followed by gemm (0 + x is x), but each block
    of four rows is cleared just before it is summed into, while it is in cache: no separate
    pass over C."""
    _gemm(C, A, B, True)


@jit
def _gemm(C, A, B, clear):
    n, p = A.shape
    r = 0
    while r + 4 <= n:
        C0, C1, C2, C3 = C[r], C[r + 1], C[r + 2], C[r + 3]
        if clear:
            C0[:] = 0.0
            C1[:] = 0.0
            C2[:] = 0.0
            C3[:] = 0.0
        j = 0
        while j + 4 <= p:
            B0, B1, B2, B3 = B[j], B[j + 1], B[j + 2], B[j + 3]
            a00, a01, a02, a03 = A[r, j], A[r, j + 1], A[r, j + 2], A[r, j + 3]
            a10, a11, a12, a13 = A[r + 1, j], A[r + 1, j + 1], A[r + 1, j + 2], A[r + 1, j + 3]
            a20, a21, a22, a23 = A[r + 2, j], A[r + 2, j + 1], A[r + 2, j + 2], A[r + 2, j + 3]
            a30, a31, a32, a33 = A[r + 3, j], A[r + 3, j + 1], A[r + 3, j + 2], A[r + 3, j + 3]
            for i in range(C.shape[1]):
                b0, b1, b2, b3 = B0[i], B1[i], B2[i], B3[i]
                C0[i] = (((C0[i] + a00 * b0) + a01 * b1) + a02 * b2) + a03 * b3
                C1[i] = (((C1[i] + a10 * b0) + a11 * b1) + a12 * b2) + a13 * b3
                C2[i] = (((C2[i] + a20 * b0) + a21 * b1) + a22 * b2) + a23 * b3
                C3[i] = (((C3[i] + a30 * b0) + a31 * b1) + a32 * b2) + a33 * b3
            j += 4
        while j < p:
            Bj = B[j]
            a0, a1, a2, a3 = A[r, j], A[r + 1, j], A[r + 2, j], A[r + 3, j]
            for i in range(C.shape[1]):
                b = Bj[i]
                C0[i] += a0 * b
                C1[i] += a1 * b
                C2[i] += a2 * b
                C3[i] += a3 * b
            j += 1
        r += 4
    while r < n:
        if clear:
            C[r] = 0.0
        gaxpy(C[r], A[r], B)
        r += 1


@jit
def sigmoid_(a, q, bits, scale):
    """a[:] = sigmoid(a) in place, as (1 + tanh(a/2)) / 2 (the reference's form: no overflow)."""
    n = a.shape[0]
    for i in range(n):
        a[i] *= 0.5
    tanh_(a, q, bits, scale)
    for i in range(n):
        a[i] = 0.5 * (1.0 + a[i])


@jit
def views(theta, m, K, gates):
    """W (G m, m), U (G m, K), b (G m,), V (K, m), c (K,) as views of theta (Params.flatten
    order), G = gates."""
    Gm = gates * m
    o1 = Gm * m
    o2 = o1 + Gm * K
    o3 = o2 + Gm
    o4 = o3 + K * m
    return (
        theta[:o1].reshape((Gm, m)),
        theta[o1:o2].reshape((Gm, K)),
        theta[o2:o3],
        theta[o3:o4].reshape((K, m)),
        theta[o4 : o4 + K],
    )


@jit
def output_loss(O, Y, T, K, q, bits, scale):
    """Rows O[t] hold o_t = V h_t + c; replaces them by p_t and returns sum_t -ln p_t[y_t]."""
    loss = 0.0
    for t in range(T):
        o = O[t]
        loss += o.max() - o[Y[t]]  # -ln p[y] = logsumexp(o) - o[y], shifted by the max
        total = exp_shifted(o, q, bits, scale)
        loss += math.log(total)
        for k in range(K):
            o[k] /= total  # p_t
    return loss


@jit
def output_backward(O, Dh, V, Y, T):
    """O holds p_t: overwrites it with dL/do_t = p_t - onehot(y_t) and sets Dh[t] = V.T do_t."""
    for t in range(T):
        O[t, Y[t]] -= 1.0
    gemm_set(Dh[:T], O[:T], V)


@jit
def _adagrad_step(g, acc, eta, eps):
    """eta g / sqrt(acc + eps) without double-precision sqrt and division: those two run one
    at a time on the divider and were most of AdaGrad's time. A single-precision estimate of
    1 / sqrt(x) (about 24 bits) is refined by one Newton step to about 48; from it, one
    residual correction each gives the square root s and then the quotient eta g / s. Not
    proven correctly rounded, but measured against the plain expression it gave the same
    double on all of 15 million random (g, acc) with acc from 1e-8 to 1e7; the tests hold
    the compiled paths to the reference to rounding. x stays in single precision's range:
    acc + eps lies between eps (at least 1e-30, rnn.runs.config) and g^2 per update times the
    number of updates (with clipping, clip^2: far from float32's 3e38)."""
    x = acc + eps
    r = np.float64(np.float32(1.0) / np.sqrt(np.float32(x)))
    r = r + r * (0.5 - (0.5 * x) * (r * r))
    s = x * r
    s = s + (x - s * s) * (0.5 * r)
    a = eta * g
    q = a * r
    return q + (a - q * s) * r


@jit
def adagrad(theta, G2, grad, eta, eps, clip, scale):
    """Scale each gradient entry (1, or 1/L for the mean loss), clip it to [-clip, clip],
    then AdaGrad; written to vectorise."""
    for i in range(theta.shape[0]):
        g = grad[i] * scale
        g = clip if g > clip else g
        g = -clip if g < -clip else g
        acc = G2[i] + g * g
        G2[i] = acc
        theta[i] -= _adagrad_step(g, acc, eta, eps)


@jit
def adagrad_keep(theta, G2, grad, eta, eps, clip, scale, old):
    """`adagrad` that also saves theta as it was into old, in the same pass (the copy of the
    best parameters then costs no pass of its own over theta)."""
    for i in range(theta.shape[0]):
        g = grad[i] * scale
        g = clip if g > clip else g
        g = -clip if g < -clip else g
        acc = G2[i] + g * g
        G2[i] = acc
        w = theta[i]
        old[i] = w
        theta[i] = w - _adagrad_step(g, acc, eta, eps)


@jit
def rmsprop(theta, G2, grad, rule):
    """Scale, clip, then RMSProp on every entry: G = gamma G + (1 - gamma) g^2, theta -=
    eta g / sqrt(G + eps), the expression AdaGrad's step computes (`_adagrad_step`; G + eps
    lies between eps and the largest g^2, in its range unless training has diverged)."""
    eta, eps, clip, scale, gamma = rule.eta, rule.eps, rule.clip, rule.scale, rule.gamma
    for i in range(theta.shape[0]):
        g = grad[i] * scale
        g = clip if g > clip else g
        g = -clip if g < -clip else g
        acc = gamma * G2[i] + (1.0 - gamma) * (g * g)
        G2[i] = acc
        theta[i] -= _adagrad_step(g, acc, eta, eps)


@jit
def adam(theta, m, v, grad, rule, c1, c2):
    """Scale, clip, then Adam on every entry, c1 = 1 - beta1^t and c2 = 1 - beta2^t being
    the bias corrections of this update: rnn.engine.optim.Adam entry by entry, except that
    m / c1 and v / c2 are products with 1 / c1 and 1 / c2 (one division an entry, not
    three: square roots and divisions were most of Adam's time)."""
    eps, clip, scale = rule.eps, rule.clip, rule.scale
    b1, b2 = rule.beta1, rule.beta2
    eta_c1, r2 = rule.eta / c1, 1.0 / c2  # eta mhat = eta_c1 m, vhat = r2 v
    for i in range(theta.shape[0]):
        g = grad[i] * scale
        g = clip if g > clip else g
        g = -clip if g < -clip else g
        mi = b1 * m[i] + (1.0 - b1) * g
        vi = b2 * v[i] + (1.0 - b2) * (g * g)
        m[i] = mi
        v[i] = vi
        theta[i] -= (eta_c1 * mi) / (math.sqrt(r2 * vi) + eps)


@jit
def gather_inputs(Z, U, b, X, T):
    """Z[t] = b + U[:, X[t]] for t < T: the input's share of every step's pre-activation,
    gathered row by row of U (a row stays in cache while its T entries are read)."""
    for r in range(U.shape[0]):
        u, br = U[r], b[r]
        for t in range(T):
            Z[t, r] = br + u[X[t]]


@jit
def scatter_inputs(dU, D, X, T):
    """dU[:, X[t]] += D[t] for t = 0, 1, ..., T-1, row by row of dU."""
    for r in range(dU.shape[0]):
        du = dU[r]
        for t in range(T):
            du[X[t]] += D[t, r]


@jit
def scatter_inputs_set(dU, D, X, T):
    """scatter_inputs into the columns X[0..T-1] of dU cleared first (the same numbers as
    clearing all of dU): the other columns are left as they were, and are not read by the
    update (`adagrad_columns`); whoever returns the whole gradient starts it at zero."""
    for r in range(dU.shape[0]):
        du = dU[r]
        for t in range(T):
            du[X[t]] = 0.0
        for t in range(T):
            du[X[t]] += D[t, r]


@jit
def row_sums(out, A, T):
    """out[:] = A[0] + A[1] + ... + A[T-1] (the bias gradients), along contiguous rows."""
    out[:] = 0.0
    for t in range(T):
        out += A[t]


@jit
def adagrad_columns(theta, G2, grad, cols, eta, eps, clip, scale):
    """`adagrad` on the columns `cols` of the 2-D views theta, G2, grad only: U's gradient is
    zero outside the columns of the sequence's characters, and there AdaGrad changes nothing
    (G2 += 0, theta -= 0), so those entries are skipped."""
    for r in range(theta.shape[0]):
        th, acc_row, g_row = theta[r], G2[r], grad[r]
        for k in cols:
            g = g_row[k] * scale
            g = clip if g > clip else g
            g = -clip if g < -clip else g
            acc = acc_row[k] + g * g
            acc_row[k] = acc
            th[k] -= _adagrad_step(g, acc, eta, eps)


@jit
def gates_(z, n_sigmoid, q, bits, scale):
    """z[:n_sigmoid] = sigmoid(z[:n_sigmoid]) and the rest tanh(z[n_sigmoid:]), in place, with
    one pass of exp for both: the same numbers as sigmoid_ and tanh_ (-2|a/2| = -|a|)."""
    n = z.shape[0]
    x = q[n : 2 * n]
    for i in range(n_sigmoid):
        x[i] = -abs(z[i])
    for i in range(n_sigmoid, n):
        x[i] = -2.0 * abs(z[i])
    _expm1_parts(x, n, q, bits)
    for i in range(n):
        e = scale[i] * q[i] + (scale[i] - 1.0)
        t = -e / (2.0 + e)
        z[i] = t if z[i] >= 0.0 else -t
    for i in range(n_sigmoid):
        z[i] = 0.5 * (1.0 + z[i])
