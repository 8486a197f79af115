"""The network: its parameters, the cells' dispatch, and backpropagation through time.

Notation (K characters, m hidden units, column vectors):

    state_t, h_t = cell(state_{t-1}, x_t)   (rnn.cells: vanilla, lstm, gru)
    o_t = V h_t + c                          p_t = softmax(o_t)
    loss = sum_t -ln p_t[y_t]                (nats, summed over the sequence)

x_t is the one-hot vector of character X[t], so U x_t is the column U[:, X[t]]. The carried
state is a column (S, 1), S = Params.state_size, whose first m rows are h; every function of
the package that takes or returns a hidden state uses this whole column.

This module is the readable reference: `loss_and_grads` is a loop over a cell's forward step
and then over its backward step. The fast path in `rnn.kernels` computes the same numbers and
is tested against this one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike

from .cells import CELLS, GATES, STATE, check_cell, gru, log_softmax, lstm, vanilla
from .errors import ConfigError

PARAM_NAMES = ("W", "U", "b", "V", "c")
_STEPS = {"vanilla": vanilla, "lstm": lstm, "gru": gru}
_CELL_OF_GATES = {gates: cell for cell, gates in GATES.items()}

__all__ = [
    "CELLS",
    "PARAM_NAMES",
    "Params",
    "init_params",
    "log_softmax",
    "loss_and_grads",
    "param_shapes",
    "sequence_losses",
    "step_backward",
    "step_forward",
    "zero_state",
]


@dataclass
class Params:
    """The network's parameters, float64. Gradients and optimiser state use the same structure.

    W (G m, m), U (G m, K), b (G m, 1), V (K, m), c (K, 1), with G the cell's number of gate
    blocks (1 vanilla, 4 LSTM, 3 GRU), so the cell follows from the shapes alone. Arrays may
    carry leading batch axes (a stack of networks); the properties read the last two.
    """

    W: np.ndarray
    U: np.ndarray
    b: np.ndarray
    V: np.ndarray
    c: np.ndarray

    @property
    def m(self) -> int:
        return self.V.shape[-1]

    @property
    def K(self) -> int:
        return self.V.shape[-2]

    @property
    def cell(self) -> str:
        gates = self.W.shape[-2] // self.m
        if gates not in _CELL_OF_GATES or self.W.shape[-2] != gates * self.m:
            raise ValueError(f"W has {self.W.shape[-2]} rows: no cell has that for m={self.m}")
        return _CELL_OF_GATES[gates]

    @property
    def state_size(self) -> int:
        """S, the rows of the carried state: m, or 2m for the LSTM's [h; s]."""
        return STATE[self.cell] * self.m

    def items(self):
        return ((f.name, getattr(self, f.name)) for f in fields(self))

    def map(self, fn) -> Params:
        """A new Params with fn applied to each array."""
        return Params(**{name: fn(value) for name, value in self.items()})

    def flatten(self) -> np.ndarray:
        """All entries in one float64 vector, in the order W, U, b, V, c (each C-ordered)."""
        return np.concatenate([value.ravel() for _, value in self.items()])

    @classmethod
    def unflatten(cls, theta: np.ndarray, m: int, K: int, cell: str = "vanilla") -> Params:
        """Inverse of flatten: copies theta's entries into arrays of the cell's shapes."""
        shapes = param_shapes(m, K, cell)
        arrays, offset = {}, 0
        for name in PARAM_NAMES:
            size = int(np.prod(shapes[name]))
            arrays[name] = theta[offset : offset + size].reshape(shapes[name]).copy()
            offset += size
        if offset != theta.size:
            raise ValueError(
                f"theta has {theta.size} entries, a {cell} network with m={m}, K={K} has {offset}"
            )
        return cls(**arrays)


def param_shapes(m: int, K: int, cell: str = "vanilla") -> dict[str, tuple[int, int]]:
    G = GATES[check_cell(cell)]
    return {"W": (G * m, m), "U": (G * m, K), "b": (G * m, 1), "V": (K, m), "c": (K, 1)}


def init_params(
    K: int, m: int = 100, sigma: float = 0.01, seed: int = 0, cell: str = "vanilla"
) -> Params:
    """Weights drawn from N(0, sigma^2) with a generator seeded by `seed`, biases zero except
    the LSTM's forget gate's, which start at 1 (remember by default)."""
    if not (isinstance(K, (int, np.integer)) and K >= 1):
        raise ConfigError(f"K (vocabulary size) must be a positive integer, got {K!r}")
    if not (isinstance(m, (int, np.integer)) and m >= 1):
        raise ConfigError(f"m (hidden size) must be a positive integer, got {m!r}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"sigma (init scale) must be a positive number, got {sigma!r}")
    shapes = param_shapes(m, K, cell)
    rng = np.random.default_rng(seed)
    params = Params(
        W=sigma * rng.standard_normal(shapes["W"]),
        U=sigma * rng.standard_normal(shapes["U"]),
        b=np.zeros(shapes["b"]),
        V=sigma * rng.standard_normal(shapes["V"]),
        c=np.zeros(shapes["c"]),
    )
    if cell == "lstm":
        params.b[m : 2 * m] = 1.0  # gates i, f, o, g: f's rows
    return params


def zero_state(params: Params) -> np.ndarray:
    """The state (S, 1) a sequence starts from at an epoch's start."""
    return np.zeros((params.state_size, 1))


# --- one time step: the cell's forward step, then its backward step -------------------------


def step_forward(params: Params, x: int, state: np.ndarray):
    """One step of the params' cell: (state_next (S, 1), ln p (K, 1), cache). See rnn.cells."""
    return _STEPS[params.cell].step_forward(params, x, state)


def step_backward(y, dstate_next: np.ndarray, cache, params: Params, grads) -> np.ndarray:
    """Backward through one step: adds into grads (unless None) and returns dL/dstate_prev.
    y None: no loss term at this step, only dstate_next flows back. See rnn.cells."""
    return _STEPS[params.cell].step_backward(y, dstate_next, cache, params, grads)


# --- a whole sequence -------------------------------------------------------------------------


def loss_and_grads(
    params: Params, X: ArrayLike, Y: ArrayLike, state0: np.ndarray
) -> tuple[float, Params, np.ndarray]:
    """Loss of one sequence and its gradients by backpropagation through time.

    X, Y: integer arrays of shape (T,), inputs and targets; state0: (S, 1) the state before
    X[0]. Returns (loss, grads, state): loss in nats summed over the T steps, grads a Params
    of dL/dparam, state (S, 1) after X[-1]. Pure: nothing is clipped or mutated.
    """
    state, caches, loss = state0, [], 0.0
    for x, y in zip(X, Y):
        state, logp, cache = step_forward(params, int(x), state)
        loss -= float(logp[int(y), 0])
        caches.append(cache)
    grads = params.map(np.zeros_like)
    dstate = np.zeros_like(state0)
    for y, cache in zip(reversed(Y), reversed(caches)):
        dstate = step_backward(int(y), dstate, cache, params, grads)
    return loss, grads, state


def sequence_losses(params: Params, X: ArrayLike, Y: ArrayLike, state0: np.ndarray) -> np.ndarray:
    """Forward only: -ln p_t[y_t] for each step t, shape (..., T) for a stack of networks
    with leading axes (...), in the parameters' own dtype."""
    state, losses = state0, []
    for x, y in zip(X, Y):
        state, logp, _ = step_forward(params, int(x), state)
        losses.append(-logp[..., int(y), 0])
    return np.stack(losses, axis=-1) if losses else np.zeros(0, dtype=params.W.dtype)
