"""The vanilla RNN and its backpropagation through time, one time step at a time.

Notation (K characters, m hidden units, column vectors):

    a_t = W h_{t-1} + U x_t + b      h_t = tanh(a_t)
    o_t = V h_t + c                  p_t = softmax(o_t)
    loss = sum_t -ln p_t[y_t]        (nats, summed over the sequence)

x_t is the one-hot vector of character X[t], so U x_t is the column U[:, X[t]].
This module is the readable reference: every forward step has its backward step
beside it, and `loss_and_grads` is a loop over them. The fast path in
`rnn.kernels` computes the same numbers and is tested against this one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .errors import ConfigError

PARAM_NAMES = ("W", "U", "b", "V", "c")


@dataclass
class Params:
    """The network's parameters, float64. Gradients and optimiser state use the same structure.

    U (m, K), W (m, m), b (m, 1), V (K, m), c (K, 1).
    """

    W: np.ndarray
    U: np.ndarray
    b: np.ndarray
    V: np.ndarray
    c: np.ndarray

    @property
    def m(self) -> int:
        return self.W.shape[0]

    @property
    def K(self) -> int:
        return self.V.shape[0]

    def items(self):
        return ((f.name, getattr(self, f.name)) for f in fields(self))

    def map(self, fn) -> Params:
        """A new Params with fn applied to each array."""
        return Params(**{name: fn(value) for name, value in self.items()})

    def copy(self) -> Params:
        return self.map(np.copy)

    def flatten(self) -> np.ndarray:
        """All entries in one float64 vector, in the order W, U, b, V, c (each C-ordered)."""
        return np.concatenate([value.ravel() for _, value in self.items()])

    @classmethod
    def unflatten(cls, theta: np.ndarray, m: int, K: int) -> Params:
        """Inverse of flatten: copies theta's entries into arrays of the usual shapes."""
        shapes = param_shapes(m, K)
        arrays, offset = {}, 0
        for name in PARAM_NAMES:
            size = int(np.prod(shapes[name]))
            arrays[name] = theta[offset : offset + size].reshape(shapes[name]).copy()
            offset += size
        if offset != theta.size:
            raise ValueError(
                f"theta has {theta.size} entries, a network with m={m}, K={K} has {offset}"
            )
        return cls(**arrays)


def param_shapes(m: int, K: int) -> dict[str, tuple[int, int]]:
    return {"W": (m, m), "U": (m, K), "b": (m, 1), "V": (K, m), "c": (K, 1)}


def init_params(
    K: int, m: int = 100, sigma: float = 0.01, seed: int = 0, cell: str = "vanilla"
) -> Params:
    """Weights drawn from N(0, sigma^2), biases zero, with a generator seeded by `seed`."""
    if cell != "vanilla":
        raise ConfigError(f"parameter cell must be vanilla here, got {cell!r}")
    if not (isinstance(K, (int, np.integer)) and K >= 1):
        raise ConfigError(f"K (vocabulary size) must be a positive integer, got {K!r}")
    if not (isinstance(m, (int, np.integer)) and m >= 1):
        raise ConfigError(f"m (hidden size) must be a positive integer, got {m!r}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"sigma (init scale) must be a positive number, got {sigma!r}")
    rng = np.random.default_rng(seed)
    return Params(
        W=sigma * rng.standard_normal((m, m)),
        U=sigma * rng.standard_normal((m, K)),
        b=np.zeros((m, 1)),
        V=sigma * rng.standard_normal((K, m)),
        c=np.zeros((K, 1)),
    )


def log_softmax(o: np.ndarray) -> np.ndarray:
    """Column-wise ln softmax(o), shifted by the maximum so exp never overflows.

    Taking logs before exponentiating keeps -ln p[y] finite even where p[y] underflows.
    """
    shifted = o - o.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


# --- one time step: forward, then its backward ----------------------------------------------


def step_forward(params: Params, x: int, h_prev: np.ndarray):
    """One step. x: character index; h_prev (m, 1). Returns h (m, 1), ln p (K, 1), cache."""
    a = params.W @ h_prev + params.U[:, [x]] + params.b
    h = np.tanh(a)
    logp = log_softmax(params.V @ h + params.c)
    return h, logp, (x, h_prev, h, np.exp(logp))


def step_backward(y: int, dh_next: np.ndarray, cache, params: Params, grads: Params) -> np.ndarray:
    """Backward through one step, given the target y and dL/dh_t carried from step t+1.

    Adds this step's contributions into `grads` and returns dL/dh_{t-1} (m, 1).
    """
    x, h_prev, h, p = cache
    do = p.copy()
    do[y] -= 1.0  # dL/do = p - onehot(y)
    grads.V += do @ h.T
    grads.c += do
    dh = params.V.T @ do + dh_next  # from the output, plus from the future
    da = (1.0 - h * h) * dh  # tanh' = 1 - tanh^2
    grads.W += da @ h_prev.T
    grads.U[:, [x]] += da
    grads.b += da
    return params.W.T @ da


# --- a whole sequence -------------------------------------------------------------------------


def loss_and_grads(params: Params, X, Y, h0: np.ndarray):
    """Loss of one sequence and its gradients by backpropagation through time.

    X, Y: int arrays of shape (T,), inputs and targets; h0: (m, 1) hidden state before X[0].
    Returns (loss, grads, h_last): loss in nats summed over the T steps, grads a Params of
    dL/dparam, h_last (m, 1) the hidden state after X[-1]. Pure: nothing is clipped or mutated.
    """
    h, caches, loss = h0, [], 0.0
    for x, y in zip(X, Y):
        h, logp, cache = step_forward(params, int(x), h)
        loss -= float(logp[int(y), 0])
        caches.append(cache)
    grads = params.map(np.zeros_like)
    dh = np.zeros_like(h0)
    for y, cache in zip(reversed(Y), reversed(caches)):
        dh = step_backward(int(y), dh, cache, params, grads)
    return loss, grads, h


def sequence_losses(params: Params, X, Y, h0: np.ndarray) -> np.ndarray:
    """Forward only: -ln p_t[y_t] for each step t, shape (T,), in the parameters' own dtype
    (the gradient check works in extended precision and must keep it)."""
    h, losses = h0, np.empty(len(X), dtype=params.W.dtype)
    for t, (x, y) in enumerate(zip(X, Y)):
        h, logp, _ = step_forward(params, int(x), h)
        losses[t] = -logp[int(y), 0]
    return losses
