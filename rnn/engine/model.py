"""The network: its parameters, the cells' dispatch, and backpropagation through time.

Notation (K characters, m hidden units, column vectors):

    state_t, h_t = cell(state_{t-1}, x_t)   (rnn.engine.cells: vanilla, lstm, gru)
    o_t = V h_t + c                          p_t = softmax(o_t)
    loss = sum_t -ln p_t[y_t]                (nats, summed over the sequence: loss "sum")
    loss = (1/T) sum_t -ln p_t[y_t]          (the mean per character: loss "mean")

x_t is the one-hot vector of character X[t], so U x_t is the column U[:, X[t]]. The carried
state is a column (S, 1), S = Params.state_size, whose first m rows are h; every function of
the package that takes or returns a hidden state uses this whole column.

A stack of L layers (Params.layers) feeds each layer's h to the next as its input (layer l > 1
computes Ul h^(l-1) where layer 1 computes U x), and the top layer's h to the output. Its
carried state is every layer's column stacked, layer 1's first (L S rows, so its first m rows
are layer 1's h); `loss_and_grads_layers` is its readable reference over a batch of B
sequences, with dropout.

This module is the readable reference: `loss_and_grads` is a loop over a cell's forward step
and then over its backward step. The fast path in `rnn.engine.kernels` computes the same numbers and
is tested against this one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from rnn.engine.cells import CELLS, GATES, STATE, check_cell, gru, log_softmax, lstm, vanilla
from rnn.errors import ConfigError

PARAM_NAMES = ("W", "U", "b", "V", "c")
LOSSES = ("sum", "mean")  # a sequence's loss: summed over its characters, or their mean
INITS = ("sigma", "scaled", "uniform")  # how init_params draws the weights
_STEPS = {"vanilla": vanilla, "lstm": lstm, "gru": gru}
_CELL_OF_GATES = {gates: cell for cell, gates in GATES.items()}

__all__ = [
    "CELLS",
    "INITS",
    "LOSSES",
    "PARAM_NAMES",
    "Params",
    "init_network",
    "init_params",
    "log_softmax",
    "loss_and_grads",
    "loss_and_grads_layers",
    "loss_scale",
    "param_shapes",
    "sequence_losses",
    "join_states",
    "split_state",
    "step_backward",
    "step_forward",
    "zero_state",
]


class Params:
    """The network's parameters, a mapping name -> array in one dtype (float64, float32, or
    complex for the complex-step check). Gradients and optimiser state use the same structure.

    Layer 1: W (G m, m), U (G m, K), b (G m, 1); the output layer: V (K, m), c (K, 1), reading
    the top layer's h; layers 2 .. L: Wl (G m, m), Ul (G m, m) (reading the layer below's h),
    bl (G m, 1). G is the cell's number of gate blocks (1 vanilla, 4 LSTM, 3 GRU), so the cell
    and the depth follow from the names and shapes alone. The order W, U, b, V, c, W2, U2, b2,
    W3, ... is that of flatten, checkpoints and the optimizers: a 1-layer network is W, U, b,
    V, c as ever. Arrays may carry leading batch axes (a stack of networks); the properties
    read the last two.
    """

    def __init__(self, W, U, b, V, c, **upper):
        self._names = ("W", "U", "b", "V", "c", *layer_names_above(1 + len(upper) // 3))
        if sorted(self._names[5:]) != sorted(upper):
            raise ValueError(
                f"upper layers' parameters must be W2, U2, b2, ...; got {', '.join(upper)}"
            )
        for name, value in (("W", W), ("U", U), ("b", b), ("V", V), ("c", c), *upper.items()):
            setattr(self, name, value)

    @property
    def m(self) -> int:
        return self.V.shape[-1]

    @property
    def K(self) -> int:
        return self.V.shape[-2]

    @property
    def layers(self) -> int:
        """L, the number of recurrent layers."""
        return 1 + (len(self._names) - 5) // 3

    @property
    def dtype(self) -> np.dtype:
        return self.W.dtype

    @property
    def cell(self) -> str:
        gates = self.W.shape[-2] // self.m
        if gates not in _CELL_OF_GATES or self.W.shape[-2] != gates * self.m:
            raise ValueError(f"W has {self.W.shape[-2]} rows: no cell has that for m={self.m}")
        return _CELL_OF_GATES[gates]

    @property
    def layer_state_size(self) -> int:
        """S, the rows of one layer's carried state: m, or 2m for the LSTM's [h; s]."""
        return STATE[self.cell] * self.m

    @property
    def state_size(self) -> int:
        """The rows of the carried state, every layer's S rows stacked (layer 1's first): S for
        one layer, L S for L."""
        return self.layers * self.layer_state_size

    def layer(self, l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(W, U, b) of layer l = 1 .. L."""
        names = ("W", "U", "b") if l == 1 else (f"W{l}", f"U{l}", f"b{l}")
        return tuple(getattr(self, name) for name in names)

    def names(self) -> tuple[str, ...]:
        return self._names

    def items(self):
        return ((name, getattr(self, name)) for name in self._names)

    def map(self, fn) -> Params:
        """A new Params with fn applied to each array."""
        return Params(**{name: fn(value) for name, value in self.items()})

    def astype(self, dtype) -> Params:
        """A copy in another dtype."""
        return self.map(lambda a: np.asarray(a).astype(dtype))

    def flatten(self) -> np.ndarray:
        """All entries in one vector of the parameters' dtype, in the order of names() (each
        C-ordered): W, U, b, V, c, then W2, U2, b2, ..."""
        return np.concatenate([value.ravel() for _, value in self.items()])

    @classmethod
    def unflatten(
        cls, theta: np.ndarray, m: int, K: int, cell: str = "vanilla", layers: int | None = None
    ) -> Params:
        """Inverse of flatten: copies theta's entries (in theta's dtype) into arrays of the
        shapes of an L-layer network of the cell; layers None: as many as theta holds."""
        if layers is None:
            layers = layers_of(theta.size, m, K, cell)
        shapes = param_shapes(m, K, cell, layers)
        n = sum(int(np.prod(shape)) for shape in shapes.values())
        if n != theta.size:
            raise ValueError(
                f"theta has {theta.size} entries, a {cell} network of {layers} layer(s) with "
                f"m={m}, K={K} has {n}"
            )
        arrays, offset = {}, 0
        for name, shape in shapes.items():
            size = int(np.prod(shape))
            arrays[name] = theta[offset : offset + size].reshape(shape).copy()
            offset += size
        return cls(**arrays)

    def __repr__(self) -> str:
        return f"Params({self.cell}, layers={self.layers}, m={self.m}, K={self.K}, {self.dtype})"


