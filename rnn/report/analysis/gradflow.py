"""How far back the gradient reaches: the norm of dL_t/dh_{t-k} for k = 0 .. max_k.

L_t = -ln p_t[y_t] is the loss of the single character y_t = ids[t+1] predicted after reading
x_t = ids[t]; h_t is the hidden state just after reading x_t, so k = 0 is dL_t/dh_t (through
the output layer only) and k steps back cost k backward steps through the cell, with no loss
term on the way (model.step_backward with y = None). Any cell: the state's first m rows are
h, and for the LSTM the memory s_{t-k} is held fixed in dL_t/dh_{t-k}. In a stack of layers the
loss reads the top layer's h and the norm is that of the first layer's h_{t-k} (the state's
first m rows): how far back, through every layer, the gradient reaches the first one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn.engine.cells import gru, lstm, vanilla
from rnn.engine.model import Params, split_state, step_backward, step_forward, zero_state

_CELLS = {"vanilla": vanilla, "lstm": lstm, "gru": gru}

FALL = 1e3  # "the gradient has fallen by FALL": the first k with norm(k) <= norm(0) / FALL
# gradient_norms' defaults, which the report describes
MAX_K, N_POSITIONS, PER_STRETCH, SPACING, WARMUP = 100, 200, 5, 20, 50


def output_grad(params: Params, logp: np.ndarray, y: int, size: int) -> np.ndarray:
    """dL_t/dstate_t (size, 1) of L_t = -ln p_t[y]: V^T (p_t - onehot(y)) in the top layer's
    h rows (the first m rows of a 1-layer network)."""
    do = np.exp(logp)
    do[y] -= 1.0
    d = np.zeros((size, 1), dtype=do.dtype)
    top = size - params.layer_state_size
    d[top : top + params.m] = params.V.T @ do
    return d


def stretch_norms(params: Params, ids, positions, max_k: int = MAX_K, warmup: int = WARMUP):
    """||dL_t/dh_{t-k}|| for k = 0 .. max_k at each t of positions, from one reading:
    shape (len(positions), max_k + 1).

    The reading starts from zero_state before ids[min(positions) - max_k - warmup] and runs
    to ids[max(positions)], so each h_{t-max_k} has read at least warmup + 1 characters.
    Positions must lie in [warmup + max_k, len(ids) - 2].
    """
    params = params.astype(np.float64)  # float32's range would flush the far norms to zero
    positions = np.sort(np.asarray(positions, dtype=np.int64))
    first, last = int(positions[0]) - max_k - warmup, int(positions[-1])
    if first < 0 or last > len(ids) - 2:
        raise ValueError(f"positions must lie in [{warmup + max_k}, {len(ids) - 2}]")
    ids = np.asarray(ids)  # read one int() at a time: uint8 or uint16 ids need no cast
    keep_from = int(positions[0]) - max_k  # the step before the farthest k's, for stacks
    state, caches, grads = zero_state(params), {}, {}
    for tau in range(first, last + 1):
        state, logp, cache = step_forward(params, int(ids[tau]), state)
        if tau >= keep_from:
            caches[tau] = cache
        if tau in positions:
            grads[tau] = output_grad(params, logp, int(ids[tau + 1]), len(state))
    norms = np.empty((len(positions), max_k + 1))
    for i, t in enumerate(positions):
        d = grads[int(t)]
        norms[i, 0] = np.linalg.norm(first_layer_grad(params, d, caches[int(t)]))
        for k in range(1, max_k + 1):
            d = step_backward(None, d, caches[int(t) - k + 1], params, None)
            h1 = first_layer_grad(params, d, caches.get(int(t) - k))
            norms[i, k] = np.linalg.norm(h1)
    return norms


def first_layer_grad(params: Params, d: np.ndarray, cache) -> np.ndarray:
    """dL/dh of the first layer at a step, from d = dL/dstate after that step (every layer's
    rows) and the step's cache: d's first m rows, plus, in a stack, what the layers above
    pass down at that same step (they read this h)."""
    if params.layers == 1:
        return d[: params.m]
    parts, (_, caches, _) = split_state(params, d), cache
    cell, dabove = _CELLS[params.cell], 0.0
    for l in range(params.layers, 1, -1):
        W, U, _ = params.layer(l)
        D, _ = cell.layer_backward(dabove, parts[l - 1], caches[l - 1][0], W, None)
        dabove = U.T @ D
    return parts[0][: params.m] + dabove


def norms_at(params: Params, ids, t: int, max_k: int = MAX_K, warmup: int = WARMUP) -> np.ndarray:
    """||dL_t/dh_{t-k}|| for k = 0 .. max_k at one position t, shape (max_k + 1,)."""
    return stretch_norms(params, ids, [t], max_k, warmup)[0]


@dataclass(frozen=True)
class Stretches:
    """Where gradient_norms measures: n_positions positions in stretches read in one pass
    each (to share the forward steps), per_stretch positions `spacing` characters apart, each
    reading at least warmup + 1 characters before its h_{t-max_k}. The defaults are the
    report's."""

    max_k: int = MAX_K
    n_positions: int = N_POSITIONS
    per_stretch: int = PER_STRETCH
    spacing: int = SPACING
    warmup: int = WARMUP


def gradient_norms(
    params: Params, ids, *, where: Stretches = Stretches(), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, norms (n_positions, max_k + 1)) at where.n_positions positions t of ids,
    each stretch's first drawn at random with seed (stretches are distinct, and fewer
    positions are taken if the text is short)."""
    max_k, n_positions, per_stretch = where.max_k, where.n_positions, where.per_stretch
    spacing, warmup = where.spacing, where.warmup
    span = (per_stretch - 1) * spacing
    low, high = warmup + max_k, len(ids) - 2 - span
    if high < low:
        raise ValueError(f"the text needs at least {low + span + 2} characters, has {len(ids)}")
    rng = np.random.default_rng(seed)
    n_stretches = min(-(-n_positions // per_stretch), high - low + 1)
    starts = np.sort(rng.choice(high - low + 1, size=n_stretches, replace=False)) + low
    offsets = np.arange(per_stretch) * spacing
    norms = np.concatenate(
        [stretch_norms(params, ids, s + offsets, max_k, warmup) for s in starts]
    )[:n_positions]
    positions = (starts[:, None] + offsets).ravel()[:n_positions]
    return positions, norms


def steps_to_fall(mean_norms: np.ndarray, factor: float = FALL) -> int | None:
    """The first k at which mean_norms[k] <= mean_norms[0] / factor; None if none does."""
    below = np.flatnonzero(np.asarray(mean_norms) <= mean_norms[0] / factor)
    return int(below[0]) if len(below) else None
