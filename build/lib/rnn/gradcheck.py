"""Backpropagation through time checked against centered finite differences."""

from __future__ import annotations

import numpy as np

from .model import PARAM_NAMES, Params, loss_and_grads

STEP = 1e-5  # finite-difference step h
REL_FLOOR = 1e-8  # floor of rel_error's denominator, so two zero gradients compare as equal


def rel_error(g_a: np.ndarray, g_n: np.ndarray, eps: float = REL_FLOOR) -> np.ndarray:
    """Entry-wise |g_a - g_n| / max(eps, |g_a| + |g_n|)."""
    return np.abs(g_a - g_n) / np.maximum(eps, np.abs(g_a) + np.abs(g_n))


def eval_numerical_gradient(f, x: np.ndarray, h: float = STEP, chunk: int = 256) -> np.ndarray:
    """Centered differences (f(x + h e_i) - f(x - h e_i)) / 2h for every entry i of x.

    f takes a stack of B perturbed copies of x, shape (B, *x.shape), and returns their
    losses, shape (B,) or (B, T) for a loss's T terms: terms are differenced one by one and
    then summed, which keeps the rounding error of a large summed loss out of a small
    difference. Perturbing copies in batches of `chunk` entries leaves x itself untouched.
    """
    grad = np.zeros(x.shape, dtype=x.dtype)
    flat = grad.reshape(-1)
    for start in range(0, x.size, chunk):
        idx = np.arange(start, min(start + chunk, x.size))
        batch = np.repeat(x.reshape(1, -1), 2 * len(idx), axis=0)
        batch[np.arange(len(idx)), idx] += h  # first half: x + h e_i
        batch[len(idx) + np.arange(len(idx)), idx] -= h  # second half: x - h e_i
        losses = f(batch.reshape((2 * len(idx),) + x.shape))
        diff = losses[: len(idx)] - losses[len(idx) :]
        flat[idx] = diff.reshape(len(idx), -1).sum(axis=1) / (2.0 * h)
    return grad


def batched_losses(P: dict, X, Y, h0: np.ndarray) -> np.ndarray:
    """-ln p_t[y_t] for B networks at once, shape (B, T). Each array of P has a leading
    batch axis of size B or 1 (shared); the forward pass is model.step_forward's, batched."""
    h = h0[None]
    out = []
    for x, y in zip(X, Y):
        h = np.tanh(P["W"] @ h + P["U"][:, :, [int(x)]] + P["b"])
        o = P["V"] @ h + P["c"]  # (B, K, 1)
        top = o.max(axis=1, keepdims=True)
        lse = top + np.log(np.exp(o - top).sum(axis=1, keepdims=True))
        out.append((lse - o[:, [int(y)], :])[:, 0, 0])
    return np.stack(out, axis=1)


def numerical_grads(
    params: Params, X, Y, h0: np.ndarray, h: float = STEP, dtype=np.longdouble
) -> Params:
    """dL/dparam for every entry of every parameter by centered differences, as float64.

    The forward passes run in `dtype`: extended precision by default (80-bit on x86-64),
    so the differences measure the derivative rather than float64 rounding of a loss of
    about seq_length * ln K. dtype=np.float64 gives the textbook float64 check.
    """
    shared = {name: value.astype(dtype)[None] for name, value in params.items()}
    h0 = np.asarray(h0, dtype=dtype)
    grads = {}
    for name in PARAM_NAMES:

        def f(stack, name=name):
            return batched_losses(shared | {name: stack}, X, Y, h0)

        grads[name] = eval_numerical_gradient(f, shared[name][0], h).astype(np.float64)
    return Params(**grads)


def gradient_check(
    params: Params,
    X,
    Y,
    h0: np.ndarray,
    h: float = STEP,
    eps: float = REL_FLOOR,
    grad_fn=loss_and_grads,
) -> dict[str, float]:
    """Largest relative error between BPTT and numerical gradients, for each of W, U, b, V, c.

    The analytic gradients g_a come from `grad_fn` (the reference BPTT by default), the
    numerical ones g_n from centered differences with step `h` (1e-5) over every entry, in
    extended precision (see numerical_grads); the relative error of an entry is
    |g_a - g_n| / max(eps, |g_a| + |g_n|) with eps = 1e-8. Use a small network (m = 5):
    it costs two forward passes per entry.
    """
    _, g_a, _ = grad_fn(params, X, Y, h0)
    g_n = numerical_grads(params, X, Y, h0, h)
    return {
        name: float(rel_error(getattr(g_a, name), getattr(g_n, name), eps).max())
        for name in PARAM_NAMES
    }