def layers_of(size: int, m: int, K: int, cell: str) -> int:
    """The number of layers of a network of the cell, m and K with `size` parameters (1 when
    the size fits no stack: unflatten then says what is wrong)."""
    one = sum(int(np.prod(s)) for s in param_shapes(m, K, cell).values())
    G = GATES[check_cell(cell)]
    upper = 2 * G * m * m + G * m  # W, U and b of a layer above the first
    extra, rest = divmod(size - one, upper)
    return 1 + extra if extra >= 1 and rest == 0 else 1


def layer_names_above(layers: int) -> tuple[str, ...]:
    """The names of layers 2 .. L's parameters, in order: W2, U2, b2, W3, ..."""
    return tuple(f"{p}{l}" for l in range(2, layers + 1) for p in "WUb")


def param_shapes(
    m: int, K: int, cell: str = "vanilla", layers: int = 1
) -> dict[str, tuple[int, int]]:
    """Each parameter's shape, in the order of Params.names()."""
    G = GATES[check_cell(cell)]
    shapes = {"W": (G * m, m), "U": (G * m, K), "b": (G * m, 1), "V": (K, m), "c": (K, 1)}
    for l in range(2, layers + 1):
        shapes |= {f"W{l}": (G * m, m), f"U{l}": (G * m, m), f"b{l}": (G * m, 1)}
    return shapes


def init_params(
    K: int,
    m: int = 100,
    sigma: float = 0.01,
    seed: int = 0,
    cell: str = "vanilla",
    init: str = "sigma",
) -> Params:
    """The initial parameters of a 1-layer network, float64, drawn with a generator seeded by
    `seed` (W, U, V in that order).

    init "sigma" (the earlier edition): W, U, V ~ N(0, sigma^2).
    init "scaled" (the current edition): U ~ N(0, 1/(2K)), W ~ N(0, 1/(2m)), V ~ N(0, 1/m),
    sigma unused. For the gated cells the same rule holds for every gate's block: each block
    of W (m, m) is drawn as the vanilla W, each block of U (m, K) as the vanilla U.
    Under either rule b and c start at zero, except the LSTM's forget gate's biases, which
    start at 1 (remember by default).
    init "uniform" (PyTorch's default for its recurrent and linear layers): every weight and
    bias, b and c included, ~ U(-1/sqrt(m), 1/sqrt(m)), sigma unused.
    """
    scale = _init_scale(K, m, sigma, init)
    return _draw(K, m, cell, scale, np.random.default_rng(seed), 1)


