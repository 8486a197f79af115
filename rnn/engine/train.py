"""The original training loop: consecutive sequences, carried state, an optimizer, clipping.

Update `step` (0-based) trains on ids[j*L : j*L + L+1] with j = step % per_epoch, where
per_epoch = (N - 1) // L sequences fit in the N training characters: the state is carried
from one sequence to the next and zeroed at each epoch's start (j == 0). That is the default
order; rnn.engine.order has the others (chunks, random) and batches of B streams, and says, for
each run of updates, where each sequence starts and which states reset. A sequence's loss
is the sum of its characters' cross-entropies or their mean (spec.loss); gradients are
clipped to [-clip, clip] (unless clip is 0) before the optimizer (rnn.engine.optim: AdaGrad, Adam
or RMSProp). The smooth loss starts at the loss of uniform guessing in the same units
(L ln K for the sum, ln K for the mean) and follows
smooth = SMOOTH_DECAY smooth + SMOOTH_WEIGHT loss.

What to train is one TrainSpec (rnn.engine.spec, built by Config.train_spec); how to carry it out
(backend, progress bar, checkpoints, stop requests) is a Controls.

Hidden states are columns (S, 1), S = Params.state_size (m, or 2m for the LSTM's [h; s]), in
TrainState, TrainResult and every function here, as in rnn.engine.model and rnn.engine.sample.

Two interchangeable update loops run it: `kernels.run_updates` (compiled, the default) and
`run_updates_reference` below (per-time-step numpy, readable). The loop in `train` decides
only when to stop for samples, validation, checkpoints, the progress bar, divergence and
interruption.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from rnn.engine import optim
from rnn.engine.batch import loss_and_grads_batch, sequences, streams_mean
from rnn.engine.cells import GATES
from rnn.engine.model import (
    Params,
    join_states,
    loss_and_grads,
    loss_scale,
    sequence_losses,
    split_state,
    zero_state,
)
from rnn.engine.order import Order, Schedule, schedule
from rnn.engine.progress import Progress, cold_cache, progress_bar
from rnn.engine.sample import as_state, sample
from rnn.engine.spec import TrainSpec
from rnn.engine.stack import loss_and_grads_stack, loss_stack
from rnn.errors import DataError, Interrupted, TrainingDiverged
from rnn.runs.config import check_int

if TYPE_CHECKING:  # imported where used: numba costs ~80 MB a process that only reads runs
    from rnn.engine import kernels

BACKENDS = ("auto", "numba", "reference")
SMOOTH_DECAY, SMOOTH_WEIGHT = 0.999, 0.001  # smooth = 0.999 smooth + 0.001 loss
# Divergence: a non-finite loss, or a smooth loss above DIVERGED times its start (L ln K,
# or ln K for the mean loss). Measured on the default corpus (m = 100, AdaGrad): merely bad
# runs peak at 2.1, 27 and 205 times the start (vanilla, eta = 1, 2, 5, 60,000 updates),
# 2.1, 4 and 10 (LSTM) and 4.4, 17 and 213 (GRU); at eta = 1e6 every cell is past 10 times
# the start at update 1 and peaks near a million times it, and at eta = 1.7e308 the loss is
# NaN at update 1.
DIVERGED = 1000.0
CHUNK_UPDATES = 1000  # at most this many updates between checks of divergence and should_stop
CHUNK_SECONDS = 0.5  # ... and about this much time


@dataclass(frozen=True)
class Controls:
    """How a training run is carried out, not what it computes.

    backend: "auto" (compiled when numba is there), "numba" or "reference". progress: True
    (a bar on a terminal, plain lines elsewhere) or an rnn.engine.progress.Progress saying how.
    checkpoint: a callable(state) called at multiples of
    checkpoint_every and at the end (see rnn.runs.checkpoint). should_stop: a callable checked at
    least every CHUNK_UPDATES updates; when it returns True the checkpoint callable (if any)
    gets the current state and Interrupted(step, checkpoint_step) is raised."""

    backend: str = "auto"
    progress: bool | Progress = False
    checkpoint: Callable | None = None
    checkpoint_every: int | None = None
    should_stop: Callable[[], bool] | None = None

    def __post_init__(self):
        check_int("checkpoint_every", self.checkpoint_every, 1, allow_none=True)
        if self.backend != "auto":  # auto always resolves, and finding out loads numba
            _resolve(self.backend)


@dataclass
class TrainState:
    """Everything a run needs to continue exactly where it stopped (see rnn.runs.checkpoint)."""

    step: int
    theta: np.ndarray  # parameters, flat (Params.flatten order)
    opt: dict  # the optimizer's state, flat (optim.flat_state): AdaGrad's G, Adam's m, v, t
    h: np.ndarray  # the carried state (S, B), a column per stream (rnn.engine.order)
    smooth: float
    best_smooth: float
    best_smooth_step: int
    best_smooth_theta: np.ndarray
    best_smooth_h: np.ndarray  # (S, 1) the state that model started its update from
    rng: np.random.Generator  # sampling's generator
    loss: np.ndarray  # per update, length n_updates (filled up to step)
    smooth_loss: np.ndarray
    samples: dict = field(default_factory=dict)  # step -> sampled ids
    val_steps: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)  # mean nats per character
    best_val: float = math.inf
    best_val_step: int = -1
    best_val_theta: np.ndarray | None = None
    best_val_h: np.ndarray | None = None  # (S, 1)
    seconds: float = 0.0  # training time so far
    val_seconds: list = field(default_factory=list)  # wall seconds of training at each val_steps
    budget_stop: int = -1  # the update at which time_budget stopped training (-1: it did not)


@dataclass
class TrainResult:
    params: Params  # after the last update
    best_params: Params  # lowest validation loss if there is a split, else lowest smooth loss
    best_h: np.ndarray  # (S, 1) the state best_params was running from then
    best_step: int  # updates made before best_params (it is the model of that step)
    best_by: str  # "validation" or "smooth loss"
    loss: np.ndarray  # (n_updates,) loss of each update's sequence, nats
    smooth_loss: np.ndarray  # (n_updates,)
    samples: dict  # step -> ids sampled before that update
    val_steps: np.ndarray  # steps at which the validation split was evaluated
    val_loss: np.ndarray  # mean nats per character there
    per_epoch: int  # updates per epoch
    seconds: float  # wall time spent in updates, evaluation and sampling
    state: TrainState

    @property
    def stopped_by_budget(self) -> bool:
        """Whether time_budget ended training (at update len(loss), before n_updates)."""
        return self.state.budget_stop >= 0

    @property
    def val_seconds(self) -> np.ndarray:
        """Wall seconds of training at each validation (NaN where not recorded): the
        validation curve against time is (val_seconds, val_loss)."""
        v = np.full(len(self.val_steps), np.nan)
        v[: len(self.state.val_seconds)] = self.state.val_seconds[: len(v)]
        return v

    @property
    def epochs(self) -> float:
        return len(self.loss) / self.per_epoch

    @property
    def updates_per_sec(self) -> float:
        return len(self.loss) / self.seconds if self.seconds > 0 else math.nan

    @property
    def best_smooth_loss(self) -> float:
        return float(self.smooth_loss.min()) if len(self.smooth_loss) else math.nan


def run_updates_reference(
    s: TrainState, n: int, ids, spec: TrainSpec, K: int, sched: Schedule | None = None
):
    """Updates s.step .. s.step + n - 1 on ids, the textbook loop (min-char-rnn's), with the
    parameters and the optimizer's state as Params; s is left consistent, s.step advanced
    by n. sched (rnn.engine.order) says where each update's sequences start and which streams
    reset; a batch (B > 1) is B single-sequence passes averaged (rnn.engine.batch.streams_mean)."""
    _run_updates_numpy(s, n, ids, spec, K, sched or spec_schedule(spec, len(ids)), streams_mean)


def _run_updates_batched(
    s: TrainState, n: int, ids, spec: TrainSpec, K: int, sched: Schedule | None = None
):
    """The same, each update's B sequences at once in matrix-matrix products (rnn.engine.batch)."""
    sched = sched or spec_schedule(spec, len(ids))
    _run_updates_numpy(s, n, ids, spec, K, sched, loss_and_grads_batch)


def stack_gradients(params: Params, X: np.ndarray, Y: np.ndarray, h: np.ndarray, masks=None):
    """The one call training makes to the stack's BPTT (layers > 1, dropout or float32), with
    the layout conversions at its boundary: h is the carried state as training keeps it,
    every layer's (S, B) stacked (L S, B); the stack's function takes and returns a list of
    L arrays. Returns (mean loss over the B sequences, mean gradients, next h (L S, B))."""
    loss, grads, states = loss_and_grads_stack(
        dict(params.items()), params.cell, X, Y, split_state(params, h), masks
    )
    return loss, Params(**grads), join_states(states)


def dropout_masks(params: Params, T: int, B: int, p: float, rng: np.random.Generator):
    """None for p = 0; else each layer's inverted-dropout mask (T, B, m) in the parameters'
    dtype: 1/keep with probability keep = 1 - p, else 0, drawn from rng layer by layer (single
    precision uniforms: half the cost of double, and 2^-24 is fine grain enough for p)."""
    if p == 0:
        return None
    keep = 1.0 - p
    one, shape = params.dtype.type(1.0 / keep), (T, B, params.m)
    masks = []
    for _ in range(params.layers):
        kept = np.less(rng.random(shape, dtype=np.float32), np.float32(keep))
        masks.append(np.multiply(kept, one, dtype=params.dtype))  # a quarter of np.where's time
    return masks


def _run_updates_stack(
    s: TrainState, n: int, ids, spec: TrainSpec, K: int, sched: Schedule | None = None
):
    """Updates on the stack's path: every update's B sequences through stack_gradients, in
    the spec's dtype, with dropout masks drawn from the run's generator s.rng (none at
    dropout 0, so that its draws stay the samples')."""
    sched = sched or spec_schedule(spec, len(ids))
    m, L, cell = spec.m, spec.seq_length, spec.cell
    params = Params.unflatten(s.theta, m, K, cell, spec.layers)
    opt, state = optim.from_spec(spec), optim.unflat_state(s.opt, m, K, cell, spec.layers)
    scale = loss_scale(spec.loss, L)
    starts, resets = sched.window(s.step, n)
    for i, step in enumerate(range(s.step, s.step + n)):
        s.h[:, resets[i]] = 0.0
        X, Y = sequences(ids, starts[i], L)
        masks = dropout_masks(params, L, X.shape[1], spec.dropout, s.rng)
        loss, grads, h_next = stack_gradients(params, X, Y, s.h, masks)
        loss *= scale
        s.smooth = SMOOTH_DECAY * s.smooth + SMOOTH_WEIGHT * loss
        s.loss[step], s.smooth_loss[step] = loss, s.smooth
        if s.smooth < s.best_smooth:
            s.best_smooth, s.best_smooth_step = s.smooth, step
            s.best_smooth_theta, s.best_smooth_h = params.flatten(), s.h[:, :1].copy()
        optim.update_in_place(opt, params, grads, state, scale, spec.clip)
        s.h = h_next
    s.theta[:] = params.flatten()
    s.opt = optim.flat_state(state)
    s.step += n


def spec_schedule(spec: TrainSpec, n_ids: int) -> Schedule:
    """The spec's order laid over a training text of n_ids characters (rnn.engine.order)."""
    order = Order(spec.order, spec.n_chunks, spec.batch_size)
    return schedule(order, n_ids, spec.seq_length, spec.seed)


def _run_updates_numpy(s, n, ids, spec: TrainSpec, K: int, sched: Schedule, gradients) -> None:
    m, L, cell = spec.m, spec.seq_length, spec.cell
    params = Params.unflatten(s.theta, m, K, cell)
    opt, state = optim.from_spec(spec), optim.unflat_state(s.opt, m, K, cell)
    scale = loss_scale(spec.loss, L)  # a batch's loss: the mean over its sequences of theirs
    starts, resets = sched.window(s.step, n)
    for i, step in enumerate(range(s.step, s.step + n)):
        s.h[:, resets[i]] = 0.0  # streams starting a stretch, a chunk or a random sequence
        if s.h.shape[1] == 1:  # one sequence: the textbook's loss_and_grads itself
            j = int(starts[i, 0])
            X, Y = ids[j : j + L], ids[j + 1 : j + L + 1]
            loss, grads, h_next = loss_and_grads(params, X, Y, s.h, spec.loss)
        else:
            loss, grads, h_next = gradients(params, *sequences(ids, starts[i], L), s.h)
            loss, grads = loss * scale, grads.map(lambda g: g * scale)
        s.smooth = SMOOTH_DECAY * s.smooth + SMOOTH_WEIGHT * loss
        s.loss[step], s.smooth_loss[step] = loss, s.smooth
        if s.smooth < s.best_smooth:  # keep the parameters this loss was measured with
            s.best_smooth, s.best_smooth_step = s.smooth, step
            s.best_smooth_theta, s.best_smooth_h = params.flatten(), s.h[:, :1].copy()
        if spec.clip > 0:
            grads = optim.clip(grads, spec.clip)
        params, state = opt.step(params, grads, state)
        s.h = h_next
    s.theta[:] = params.flatten()
    s.opt = optim.flat_state(state)
    s.step += n


def _run_updates_compiled(
    s: TrainState, n: int, ids, spec: TrainSpec, K: int, sched: Schedule | None = None
):
    """The same as run_updates_reference for one stream (B = 1), compiled (rnn.engine.kernels)."""
    from rnn.engine import kernels

    L = spec.seq_length
    net = kernels.Net(spec.m, K, GATES[spec.cell])
    starts, resets = (sched or spec_schedule(spec, len(ids))).window(s.step, n)
    text = kernels.Text(
        ids, np.ascontiguousarray(starts[:, 0]), np.ascontiguousarray(resets[:, 0]), L
    )
    adam = spec.optimizer == "adam"
    model = kernels.Model(
        s.theta,
        s.opt["m"] if adam else s.opt["G"],
        s.opt["v"] if adam else _NONE,
        s.opt["t"] if adam else np.zeros(1, dtype=np.int64),
        s.h,
    )
    log = kernels.Log(
        s.loss, s.smooth_loss, SMOOTH_DECAY, SMOOTH_WEIGHT, s.best_smooth_theta, s.best_smooth_h
    )
    counters = kernels.Counters(s.step, n, s.smooth, s.best_smooth, s.best_smooth_step)
    after = kernels.run_updates(net, text, compiled_rule(spec), model, log, counters)
    s.smooth, s.best_smooth, s.best_smooth_step = after.smooth, after.best_smooth, after.best_step
    s.step += n


_NONE = np.zeros(0)  # Model.s2 for the optimizers with one state array


def compiled_rule(spec: TrainSpec) -> kernels.Rule:
    """The spec's update rule as the compiled path takes it: clip 0 (off) is an infinite
    bound, the mean loss a scale of 1/L."""
    from rnn.engine import kernels

    return kernels.Rule(
        kernels.KINDS[spec.optimizer],
        float(spec.eta),
        float(spec.beta1),
        float(spec.beta2),
        float(spec.epsilon),
        float(spec.gamma),
        float(spec.clip) if spec.clip > 0 else math.inf,
        loss_scale(spec.loss, spec.seq_length),
    )


def mean_loss(
    params: Params, ids: ArrayLike, backend: str = "auto", h0: np.ndarray | None = None
) -> float:
    """Mean -ln p per character of ids[1:] given ids[:-1], reading from state h0 (S, 1) (zero
    by default). NaN if there is nothing to score (fewer than 2 ids). The mean log-probability
    of a text continuing input x0 is -mean_loss(params, [x0, *text], h0=...)."""
    ids = _as_ids(ids)
    if len(ids) < 2:
        return math.nan
    h0 = as_state(params, h0)
    if params.layers > 1 or params.dtype != np.float64:  # the stack's fast forward
        return _stack_mean_loss(params, ids, h0)
    if _resolve(backend) == "numba":
        from rnn.engine import kernels

        theta, gates = params.flatten(), GATES[params.cell]
        return float(kernels.mean_loss_flat(theta, ids, h0, params.m, params.K, gates))
    return float(sequence_losses(params, ids[:-1], ids[1:], h0).mean())


VAL_CHUNK = 2000  # steps per call of the stack's forward when validating: one stream, chunked


def _stack_mean_loss(params: Params, ids: np.ndarray, h0: np.ndarray) -> float:
    """mean_loss of a stack or a float32 network: rnn.engine.stack's forward over one stream,
    a chunk of VAL_CHUNK steps at a time with the state carried (2.8x the rate of a
    step-by-step loop for a 2-layer LSTM of 256; the sums of the chunks' losses added in
    float64)."""
    P, state, total = dict(params.items()), split_state(params, h0), 0.0
    for i in range(0, len(ids) - 1, VAL_CHUNK):
        x = ids[i : i + VAL_CHUNK + 1]
        loss, state = loss_stack(P, params.cell, x[:-1, None], x[1:, None], state)
        total += loss
    return total / (len(ids) - 1)


def _as_ids(ids) -> np.ndarray:
    """ids as a contiguous array of its own integer dtype (uint8, uint16, ...): no copy
    unless it is not contiguous."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise DataError(
            f"character indices must be a 1-D integer array, got {ids.dtype} {ids.shape}"
        )
    return np.ascontiguousarray(ids)


def _resolve(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "reference":
        return backend
    from rnn.engine import kernels

    if backend == "auto":
        return "numba" if kernels.AVAILABLE else "reference"
    if backend == "numba" and not kernels.AVAILABLE:
        raise RuntimeError("backend 'numba' asked for, but numba is not installed")
    return backend


def smooth_start(seq_length: int, K: int, loss: str = "sum") -> float:
    """The smooth loss before the first update: the loss of uniform guessing, seq_length ln K
    for the summed loss, ln K for the mean."""
    return math.log(K) * (1.0 if loss == "mean" else seq_length)


def new_state(params: Params, spec: TrainSpec) -> TrainState:
    theta = params.flatten()
    opt = optim.from_spec(spec)
    return TrainState(
        step=0,
        theta=theta,
        opt=optim.flat_state(opt.init(params)),
        h=np.zeros((params.state_size, spec.batch_size), dtype=params.dtype),
        smooth=smooth_start(spec.seq_length, params.K, spec.loss),
        best_smooth=math.inf,
        best_smooth_step=-1,
        best_smooth_theta=theta.copy(),
        best_smooth_h=zero_state(params),
        rng=np.random.default_rng(spec.seed),
        loss=np.full(spec.n_updates, np.nan),
        smooth_loss=np.full(spec.n_updates, np.nan),
    )


def _next_stop(step: int, n_updates: int, *periods) -> int:
    """The first step after `step` that is a multiple of any period, capped at n_updates."""
    return min([n_updates] + [(step // p + 1) * p for p in periods if p])


def check_diverged(s: TrainState, start: int, limit: float, eta: float) -> None:
    """TrainingDiverged if an update in start .. s.step - 1 had a non-finite loss or a smooth
    loss above `limit`, naming the first such update."""
    loss, smooth = s.loss[start : s.step], s.smooth_loss[start : s.step]
    bad = ~np.isfinite(loss) | ~(smooth <= limit)
    if bad.any():
        k = int(np.argmax(bad))
        what = (
            f"the loss is {loss[k]}"
            if not np.isfinite(loss[k])
            else f"the smooth loss {smooth[k]:.4g} passed {limit:.4g} ({DIVERGED:g} x its start)"
        )
        raise TrainingDiverged(
            f"training diverged at update {start + k:,}: {what}; lower eta (now {eta:g})"
        )


def train(
    params: Params,
    ids: ArrayLike,
    spec: TrainSpec,
    *,
    val_ids: ArrayLike | None = None,
    resume: TrainState | None = None,
    controls: Controls = Controls(),
) -> TrainResult:
    """Train `params` (left untouched) on the index array `ids` as `spec` says: spec.n_updates
    updates of spec.optimizer, each on one sequence (see the module's docstring).

    params must be a network of the spec's cell and m. ids and val_ids may have any integer
    dtype and are not copied. spec.sample_every=None turns sampling off; samples are drawn
    before update s for every s that is a multiple of sample_every, from the carried state
    and the sequence's first character. With val_ids, the mean loss per character on them is
    measured at every multiple of spec.eval_every and after the last update, and picks the
    best model. resume: a TrainState to continue from. controls: backend, progress bar,
    checkpoints and stop requests (see Controls).

    Raises TrainingDiverged if the loss turns non-finite or the smooth loss passes DIVERGED
    times its start, checked at least every CHUNK_UPDATES updates (or CHUNK_SECONDS).
    """
    spec.check_fits(params)
    ids = _as_ids(ids)
    m, K, L, cell, n_updates = params.m, params.K, spec.seq_length, params.cell, spec.n_updates
    if len(ids) < L + 1:
        raise DataError(
            f"the training text has {len(ids)} characters; seq_length={L} needs at least {L + 1}"
        )
    if ids.min() < 0 or ids.max() >= K:
        raise DataError(f"character indices must lie in [0, {K}) for a network with K={K}")
    if val_ids is not None:
        val_ids = _as_ids(val_ids)
        if len(val_ids) < 2:
            val_ids = None
    sample_every = spec.sample_every
    eval_every = spec.eval_every if val_ids is not None else None
    checkpoint, checkpoint_every = controls.checkpoint, controls.checkpoint_every
    should_stop, backend = controls.should_stop, controls.backend
    sched = spec_schedule(spec, len(ids))
    compiled = _resolve(backend) == "numba"
    if spec.stacked:  # layers > 1, dropout or float32: the stack's path, whatever the backend
        run = _run_updates_stack
    elif not compiled:
        run = run_updates_reference
    else:  # B = 1 keeps the compiled single-sequence path; a batch runs on BLAS
        run = _run_updates_batched if spec.batch_size > 1 else _run_updates_compiled
    compiled = compiled and not spec.stacked
    per_epoch = sched.per_epoch
    limit = DIVERGED * smooth_start(L, K, spec.loss)

    # A copy: the caller's state (from a checkpoint, say) can seed another run unchanged.
    s = copy.deepcopy(resume) if resume is not None else new_state(params, spec)
    _check_resumed(s, params, spec)

    def evaluate(step):
        # From the state training carries, not from zero: the model starts from zero only at
        # an epoch's start, and from there it reads far worse (see the README).
        if val_ids is None or (s.val_steps and s.val_steps[-1] == step):
            return
        h0 = np.ascontiguousarray(s.h[:, :1])  # the first stream's (compiled for C layout)
        v = mean_loss(Params.unflatten(s.theta, m, K, cell), val_ids, backend, h0=h0)
        s.val_steps.append(step)
        s.val_loss.append(v)
        s.val_seconds.append(time.perf_counter() - t0)  # the validation curve against time
        if v < s.best_val:
            s.best_val, s.best_val_step = v, step
            s.best_val_theta, s.best_val_h = s.theta.copy(), h0.copy()

    # Zero updates compile the fast path (once per machine; cached after), so that the
    # compiler's seconds are not counted as training time.
    bar = progress_bar(controls.progress, n_updates, s.step, compiling=compiled and cold_cache())
    run(s, 0, ids, spec, K, sched)
    if val_ids is not None:
        mean_loss(params, val_ids[:2], backend)
    tick = bar.start() if bar is not None else None
    chunk = 10  # updates per call, grown to about CHUNK_SECONDS' worth
    last_checkpoint = None
    t0 = time.perf_counter() - s.seconds
    budget = spec.time_budget
    while s.step < n_updates and s.budget_stop < 0:
        step = s.step
        if budget and time.perf_counter() - t0 >= budget:  # the first boundary past it
            s.budget_stop = step
            break
        if should_stop is not None and should_stop():
            if checkpoint is not None:
                s.seconds = time.perf_counter() - t0
                checkpoint(s)
                last_checkpoint = step
            raise Interrupted(step, last_checkpoint)
        if sample_every and step % sample_every == 0 and step not in s.samples:
            starts, resets = sched.window(step, 1)  # the first stream's next sequence
            h0 = zero_state(params) if resets[0, 0] else s.h[:, :1]
            x0 = ids[starts[0, 0]]
            p = Params.unflatten(s.theta, m, K, cell)
            s.samples[step] = sample(p, h0, x0, spec.sample_length, s.rng)
        if eval_every and step % eval_every == 0:
            evaluate(step)
        if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0 and step:
            s.seconds = time.perf_counter() - t0
            checkpoint(s)
            last_checkpoint = step
        stop = _next_stop(step, n_updates, sample_every, eval_every, checkpoint_every, tick)
        stop = min(stop, step + chunk, optim.next_eta_change(spec, step, per_epoch))
        eta = optim.scheduled_eta(spec, step, per_epoch)
        t1 = time.perf_counter()
        run(s, stop - step, ids, spec if eta == spec.eta else spec.replace(eta=eta), K, sched)
        seconds = time.perf_counter() - t1
        check_diverged(s, step, limit, eta)
        rate = (stop - step) / max(seconds, 1e-9)
        chunk = int(min(CHUNK_UPDATES, max(1, rate * CHUNK_SECONDS)))
        if budget:  # no further past the budget than an update
            left = budget - (time.perf_counter() - t0)
            chunk = min(chunk, max(1, math.ceil(rate * left)))
        if bar is not None:
            bar.update(s)
    if val_ids is not None:
        evaluate(s.step)  # after the last update (n_updates, or where the budget stopped)
    s.seconds = time.perf_counter() - t0
    if checkpoint is not None:
        checkpoint(s)
    if bar is not None:
        bar.close()
    return _result(s, cell, m, K, per_epoch, s.step if s.budget_stop >= 0 else n_updates)


def _check_resumed(s: TrainState, params: Params, spec: TrainSpec) -> None:
    """A resumed state must fit the network and the optimizer; older checkpoints' flat
    states become columns."""
    n_updates = spec.n_updates
    if s.theta.dtype != params.dtype:
        raise DataError(
            f"the state to resume is {s.theta.dtype}, this run trains in {params.dtype}"
        )
    if s.theta.size != params.flatten().size:
        raise DataError(
            f"the state to resume has {s.theta.size} parameters, this network has "
            f"{params.flatten().size} ({params.cell}, m={params.m}, K={params.K})"
        )
    if sorted(s.opt) != sorted(optim.state_names(spec.optimizer)):
        raise DataError(
            f"the state to resume holds an optimizer state of {', '.join(sorted(s.opt))}; "
            f"{spec.optimizer} keeps {', '.join(optim.state_names(spec.optimizer))}"
        )
    B = spec.batch_size
    if B == 1:
        s.h = as_state(params, s.h).copy()
    elif np.shape(s.h) != (params.state_size, B):
        raise DataError(
            f"the state to resume carries {np.size(s.h) // params.state_size} streams, "
            f"this run reads batch_size={B}"
        )
    s.best_smooth_h = as_state(params, s.best_smooth_h).copy()
    if s.best_val_h is not None:
        s.best_val_h = as_state(params, s.best_val_h).copy()
    if s.step > n_updates:
        raise DataError(f"the checkpoint is at update {s.step}, past n_updates={n_updates}")
    if len(s.loss) != n_updates:  # continuing a finished run for more updates
        s.loss, s.smooth_loss = (
            np.concatenate([a[: s.step], np.full(n_updates - s.step, np.nan)])
            for a in (s.loss, s.smooth_loss)
        )


def _result(s: TrainState, cell: str, m: int, K: int, per_epoch: int, n_updates: int):
    if s.best_val_step >= 0:
        best = s.best_val_theta, s.best_val_h, s.best_val_step, "validation"
    elif s.best_smooth_step >= 0:
        best = s.best_smooth_theta, s.best_smooth_h, s.best_smooth_step, "smooth loss"
    else:  # no update was made
        best = s.theta, s.h, 0, "smooth loss"
    best_theta, best_h, best_step, best_by = best
    return TrainResult(
        params=Params.unflatten(s.theta, m, K, cell),
        best_params=Params.unflatten(best_theta, m, K, cell),
        best_h=best_h.copy(),
        best_step=best_step,
        best_by=best_by,
        loss=s.loss[:n_updates].copy(),
        smooth_loss=s.smooth_loss[:n_updates].copy(),
        samples=dict(s.samples),
        val_steps=np.array(s.val_steps, dtype=np.int64),
        val_loss=np.array(s.val_loss),
        per_epoch=per_epoch,
        seconds=s.seconds,
        state=s,
    )


def finished(s: TrainState, n_updates: int) -> bool:
    """Whether a run at state s is over: all n_updates made, or its time budget spent."""
    return s.step >= n_updates or s.budget_stop == s.step


def result_of(s: TrainState, cell: str, m: int, K: int, per_epoch: int) -> TrainResult:
    """What `train` returns, from a finished state (a checkpoint's): nothing is trained."""
    return _result(s, cell, m, K, per_epoch, s.step)
