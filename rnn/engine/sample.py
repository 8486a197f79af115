"""Drawing text from the model: temperature, nucleus (top-p) sampling, priming.

States are columns (S, 1), S = Params.state_size (m, or 2m for the LSTM's [h; s]; every
layer's stacked for a stack of layers, which sampling reads through), in the parameters'
dtype (float64 or float32), as in rnn.engine.model and rnn.train; `as_state` reads a flat (S,)
array, as older checkpoints hold, as that column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from rnn.engine.model import Params, log_softmax, step_forward, zero_state
from rnn.errors import ConfigError, RNNError


def as_state(params: Params, state) -> np.ndarray:
    """state as a column (S, 1) in the parameters' dtype (every layer's state stacked, for a
    stack); None is the zero state."""
    if state is None:
        return zero_state(params)
    state = np.asarray(state, dtype=params.dtype)
    if state.size != params.state_size or state.ndim > 2:
        layers = f"{params.layers} layers of " if params.layers > 1 else ""
        raise ValueError(
            f"a state of {layers}the {params.cell} cell with m={params.m} is a column "
            f"({params.state_size}, 1), got shape {state.shape}"
        )
    return state.reshape(params.state_size, 1)


def next_distribution(logp: np.ndarray, temperature: float, top_p: float) -> np.ndarray:
    """Probabilities (K,) to draw from, given the model's ln p (K,).

    temperature rescales the logits (0 means argmax); top_p keeps the smallest set of most
    likely characters whose probability reaches top_p and renormalises over it.
    """
    if temperature == 0.0:
        p = np.zeros_like(logp)
        p[np.argmax(logp)] = 1.0
        return p
    # In log space, from the largest: (ln p - max) / T <= 0 whatever T, so a tiny T (1e-310)
    # gives -inf for all but the most likely characters, never inf - inf = NaN.
    with np.errstate(over="ignore"):
        z = (logp - np.max(logp)) / temperature
    p = np.exp(log_softmax(z[:, None])[:, 0])
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cum, top_p)) + 1]
        nucleus = np.zeros_like(p)
        nucleus[keep] = p[keep]
        p = nucleus / nucleus.sum()
    return p


@dataclass(frozen=True)
class Sampling:
    """How each character is drawn from the model's distribution: at `temperature` (0: the
    most likely character), from the nucleus of mass `top_p` (1: every character)."""

    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self):
        if not (np.isfinite(self.temperature) and self.temperature >= 0):
            raise ConfigError(f"temperature must be a number >= 0, got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p!r}")


def _check(n: int) -> None:
    if not (isinstance(n, (int, np.integer)) and n >= 0):
        raise ConfigError(f"the sample length must be an integer >= 0, got {n!r}")


def check_finite(params: Params) -> None:
    """A model with a NaN or infinite weight has no distribution to draw from: refused."""
    for name, value in params.items():
        if not np.all(np.isfinite(value)):
            raise RNNError(
                f"the model's parameter {name} is not finite (NaN or infinite): the run "
                f"diverged or its checkpoint is damaged; train it again"
            )


def sample(
    params: Params,
    h0: np.ndarray,
    x0: int,
    n: int,
    rng: np.random.Generator,
    how: Sampling = Sampling(),
) -> np.ndarray:
    """n character indices drawn from the model as `how` says, starting from state h0 (S, 1)
    and input character x0. Each step uses exactly one rng.random() draw, whatever the
    temperature and top_p, so settings can be compared on the same random numbers."""
    _check(n)
    check_finite(params)
    state = as_state(params, h0)
    x = int(x0)
    out = np.empty(n, dtype=np.int64)
    for t in range(n):
        state, logp, _ = step_forward(params, x, state)
        cum = np.cumsum(next_distribution(logp[:, 0], how.temperature, how.top_p))
        x = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        x = min(x, params.K - 1)  # guards u * total rounding onto the last edge
        out[t] = x
    return out


def warm(params: Params, prime_ids: ArrayLike, h0: np.ndarray | None = None) -> np.ndarray:
    """The state (S, 1) after reading all of prime_ids but the last, which is then the input
    that sampling continues from; from h0 (S, 1), zero by default."""
    state = as_state(params, h0)
    for x in np.asarray(prime_ids)[:-1]:
        state, _, _ = step_forward(params, int(x), state)
    return state


def sample_primed(
    params: Params,
    prime_ids: ArrayLike,
    n: int,
    rng: np.random.Generator,
    how: Sampling = Sampling(),
    h0: np.ndarray | None = None,
) -> np.ndarray:
    """Sample n indices as `how` says, continuing prime_ids (at least one index), read from
    state h0 (S, 1) (zero by default)."""
    prime_ids = np.asarray(prime_ids)
    if prime_ids.size == 0:
        raise ConfigError("the priming text must have at least one character")
    state = warm(params, prime_ids, h0)
    return sample(params, state, int(prime_ids[-1]), n, rng, how)
