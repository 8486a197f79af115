"""The original training loop: consecutive sequences, carried hidden state, AdaGrad, clipping.

Update `step` (0-based) trains on ids[j*L : j*L + L+1] with j = step % per_epoch, where
per_epoch = (N - 1) // L sequences fit in the N training characters: the hidden state is
carried from one sequence to the next and zeroed at each epoch's start (j == 0). The smooth
loss starts at L ln K and follows smooth = 0.999 smooth + 0.001 loss.

Two interchangeable update loops run it: `kernels.run_updates` (compiled, the default) and
`run_updates_reference` below (per-time-step numpy, readable). The loop here decides only
when to stop for samples, validation, checkpoints and the progress bar.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import kernels
from .config import check_float, check_int
from .errors import DataError
from .model import Params, loss_and_grads, sequence_losses
from .optim import CLIP, EPS, AdaGrad, clip
from .sample import sample

BACKENDS = ("auto", "numba", "reference")


@dataclass
class TrainState:
    """Everything a run needs to continue exactly where it stopped (see rnn.checkpoint)."""

    step: int
    theta: np.ndarray  # parameters, flat (Params.flatten order)
    G: np.ndarray  # AdaGrad's sums of squared gradients, same layout
    h: np.ndarray  # carried hidden state (m,)
    smooth: float
    best_smooth: float
    best_smooth_step: int
    best_smooth_theta: np.ndarray
    best_smooth_h: np.ndarray  # the hidden state that model started its update from
    rng: np.random.Generator  # sampling's generator
    loss: np.ndarray  # per update, length n_updates (filled up to step)
    smooth_loss: np.ndarray
    samples: dict = field(default_factory=dict)  # step -> sampled ids
    val_steps: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)  # mean nats per character
    best_val: float = math.inf
    best_val_step: int = -1
    best_val_theta: np.ndarray | None = None
    best_val_h: np.ndarray | None = None
    seconds: float = 0.0  # training time so far


@dataclass
class TrainResult:
    params: Params  # after the last update
    best_params: Params  # lowest validation loss if there is a split, else lowest smooth loss
    best_h: np.ndarray  # (m,) the hidden state best_params was running from then
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
    def epochs(self) -> float:
        return len(self.loss) / self.per_epoch

    @property
    def updates_per_sec(self) -> float:
        return len(self.loss) / self.seconds if self.seconds > 0 else math.nan

    @property
    def best_smooth_loss(self) -> float:
        return float(self.smooth_loss.min()) if len(self.smooth_loss) else math.nan


def run_updates_reference(
    ids,
    theta,
    G,
    best_theta,
    best_h,
    h,
    step0,
    n,
    per_epoch,
    L,
    m,
    K,
    eta,
    eps,
    clip_at,
    smooth,
    best_smooth,
    best_step,
    losses,
    smooths,
):
    """The textbook loop, one update at a time through model.loss_and_grads and AdaGrad.

    Same contract as kernels.run_updates: arrays are updated in place, scalars returned.
    """
    opt = AdaGrad(eta=eta, eps=eps)
    for step in range(step0, step0 + n):
        j = step % per_epoch
        if j == 0:
            h[:] = 0.0
        X, Y = ids[j * L : j * L + L], ids[j * L + 1 : j * L + L + 1]
        params, state = Params.unflatten(theta, m, K), Params.unflatten(G, m, K)
        h_start = h.copy()
        loss, grads, h_last = loss_and_grads(params, X, Y, h.reshape(m, 1))
        h[:] = h_last[:, 0]
        smooth = 0.999 * smooth + 0.001 * loss
        losses[step], smooths[step] = loss, smooth
        if smooth < best_smooth:
            best_smooth, best_step = smooth, step
            best_theta[:], best_h[:] = theta, h_start
        params, state = opt.step(params, clip(grads, clip_at), state)
        theta[:], G[:] = params.flatten(), state.flatten()
    return smooth, best_smooth, best_step


def mean_loss(params: Params, ids: np.ndarray, backend: str = "auto", h0=None) -> float:
    """Mean -ln p per character of ids[1:] given ids[:-1], reading from hidden state h0 (m,)
    (zero by default)."""
    if len(ids) < 2:
        raise DataError("the validation text needs at least 2 characters")
    h0 = np.zeros(params.m) if h0 is None else np.asarray(h0, dtype=np.float64).reshape(params.m)
    if _resolve(backend) == "numba":
        return float(kernels.mean_loss_flat(params.flatten(), ids, h0, params.m, params.K))
    return float(sequence_losses(params, ids[:-1], ids[1:], h0.reshape(-1, 1)).mean())


def _resolve(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "numba" if kernels.AVAILABLE else "reference"
    if backend == "numba" and not kernels.AVAILABLE:
        raise RuntimeError("backend 'numba' asked for, but numba is not installed")
    return backend


def new_state(params: Params, n_updates: int, seq_length: int, seed: int) -> TrainState:
    theta = params.flatten()
    start = seq_length * math.log(params.K)
    return TrainState(
        step=0,
        theta=theta,
        G=np.zeros_like(theta),
        h=np.zeros(params.m),
        smooth=start,
        best_smooth=math.inf,
        best_smooth_step=-1,
        best_smooth_theta=theta.copy(),
        best_smooth_h=np.zeros(params.m),
        rng=np.random.default_rng(seed),
        loss=np.full(n_updates, np.nan),
        smooth_loss=np.full(n_updates, np.nan),
    )


def _next_stop(step: int, n_updates: int, *periods) -> int:
    """The first step after `step` that is a multiple of any period, capped at n_updates."""
    return min([n_updates] + [(step // p + 1) * p for p in periods if p])


def train(
    params: Params,
    ids,
    *,
    n_updates: int,
    seq_length: int = 25,
    eta: float = 0.1,
    sample_every: int | None = 10_000,
    sample_length: int = 200,
    seed: int = 0,
    progress: bool = False,
    val_ids=None,
    eval_every: int | None = None,
    checkpoint=None,
    checkpoint_every: int | None = None,
    resume: TrainState | None = None,
    backend: str = "auto",
    should_stop=None,
) -> TrainResult:
    """Train `params` (left untouched) on the index array `ids` for n_updates AdaGrad updates.

    sample_every=None turns sampling off; samples are drawn before update s for every s that
    is a multiple of sample_every, from the carried hidden state and the sequence's first
    character. With val_ids, the mean loss per character on them is measured at every
    multiple of eval_every and after the last update, and picks the best model.
    checkpoint: a callable(state) called at multiples of checkpoint_every and at the end
    (see rnn.checkpoint.Checkpointer); resume: a TrainState to continue from.
    """
    check_int("n_updates", n_updates, 0)
    check_int("seq_length", seq_length, 1)
    check_float("eta", eta, low=0.0, low_open=True)
    check_int("sample_every", sample_every, 1, allow_none=True)
    check_int("sample_length", sample_length, 0)
    check_int("eval_every", eval_every, 1, allow_none=True)
    check_int("checkpoint_every", checkpoint_every, 1, allow_none=True)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    m, K, L = params.m, params.K, seq_length
    if len(ids) < L + 1:
        raise DataError(
            f"the training text has {len(ids)} characters; seq_length={L} needs at least {L + 1}"
        )
    if ids.min() < 0 or ids.max() >= K:
        raise DataError(f"character indices must lie in [0, {K}) for a network with K={K}")
    if val_ids is not None:
        val_ids = np.ascontiguousarray(val_ids, dtype=np.int64)
        if len(val_ids) < 2:
            val_ids = None
    eval_every = eval_every if val_ids is not None else None
    run = kernels.run_updates if _resolve(backend) == "numba" else run_updates_reference
    per_epoch = (len(ids) - 1) // L

    # A copy: the caller's state (from a checkpoint, say) can seed another run unchanged.
    s = copy.deepcopy(resume) if resume is not None else new_state(params, n_updates, L, seed)
    if s.step > n_updates:
        raise DataError(f"the checkpoint is at update {s.step}, past n_updates={n_updates}")
    if len(s.loss) != n_updates:  # continuing a finished run for more updates
        s.loss, s.smooth_loss = (
            np.concatenate([a[: s.step], np.full(n_updates - s.step, np.nan)])
            for a in (s.loss, s.smooth_loss)
        )

    def evaluate(step):
        # From the hidden state training carries, not from zero: the model starts from zero
        # only at an epoch's start, and from there it reads far worse (see the README).
        if val_ids is None or (s.val_steps and s.val_steps[-1] == step):
            return
        v = mean_loss(Params.unflatten(s.theta, m, K), val_ids, backend, h0=s.h)
        s.val_steps.append(step)
        s.val_loss.append(v)
        if v < s.best_val:
            s.best_val, s.best_val_step = v, step
            s.best_val_theta, s.best_val_h = s.theta.copy(), s.h.copy()

    def advance(n: int) -> None:
        """Make updates s.step .. s.step + n - 1."""
        s.smooth, s.best_smooth, s.best_smooth_step = run(
            ids,
            s.theta,
            s.G,
            s.best_smooth_theta,
            s.best_smooth_h,
            s.h,
            s.step,
            n,
            per_epoch,
            L,
            m,
            K,
            float(eta),
            EPS,
            CLIP,
            s.smooth,
            s.best_smooth,
            s.best_smooth_step,
            s.loss,
            s.smooth_loss,
        )
        s.step += n

    # Zero updates compile the fast path (once per machine; cached after), so that the
    # compiler's seconds are not counted as training time.
    advance(0)
    if val_ids is not None:
        mean_loss(params, val_ids[:2], backend)
    bar = _progress_bar(n_updates, s.step) if progress else None
    tick = max(1, min(1000, n_updates // 100)) if progress else None
    t0 = time.perf_counter() - s.seconds
    while s.step < n_updates:
        step = s.step
        if sample_every and step % sample_every == 0 and step not in s.samples:
            h0 = np.zeros(m) if step % per_epoch == 0 else s.h
            x0 = ids[(step % per_epoch) * L]
            s.samples[step] = sample(Params.unflatten(s.theta, m, K), h0, x0, sample_length, s.rng)
        if eval_every and step % eval_every == 0:
            evaluate(step)
        if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0 and step:
            s.seconds = time.perf_counter() - t0
            checkpoint(s)
        stop = _next_stop(step, n_updates, sample_every, eval_every, checkpoint_every, tick)
        advance(stop - step)
        if bar is not None:
            bar.update(stop - step)
            bar.set_postfix(smooth_loss=f"{s.smooth:.3f}", refresh=False)
    if val_ids is not None:
        evaluate(n_updates)
    s.seconds = time.perf_counter() - t0
    if checkpoint is not None:
        checkpoint(s)
    if bar is not None:
        bar.close()
    return _result(s, m, K, per_epoch, n_updates)


def _result(s: TrainState, m: int, K: int, per_epoch: int, n_updates: int) -> TrainResult:
    if s.best_val_step >= 0:
        best_theta, best_h, best_step, best_by = (
            s.best_val_theta,
            s.best_val_h,
            s.best_val_step,
            "validation",
        )
    elif s.best_smooth_step >= 0:
        best_theta, best_h, best_step, best_by = (
            s.best_smooth_theta,
            s.best_smooth_h,
            s.best_smooth_step,
            "smooth loss",
        )
    else:  # no update was made
        best_theta, best_h, best_step, best_by = s.theta, s.h, 0, "smooth loss"
    return TrainResult(
        params=Params.unflatten(s.theta, m, K),
        best_params=Params.unflatten(best_theta, m, K),
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


def _progress_bar(total: int, initial: int):
    from tqdm import tqdm  # plain text bar: readable in a notebook, a terminal and papermill's log

    return tqdm(
        total=total,
        initial=initial,
        unit="upd",
        mininterval=1.0,
        ascii=True,
        dynamic_ncols=False,
        ncols=90,
        desc="training",
    )