def init_network(K: int, spec) -> Params:
    """The network a training spec (rnn.engine.spec.TrainSpec) starts from: spec.layers layers of
    spec.cell with spec.m units, in spec.dtype. Layer 1, V and c are init_params' (the same
    draws: W, U, V first); then W2, U2, W3, U3, ... from the same generator by the same rule,
    an upper layer's U reading m inputs (init "scaled": N(0, 1/(2m))). Drawn in float64, then
    rounded to the dtype."""
    scale = _init_scale(K, spec.m, spec.sigma, spec.init)
    rng = np.random.default_rng(spec.seed)
    params = _draw(K, spec.m, spec.cell, scale, rng, spec.layers)
    return params if spec.dtype == "float64" else params.astype(spec.dtype)


def _init_scale(K, m: int, sigma: float, init: str) -> dict:
    """Each weight's standard deviation (U_upper: an upper layer's U), after checking K, m,
    init and sigma."""
    if not (isinstance(K, (int, np.integer)) and K >= 1):
        raise ConfigError(f"K (vocabulary size) must be a positive integer, got {K!r}")
    if not (isinstance(m, (int, np.integer)) and m >= 1):
        raise ConfigError(f"m (hidden size) must be a positive integer, got {m!r}")
    if init not in INITS:
        raise ConfigError(f"parameter init must be one of {', '.join(INITS)}, got {init!r}")
    if init == "sigma" and not (np.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"sigma (init scale) must be a positive number, got {sigma!r}")
    if init == "uniform":
        return {"uniform": 1 / np.sqrt(m)}
    if init == "scaled":
        W = np.sqrt(1 / (2 * m))
        return {"W": W, "U": np.sqrt(1 / (2 * K)), "V": np.sqrt(1 / m), "U_upper": W}
    return {"W": sigma, "U": sigma, "V": sigma, "U_upper": sigma}


def _draw(K: int, m: int, cell: str, scale: dict, rng, layers: int) -> Params:
    shapes = param_shapes(m, K, cell, layers)
    if "uniform" in scale:  # every array, in the order of the names
        r = scale["uniform"]
        return Params(**{name: rng.uniform(-r, r, shape) for name, shape in shapes.items()})
    arrays = {
        "W": scale["W"] * rng.standard_normal(shapes["W"]),
        "U": scale["U"] * rng.standard_normal(shapes["U"]),
        "b": np.zeros(shapes["b"]),
        "V": scale["V"] * rng.standard_normal(shapes["V"]),
        "c": np.zeros(shapes["c"]),
    }
    for l in range(2, layers + 1):
        arrays[f"W{l}"] = scale["W"] * rng.standard_normal(shapes[f"W{l}"])
        arrays[f"U{l}"] = scale["U_upper"] * rng.standard_normal(shapes[f"U{l}"])
        arrays[f"b{l}"] = np.zeros(shapes[f"b{l}"])
    params = Params(**arrays)
    if cell == "lstm":
        for l in range(1, layers + 1):
            params.layer(l)[2][m : 2 * m] = 1.0  # gates i, f, o, g: f's rows
    return params


def zero_state(params: Params) -> np.ndarray:
    """The state (S, 1) a sequence starts from at an epoch's start (every layer's, L S rows)."""
    return np.zeros((params.state_size, 1), dtype=params.dtype)


# --- one time step: the cell's forward step, then its backward step -------------------------


def step_forward(params: Params, x: int, state: np.ndarray):
    """One step of the params' cell: (state_next (S, 1), ln p (K, 1), cache). See rnn.engine.cells.
    A stack of layers reads and returns every layer's state, stacked (stack_step_forward)."""
    if params.layers == 1:
        return _STEPS[params.cell].step_forward(params, x, state)
    states, logp, cache = stack_step_forward(params, [x], split_state(params, state))
    return join_states(states), logp, cache


def step_backward(y, dstate_next: np.ndarray, cache, params: Params, grads) -> np.ndarray:
    """Backward through one step: adds into grads (unless None) and returns dL/dstate_prev.
    y None: no loss term at this step, only dstate_next flows back. See rnn.engine.cells."""
    if params.layers == 1:
        return _STEPS[params.cell].step_backward(y, dstate_next, cache, params, grads)
    y = None if y is None else [y]
    dstates = stack_step_backward(params, y, split_state(params, dstate_next), cache, grads)
    return join_states(dstates)


def split_state(params: Params, state: np.ndarray) -> list[np.ndarray]:
    """The stacked state (..., L S, B) as L views (..., S, B), layer 1's first."""
    S = params.layer_state_size
    return [state[..., l * S : (l + 1) * S, :] for l in range(params.layers)]


def join_states(states: list) -> np.ndarray:
    """Inverse of split_state: the layers' states (..., S, B) stacked, layer 1's first (a
    layer whose parameters carry no leading axes is broadcast to the others')."""
    lead = np.broadcast_shapes(*(s.shape[:-2] for s in states))
    return np.concatenate([np.broadcast_to(s, lead + s.shape[-2:]) for s in states], axis=-2)


