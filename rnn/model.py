"""The network: its parameters, the cells' dispatch, and backpropagation through time.

Notation (K characters, m hidden units, column vectors):

    state_t, h_t = cell(state_{t-1}, x_t)   (rnn.cells: vanilla, lstm, gru)
    o_t = V h_t + c                          p_t = softmax(o_t)
    loss = sum_t -ln p_t[y_t]                (nats, summed over the sequence: loss "sum")
    loss = (1/T) sum_t -ln p_t[y_t]          (the mean per character: loss "mean")

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
LOSSES = ("sum", "mean")  # a sequence's loss: summed over its characters, or their mean
INITS = ("sigma", "scaled")  # how init_params draws the weights
_STEPS = {"vanilla": vanilla, "lstm": lstm, "gru": gru}
_CELL_OF_GATES = {gates: cell for cell, gates in GATES.items()}

__all__ = [
    "CELLS",
    "INITS",
    "LOSSES",
    "PARAM_NAMES",
    "Params",
    "init_params",
    "log_softmax",
    "loss_and_grads",
    "loss_scale",
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
    K: int,
    m: int = 100,
    sigma: float = 0.01,
    seed: int = 0,
    cell: str = "vanilla",
    init: str = "sigma",
) -> Params:
    """The initial parameters, drawn with a generator seeded by `seed` (W, U, V in that order).

    init "sigma" (the earlier edition): W, U, V ~ N(0, sigma^2).
    init "scaled" (the current edition): U ~ N(0, 1/(2K)), W ~ N(0, 1/(2m)), V ~ N(0, 1/m),
    sigma unused. For the gated cells the same rule holds for every gate's block: each block
    of W (m, m) is drawn as the vanilla W, each block of U (m, K) as the vanilla U.
    Under either rule b and c start at zero, except the LSTM's forget gate's biases, which
    start at 1 (remember by default).
    """
    if not (isinstance(K, (int, np.integer)) and K >= 1):
        raise ConfigError(f"K (vocabulary size) must be a positive integer, got {K!r}")
    if not (isinstance(m, (int, np.integer)) and m >= 1):
        raise ConfigError(f"m (hidden size) must be a positive integer, got {m!r}")
    if init not in INITS:
        raise ConfigError(f"parameter init must be one of {', '.join(INITS)}, got {init!r}")
    if init == "sigma" and not (np.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"sigma (init scale) must be a positive number, got {sigma!r}")
    shapes = param_shapes(m, K, cell)
    if init == "scaled":
        scale = {"W": np.sqrt(1 / (2 * m)), "U": np.sqrt(1 / (2 * K)), "V": np.sqrt(1 / m)}
    else:
        scale = {"W": sigma, "U": sigma, "V": sigma}
    rng = np.random.default_rng(seed)
    params = Params(
        W=scale["W"] * rng.standard_normal(shapes["W"]),
        U=scale["U"] * rng.standard_normal(shapes["U"]),
        b=np.zeros(shapes["b"]),
        V=scale["V"] * rng.standard_normal(shapes["V"]),
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
    params: Params, X: ArrayLike, Y: ArrayLike, state0: np.ndarray, loss: str = "sum"
) -> tuple[float, Params, np.ndarray]:
    """Loss of one sequence and its gradients by backpropagation through time.

    X, Y: integer arrays of shape (T,), inputs and targets; state0: (S, 1) the state before
    X[0]. Returns (loss, grads, state): loss in nats, summed over the T steps (loss "sum")
    or their mean (loss "mean", the sum and every gradient times 1/T), grads a Params of
    dL/dparam, state (S, 1) after X[-1]. Pure: nothing is clipped or mutated.
    """
    state, caches, total = state0, [], 0.0
    for x, y in zip(X, Y):
        state, logp, cache = step_forward(params, int(x), state)
        total -= float(logp[int(y), 0])
        caches.append(cache)
    grads = params.map(np.zeros_like)
    dstate = np.zeros_like(state0)
    for y, cache in zip(reversed(Y), reversed(caches)):
        dstate = step_backward(int(y), dstate, cache, params, grads)
    scale = loss_scale(loss, len(caches))
    if scale != 1.0:
        total, grads = total * scale, grads.map(lambda g: g * scale)
    return total, grads, state


def loss_scale(loss: str, T: int) -> float:
    """What a sequence's summed loss (and its gradients) is multiplied by: 1 for the sum,
    1/T for the mean (the compiled path multiplies by the same number)."""
    if loss not in LOSSES:
        raise ConfigError(f"parameter loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    return 1.0 / T if loss == "mean" and T else 1.0


def sequence_losses(params: Params, X: ArrayLike, Y: ArrayLike, state0: np.ndarray) -> np.ndarray:
    """Forward only: -ln p_t[y_t] for each step t, shape (..., T) for a stack of networks
    with leading axes (...), in the parameters' own dtype."""
    state, losses = state0, []
    for x, y in zip(X, Y):
        state, logp, _ = step_forward(params, int(x), state)
        losses.append(-logp[..., int(y), 0])
    return np.stack(losses, axis=-1) if losses else np.zeros(0, dtype=params.W.dtype)
