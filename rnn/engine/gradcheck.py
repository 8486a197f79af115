"""Backpropagation through time checked against finite differences, in float64 everywhere.

The numerical derivative of an entry is the fourth-order centered difference

    g_n = [8 (L(x + delta) - L(x - delta)) - (L(x + 2 delta) - L(x - 2 delta))] / (12 delta)

with delta = DELTA. Its truncation error is O(delta^4), so delta can be large enough that the
float64 rounding of a loss of about seq_length ln K, divided by delta, stays near 1e-11 (the
plain two-point difference needs a step so small that the rounding dominates, or extended
precision, which is 80-bit on x86-64 Linux but plain float64 on Windows and Apple silicon).
The loss's terms are differenced one by one and then summed (for the mean loss, summed and
divided by T: every check takes the loss mode training uses, rnn.engine.model.LOSSES).

The error of an entry is |g_a - g_n| / max(REL_FLOOR, |g_a| + |g_n|): relative for gradients
larger than REL_FLOOR, absolute (below PASS_BELOW * REL_FLOOR = 1e-10 to pass) for smaller
ones, whose relative error float64 differences cannot resolve. Measured with m = 5 and 25
characters, all three cells, K = 67, sigma 0.01 to 0.5: largest error 7e-8.

A parameter with at most FULL_UP_TO entries is checked entry by entry; a larger one on SAMPLE
entries drawn at random (seeded), so the check's cost stops growing with K. Each parameter's
result says how many entries were checked of how many.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from rnn.engine.model import Params, init_network, loss_and_grads, loss_scale, sequence_losses

DELTA = 1e-3  # finite-difference step
REL_FLOOR = 1e-4  # floor of rel_error's denominator
PASS_BELOW = 1e-6  # an entry passes if its error is below this
FULL_UP_TO = 1500  # parameters with at most this many entries are checked in full ...
SAMPLE = 100  # ... larger ones on this many random entries (K = 5000, m = 5: about 3 s)
STENCIL = ((1, 8.0), (-1, -8.0), (2, -1.0), (-2, 1.0))  # (offset in deltas, weight / 12 delta)
_BUDGET = 2**21  # float64 entries of perturbed copies held at once (16 MB)


class ParamCheck(float):
    """The largest error over the checked entries of one parameter. A float (it compares and
    formats as one), with `checked` entries of `size` checked."""

    def __new__(cls, error: float, checked: int, size: int):
        self = super().__new__(cls, error)
        self.checked, self.size = int(checked), int(size)
        return self

    @property
    def sampled(self) -> bool:
        return self.checked < self.size

    def __repr__(self) -> str:
        return f"ParamCheck({float(self):.3g}, checked={self.checked}, size={self.size})"


def rel_error(g_a: np.ndarray, g_n: np.ndarray, floor: float = REL_FLOOR) -> np.ndarray:
    """Entry-wise |g_a - g_n| / max(floor, |g_a| + |g_n|)."""
    return np.abs(g_a - g_n) / np.maximum(floor, np.abs(g_a) + np.abs(g_n))


def eval_numerical_gradient(f, x: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """The readable reference: for each entry i of x, move x[i] by +-delta and +-2 delta,
    evaluate f() (the loss's terms, shape (T,)), and restore x[i]; returns the STENCIL's
    derivative of sum(f()) for every entry."""
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        old = x[i]
        diff = 0.0
        for k, weight in STENCIL:
            x[i] = old + k * delta
            diff = diff + weight * f()
        x[i] = old  # always restore
        grad[i] = np.sum(diff) / (12.0 * delta)
    return grad


def _batched_derivative(f, x: np.ndarray, entries: np.ndarray, delta: float) -> np.ndarray:
    """eval_numerical_gradient's numbers for the flat indices `entries` of x, from stacks of
    perturbed copies: f takes (B, *x.shape) and returns the loss terms (B, T). x is untouched."""
    out = np.empty(len(entries))
    chunk = max(1, min(256, _BUDGET // (len(STENCIL) * x.size)))
    for start in range(0, len(entries), chunk):
        idx = entries[start : start + chunk]
        B = len(idx)
        batch = np.repeat(x.reshape(1, -1), len(STENCIL) * B, axis=0)
        for j, (k, _) in enumerate(STENCIL):
            batch[j * B + np.arange(B), idx] += k * delta
        losses = f(batch.reshape((len(STENCIL) * B,) + x.shape)).reshape(len(STENCIL), B, -1)
        diff = sum(weight * losses[j] for j, (_, weight) in enumerate(STENCIL))
        out[start : start + B] = diff.sum(axis=1) / (12.0 * delta)
    return out


def entries_to_check(params: Params, seed: int = 0, X=None) -> dict[str, np.ndarray]:
    """Flat indices checked per parameter: all of them up to FULL_UP_TO entries, else SAMPLE
    drawn without replacement by a generator seeded with `seed`, sorted. Given the inputs X,
    half of U's sample is drawn from the columns of the characters X reads: U x_t touches
    only those, so elsewhere U's gradient is zero by construction and checks nothing."""
    rng = np.random.default_rng(seed)
    chosen = {}
    for name, value in params.items():
        if value.size <= FULL_UP_TO:
            chosen[name] = np.arange(value.size)
            continue
        pick = rng.choice(value.size, SAMPLE, replace=False)
        if name == "U" and X is not None:
            rows, K = value.shape
            read = np.unique(np.asarray(X, dtype=np.int64))
            live = (np.arange(rows)[:, None] * K + read[None, :]).ravel()
            half = rng.choice(live, min(SAMPLE // 2, live.size), replace=False)
            pick = np.concatenate([half, np.setdiff1d(pick, half)[: SAMPLE - half.size]])
        chosen[name] = np.sort(pick)
    return chosen


def numerical_grads(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    state0: np.ndarray,
    entries: dict | None = None,
    loss: str = "sum",
) -> Params:
    """dL/dparam by the STENCIL's differences with step DELTA, float64, for the flat indices
    in `entries` (a dict name -> indices; every entry by default), of the summed or the mean
    loss; entries not checked are NaN."""
    shared = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
    state0 = np.asarray(state0, dtype=np.float64)
    scale = loss_scale(loss, len(X))
    grads = {}
    for name in params.names():
        x = shared[name]
        idx = np.arange(x.size) if entries is None else np.asarray(entries[name])

        def f(stack, name=name):
            return sequence_losses(Params(**(shared | {name: stack})), X, Y, state0) * scale

        g = np.full(x.size, np.nan)
        g[idx] = _batched_derivative(f, x, idx, DELTA)
        grads[name] = g.reshape(x.shape)
    return Params(**grads)


def gradient_check(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    state0: np.ndarray,
    loss: str = "sum",
    grad_fn: Callable = loss_and_grads,
) -> dict[str, ParamCheck]:
    """Largest error between BPTT and numerical gradients for each of W, U, b, V, c (and W2,
    U2, b2, ... of a stack of layers, whose BPTT is the same loop over each layer's step), with how
    many entries were checked of how many (see the module's docstring for the measure).

    The analytic gradients come from `grad_fn(params, X, Y, state0, loss)` (the reference
    BPTT by default); state0 is the state (S, 1) before X[0]; loss the loss mode, "sum" or
    "mean". A parameter passes if its error is below PASS_BELOW.
    """
    _, g_a, _ = grad_fn(params, X, Y, state0, loss)
    entries = entries_to_check(params, 0, X)
    g_n = numerical_grads(params, X, Y, state0, entries, loss)
    result = {}
    for name in params.names():
        idx = entries[name]
        a, n = getattr(g_a, name).reshape(-1)[idx], getattr(g_n, name).reshape(-1)[idx]
        size = getattr(params, name).size
        error = rel_error(a, n, REL_FLOOR).max() if len(idx) else 0.0
        result[name] = ParamCheck(error, len(idx), size)
    return result


def check_network(spec, K: int, m: int) -> Params:
    """The network part I checks: a training spec's (rnn.engine.spec.TrainSpec) cell, layers and
    initialisation with m units, always in float64 and without dropout (the check's
    differences need float64's digits; dropout's masks are constants to BPTT, and the tests
    check the stack with masks by complex step)."""
    return init_network(K, spec.replace(m=m, dtype="float64", dropout=0.0))
