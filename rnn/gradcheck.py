"""Backpropagation through time checked against centered finite differences."""
from __future__ import annotations

import numpy as np

from .model import PARAM_NAMES, Params, loss_and_grads, sequence_losses

STEP = 1e-5        # finite-difference step h
REL_FLOOR = 1e-8   # floor of rel_error's denominator, so two zero gradients compare as equal


def rel_error(g_a: np.ndarray, g_n: np.ndarray, eps: float = REL_FLOOR) -> np.ndarray:
    """Entry-wise |g_a - g_n| / max(eps, |g_a| + |g_n|)."""
    return np.abs(g_a - g_n) / np.maximum(eps, np.abs(g_a) + np.abs(g_n))


def eval_numerical_gradient(f, x: np.ndarray, h: float = STEP) -> np.ndarray:
    """Centered differences (f(x + h e_i) - f(x - h e_i)) / 2h for every entry i of x.

    x is perturbed in place and always restored, even if f raises.
    """
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        try:
            x[i] = saved + h
            f_plus = f()
            x[i] = saved - h
            f_minus = f()
        finally:
            x[i] = saved
        # f may return the loss's terms: differencing them term by term, then summing,
        # keeps the rounding error of the large summed loss out of the small difference.
        grad[i] = np.sum(f_plus - f_minus) / (2.0 * h)
    return grad


def numerical_grads(params: Params, X, Y, h0: np.ndarray, h: float = STEP,
                    dtype=np.longdouble) -> Params:
    """dL/dparam for every entry of every parameter by centered differences, as float64.

    The forward passes run in `dtype`: extended precision by default (80-bit on x86-64),
    so the differences measure the derivative rather than float64 rounding of a loss of
    about seq_length * ln K. dtype=np.float64 gives the textbook float64 check.
    """
    work = params.map(lambda a: a.astype(dtype))  # a copy: the caller's arrays are untouched
    h0 = np.asarray(h0, dtype=dtype)

    def loss() -> np.ndarray:
        return sequence_losses(work, X, Y, h0)

    return Params(**{name: eval_numerical_gradient(loss, getattr(work, name), h).astype(np.float64)
                     for name in PARAM_NAMES})


def gradient_check(params: Params, X, Y, h0: np.ndarray, h: float = STEP,
                   eps: float = REL_FLOOR, grad_fn=loss_and_grads) -> dict[str, float]:
    """Largest relative error between BPTT and numerical gradients, for each of W, U, b, V, c.

    The analytic gradients g_a come from `grad_fn` (the reference BPTT by default), the
    numerical ones g_n from centered differences with step `h` (1e-5) over every entry, in
    extended precision (see numerical_grads); the relative error of an entry is
    |g_a - g_n| / max(eps, |g_a| + |g_n|) with eps = 1e-8. Use a small network (m = 5):
    it costs two forward passes per entry.
    """
    _, g_a, _ = grad_fn(params, X, Y, h0)
    g_n = numerical_grads(params, X, Y, h0, h)
    return {name: float(rel_error(getattr(g_a, name), getattr(g_n, name), eps).max())
            for name in PARAM_NAMES}