# --- one time step of a stack of layers: each layer's cell step, then the output -------------


def stack_step_forward(params: Params, x, states: list, masks_t: list | None = None):
    """One time step of every layer, for B sequences at once: x, the input characters' indices
    (B,); states, each layer's (S, B). Layer l's h is the next one's input (dropped out by
    masks_t[l-1] (m, B) when given: h * mask, the carried state keeping h itself); the top
    one's feeds o = V h + c. Returns (states after the step, ln p (K, B), cache)."""
    cell = _STEPS[params.cell]
    below, new, caches = None, [], []
    for l in range(1, params.layers + 1):
        W, U, b = params.layer(l)
        ux = U[..., x] if l == 1 else U @ below  # layer 1 reads one-hot characters: U's columns
        state, h, cache = cell.layer_forward(W, b, ux, states[l - 1])
        below = h if masks_t is None else h * masks_t[l - 1]
        new.append(state)
        caches.append((cache, below))
    logp = log_softmax(params.V @ below + params.c)
    return new, logp, (x, caches, logp)


def stack_step_backward(params: Params, y, dstates_next: list, cache, grads, masks_t=None):
    """Backward through stack_step_forward: y, the targets' indices (B,) (None: no loss term);
    dstates_next, each layer's dL/dstate carried from the next step. Adds into grads (unless
    None); returns each layer's dL/dstate before the step."""
    x, caches, logp = cache
    cell, L = _STEPS[params.cell], params.layers
    dabove = 0.0  # dL/d(the input the layer above read), from the output layer for the top
    if y is not None:
        do = np.exp(logp)
        do[y, np.arange(do.shape[-1])] -= 1.0  # dL/do = p - onehot(y), per column
        if grads is not None:
            grads.V += do @ caches[-1][1].T
            grads.c += do.sum(axis=-1, keepdims=True)
        dabove = params.V.T @ do
    dprev = [None] * L
    for l in range(L, 0, -1):
        W, U, _ = params.layer(l)
        layer_cache, _ = caches[l - 1]
        dh = dabove if masks_t is None else dabove * masks_t[l - 1]
        dW = None if grads is None else grads.layer(l)[0]
        D, dprev[l - 1] = cell.layer_backward(dh, dstates_next[l - 1], layer_cache, W, dW)
        if grads is not None:
            dU, db = grads.layer(l)[1:]
            db += D.sum(axis=-1, keepdims=True)
            if l == 1:
                np.add.at(dU, (slice(None), x), D)  # repeated characters add up
            else:
                dU += D @ caches[l - 2][1].T
        if l > 1:
            dabove = U.T @ D
    return dprev


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


def loss_and_grads_layers(
    P: Params, cell: str, X: ArrayLike, Y: ArrayLike, state0: list, masks: list | None = None
) -> tuple[float, Params, list]:
    """The readable reference of a stack of L layers over a batch: a loop over time of each
    layer's cell step (stack_step_forward), then back (stack_step_backward).

    X, Y: integer arrays (T, B) of inputs and targets; state0: L arrays (S, B), column b the
    state of sequence b; masks: None (no dropout) or L arrays (T, B, m) of 0 or 1/keep, layer
    l's multiplying its h before the layer above (or V) reads it. Returns (loss, grads, state):
    the mean over the B sequences of each one's summed cross-entropy in nats (a float; complex
    for complex P, the complex-step check's), its gradients (a Params like P), and the L
    states (S, B) after the T steps. The same for the fast engine (rnn.engine.stack).
    """
    if cell != P.cell:
        raise ValueError(f"the parameters are of a {P.cell} cell, not {cell}")
    X, Y = np.asarray(X), np.asarray(Y)
    T, B = X.shape
    per_step = [None] * T if masks is None else [[mk[t].T for mk in masks] for t in range(T)]
    states, caches, total, cols = list(state0), [], 0.0, np.arange(B)
    for t in range(T):
        states, logp, cache = stack_step_forward(P, X[t], states, per_step[t])
        term = -logp[Y[t], cols].sum()
        total = total + (term if np.iscomplexobj(term) else float(term))  # float64 sums
        caches.append(cache)
    grads = P.map(np.zeros_like)
    dstates = [np.zeros_like(s) for s in states]
    for t in range(T - 1, -1, -1):
        dstates = stack_step_backward(P, Y[t], dstates, caches[t], grads, per_step[t])
    if B != 1:
        grads = grads.map(lambda g: g / B)
    return total / B, grads, [np.array(s) for s in states]


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
