"""Updates per second of four implementations of one training step, measured in-process on
one thread: the bonus report's speed table.

    work = speed.Workload(cells=("vanilla", "lstm", "gru"), m=100, seconds=2.0)
    rows = speed.table(train_ids, len(vocab), work=work, variants=speed.VARIANTS)
    display(HTML(speed.html(rows)))

Every variant trains the same network (init_params(K, m, seed=seed, cell=cell), the
Workload's) the same way as the package's defaults: consecutive sequences of seq_length
characters from ids, the state carried and zeroed at each epoch's start, the summed loss,
gradients clipped to
[-CLIP, CLIP], AdaGrad (G += g^2; theta -= eta g / sqrt(G + EPS)), one sequence per update:

    textbook   min-char-rnn's loop: x_t a one-hot column, a = W h + U x + b, every outer
               product (dW += da h^T, dU += da x^T) an explicit matrix product
    speedups   the same loop with the assignment's suggested speed-ups: U x_t + b for the
               whole sequence at once, by indexing U's columns (no one-hot vectors), the
               inputs' gradient added into U's columns by indexing, np.outer for the rest
    compiled   the package's own path, rnn.train with the numba kernels (rnn.engine.kernels)
    pytorch    the forward pass of rnn.engine.torchref in torch, float64, gradients by autograd,
               the same clipping and AdaGrad written with torch's in-place operations

table() returns one dict per (cell, variant), in that order:

    cell, m, K, seq_length, variant, label   what was measured
    updates_per_sec                          by the wall clock: float, or None when the
                                             variant cannot run here
    updates_per_cpu_sec                      by the process's CPU time: what one core does
                                             when the machine is busy with other work
    ratio                                    updates_per_cpu_sec / the textbook loop's: on a
                                             busy machine the wall clock slows rows unequally
    updates, seconds, cpu_seconds            the timed run: updates, wall and CPU time
    loss_difference                          largest |loss - the textbook loop's loss| over
                                             the first AGREE_UPDATES updates (or None)
    one_thread                               True when BLAS, OpenMP and torch were held to one
                                             thread (threadpoolctl installed)
    note                                     why a variant did not run ("" when it did)

Each variant is timed on a run of its own from the initial parameters, long enough to take
about `seconds`, after a warm-up run (numba's compilation, torch's first call) and short runs
that estimate its speed: a row takes about 1.2 * seconds, plus numba's first compilation
(30-60 s, once per machine: the kernels are cached on disk).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from rnn.engine import train as training
from rnn.engine.cells import CELLS, check_cell, sigmoid
from rnn.engine.model import PARAM_NAMES, Params, init_params
from rnn.engine.optim import CLIP, EPS
from rnn.engine.spec import TrainSpec

VARIANTS = ("textbook", "speedups", "compiled", "pytorch")
LABELS = {
    "textbook": "textbook loop (one-hot inputs, outer products as matrix products)",
    "speedups": "textbook loop with the suggested speed-ups",
    "compiled": "compiled path (numba)",
    "pytorch": "PyTorch (autograd)",
}
HEADER = ("cell", "implementation", "updates/s", "per CPU second", "× the textbook loop")
AGREE_UPDATES = 10  # updates over which every variant's losses are compared with the textbook's
BUSY = 0.9  # below this share of CPU time over wall time, the table says the machine was busy


# --- one step of each cell, written once for both textbook styles ----------------------------
# A step takes `inp`, the cell's input term U x_t + b (G m rows); `outer` is the style's outer
# product. Vectors are columns (n, 1) in the textbook style and 1-D (n,) with the speed-ups:
# everything below is elementwise or a matrix-vector product, the same code in either shape.


def _vanilla_forward(W, inp, state, m):
    h = np.tanh(W @ state + inp)  # a = W h + U x + b, h = tanh(a)
    return h, h, (state, h)


def _vanilla_backward(W, dW, dh, dstate, cache, m, outer):
    h_prev, h = cache
    da = (1.0 - h * h) * (dh + dstate)
    dW += outer(da, h_prev)
    return da, W.T @ da  # d inp, d state_prev


def _lstm_forward(W, inp, state, m):
    h_prev, s_prev = state[:m], state[m:]
    z = W @ h_prev + inp
    i, f, o = sigmoid(z[:m]), sigmoid(z[m : 2 * m]), sigmoid(z[2 * m : 3 * m])
    g = np.tanh(z[3 * m :])
    s = f * s_prev + i * g
    tanh_s = np.tanh(s)
    h = o * tanh_s
    return h, np.concatenate([h, s]), (h_prev, s_prev, i, f, o, g, tanh_s)


def _lstm_backward(W, dW, dh, dstate, cache, m, outer):
    h_prev, s_prev, i, f, o, g, tanh_s = cache
    dh = dh + dstate[:m]
    ds = dstate[m:] + dh * o * (1.0 - tanh_s * tanh_s)
    dz = np.concatenate(
        [
            ds * g * i * (1.0 - i),
            ds * s_prev * f * (1.0 - f),
            dh * tanh_s * o * (1.0 - o),
            ds * i * (1.0 - g * g),
        ]
    )
    dW += outer(dz, h_prev)
    return dz, np.concatenate([W.T @ dz, f * ds])


def _gru_forward(W, inp, state, m):
    zr = sigmoid(W[: 2 * m] @ state + inp[: 2 * m])
    z, r = zr[:m], zr[m:]
    rh = r * state
    n = np.tanh(W[2 * m :] @ rh + inp[2 * m :])
    h = (1.0 - z) * state + z * n
    return h, h, (state, z, r, rh, n)


def _gru_backward(W, dW, dh, dstate, cache, m, outer):
    h_prev, z, r, rh, n = cache
    dh = dh + dstate
    da_n = dh * z * (1.0 - n * n)
    drh = W[2 * m :].T @ da_n
    da_zr = np.concatenate([dh * (n - h_prev) * z * (1.0 - z), drh * h_prev * r * (1.0 - r)])
    dW[: 2 * m] += outer(da_zr, h_prev)
    dW[2 * m :] += outer(da_n, rh)
    return np.concatenate([da_zr, da_n]), dh * (1.0 - z) + drh * r + W[: 2 * m].T @ da_zr


_CELL_STEPS = {
    "vanilla": (_vanilla_forward, _vanilla_backward),
    "lstm": (_lstm_forward, _lstm_backward),
    "gru": (_gru_forward, _gru_backward),
}


def _softmax(o):
    e = np.exp(o - o.max())
    return e / e.sum()


def _column_outer(a, b):
    """The textbook's outer product of columns a (n, 1) and b (k, 1): a b^T, a matrix product."""
    return a @ b.T


def _sequence(P: dict, X, Y, state0, cell: str, speedups: bool):
    """(loss, grads dict, state) of one sequence in the chosen textbook style."""
    forward, backward = _CELL_STEPS[cell]
    W, U, b, V, c = (P[name] for name in PARAM_NAMES)
    m, K = V.shape[1], V.shape[0]
    grads = {name: np.zeros_like(value) for name, value in P.items()}
    outer = np.outer if speedups else _column_outer
    if speedups:
        inputs = U.T[X] + b  # (T, G m): U x_t + b for every t at once, by indexing U's columns
    state, loss, steps = state0, 0.0, []
    for t in range(len(X)):
        if speedups:
            x, inp = None, inputs[t]
        else:
            x = np.zeros((K, 1))  # min-char-rnn's one-hot input
            x[X[t]] = 1.0
            inp = U @ x + b
        h, state, cache = forward(W, inp, state, m)
        p = _softmax(V @ h + c)
        loss -= math.log(p[Y[t]].item())
        steps.append((x, h, p, cache))
    dstate = np.zeros_like(state0)
    for t in reversed(range(len(X))):
        x, h, p, cache = steps[t]
        do = p.copy()
        do[Y[t]] -= 1.0  # dL/do = p - onehot(y)
        grads["V"] += outer(do, h)
        grads["c"] += do
        dinp, dstate = backward(W, grads["W"], V.T @ do, dstate, cache, m, outer)
        if speedups:
            grads["U"][:, X[t]] += dinp  # U x_t is U's column X[t]
        else:
            grads["U"] += outer(dinp, x)
        grads["b"] += dinp
    return loss, grads, state


def _adagrad(P: dict, grads: dict, G: dict, eta: float) -> None:
    """Clip each gradient to [-CLIP, CLIP], then AdaGrad, in place."""
    for name, g in grads.items():
        np.clip(g, -CLIP, CLIP, out=g)
        G[name] += g * g
        P[name] -= eta * g / np.sqrt(G[name] + EPS)


def _textbook(params: Params, ids, n: int, L: int, eta: float, speedups: bool) -> np.ndarray:
    """n updates of the textbook loop from params (untouched); the loss of each update."""
    cell, S = params.cell, params.state_size
    shape = (lambda a: a.ravel().copy()) if speedups else (lambda a: a.copy())
    P = {name: (shape(v) if name in ("b", "c") else v.copy()) for name, v in params.items()}
    G = {name: np.zeros_like(v) for name, v in P.items()}
    ids = np.asarray(ids, dtype=np.int64)
    zero = np.zeros(S) if speedups else np.zeros((S, 1))
    per_epoch = (len(ids) - 1) // L
    losses, state = np.empty(n), zero
    for step in range(n):
        j = step % per_epoch
        if j == 0:
            state = zero  # an epoch's start
        X, Y = ids[j * L : j * L + L], ids[j * L + 1 : j * L + L + 1]
        losses[step], grads, state = _sequence(P, X, Y, state, cell, speedups)
        _adagrad(P, grads, G, eta)
    return losses


def textbook(params: Params, ids: ArrayLike, n: int, L: int = 25, eta: float = 0.1):
    """The textbook loop: one-hot inputs, outer products as matrix products."""
    return _textbook(params, ids, n, L, eta, speedups=False)


def speedups(params: Params, ids: ArrayLike, n: int, L: int = 25, eta: float = 0.1):
    """The textbook loop with the suggested speed-ups (see the module's docstring)."""
    return _textbook(params, ids, n, L, eta, speedups=True)


def compiled(params: Params, ids: ArrayLike, n: int, L: int = 25, eta: float = 0.1):
    """The package's compiled path: rnn.train with the numba kernels, sampling off."""
    ids = np.asarray(ids)
    spec = TrainSpec(
        cell=params.cell,
        m=params.m,
        n_updates=n,
        seq_length=L,
        optimizer="adagrad",
        eta=eta,
        loss="sum",
        clip=CLIP,
        sample_every=None,
        eval_every=None,
    )
    return training.train(params, ids, spec, controls=training.Controls(backend="numba")).loss


def pytorch(params: Params, ids: ArrayLike, n: int, L: int = 25, eta: float = 0.1):
    """rnn.engine.torchref's forward pass, autograd, and AdaGrad with torch's in-place
    operations."""
    from rnn.engine.torchref import forward, torch_module

    torch = torch_module()
    P = {
        name: torch.tensor(v, dtype=torch.float64, requires_grad=True) for name, v in params.items()
    }
    G = {name: torch.zeros_like(p) for name, p in P.items()}
    ids = np.asarray(ids, dtype=np.int64)
    zero = torch.zeros((params.state_size, 1), dtype=torch.float64)
    per_epoch = (len(ids) - 1) // L
    losses, state = np.empty(n), zero
    for step in range(n):
        j = step % per_epoch
        if j == 0:
            state = zero
        X, Y = ids[j * L : j * L + L], ids[j * L + 1 : j * L + L + 1]
        loss, state = forward(P, X, Y, state, params.cell)
        loss.backward()
        losses[step], state = loss.item(), state.detach()
        with torch.no_grad():
            for name, p in P.items():
                g = p.grad.clamp_(-CLIP, CLIP)
                G[name].addcmul_(g, g)
                p.addcdiv_(g, (G[name] + EPS).sqrt_(), value=-eta)
                p.grad = None
    return losses


RUNS: dict[str, Callable] = {
    "textbook": textbook,
    "speedups": speedups,
    "compiled": compiled,
    "pytorch": pytorch,
}


# --- measuring ---------------------------------------------------------------------------------


@contextlib.contextmanager
def one_thread() -> Iterator[bool]:
    """BLAS, OpenMP (threadpoolctl) and torch held to one thread inside; yields whether
    threadpoolctl was there to hold BLAS (without it BLAS keeps its own setting)."""
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            limited = False
        else:
            stack.enter_context(threadpool_limits(limits=1))
            limited = True
        try:
            import torch
        except ImportError:
            pass
        else:
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            stack.callback(torch.set_num_threads, before)
        yield limited


def _why_not(variant: str) -> str:
    """Why a variant cannot run in this environment ("" when it can)."""
    if variant == "compiled":
        from rnn.engine import kernels

        return "" if kernels.AVAILABLE else "needs numba (pip install '.[fast]')"
    if variant == "pytorch":
        from rnn.engine.torchref import INSTALL, torch_version

        return "" if torch_version() else f"needs the optional extra: {INSTALL}"
    return ""


def measure(run: Callable, params: Params, ids, seconds: float, L: int, eta: float):
    """(updates per second, updates, seconds, CPU seconds, losses) of the timed run of
    run(params, ids, n, L, eta): a warm-up run, runs of growing length until one takes
    seconds / 10, then the timed one, of about `seconds`."""
    run(params, ids, 1, L, eta)  # compiles, imports, allocates
    n = 1
    while True:
        t0 = time.perf_counter()
        run(params, ids, n, L, eta)
        took = time.perf_counter() - t0
        if took >= seconds / 10:
            break
        n *= 4
    n = max(n, round(n * seconds / took))
    t0, c0 = time.perf_counter(), time.process_time()
    losses = run(params, ids, n, L, eta)
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / took, n, took, cpu, np.asarray(losses)


@dataclass(frozen=True)
class Workload:
    """What every variant is timed on: for each cell, the network init_params(K, m,
    seed=seed, cell=cell), trained on sequences of seq_length characters by AdaGrad at eta,
    for about `seconds` a row."""

    cells: tuple[str, ...] = CELLS
    m: int = 100
    seq_length: int = 25
    eta: float = 0.1
    seed: int = 0
    seconds: float = 2.0


def table(
    ids: ArrayLike,
    K: int | None = None,
    *,
    work: Workload = Workload(),
    variants=VARIANTS,
    progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Updates per second of each variant for each of work's cells (see the module's
    docstring for the rows). ids: the training text's character indices; K: the vocabulary's
    size (ids.max() + 1 by default); variants: a subset of VARIANTS ("textbook" is always
    measured: the ratios are to it); progress: called with each row as soon as it is
    measured."""
    m, seconds, seq_length, eta = work.m, work.seconds, work.seq_length, work.eta
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    ids = np.asarray(ids)
    K = int(ids.max()) + 1 if K is None else int(K)
    if len(ids) < seq_length + 1:
        raise ValueError(f"ids has {len(ids)} characters; seq_length={seq_length} needs more")
    if ids.min() < 0 or ids.max() >= K:
        raise ValueError(f"character indices must lie in [0, {K}) for K={K}")
    cells = [check_cell(cell) for cell in work.cells]  # every bad name before any measuring
    variants = ["textbook"] + [v for v in variants if v != "textbook"]
    for v in variants:
        if v not in RUNS:
            raise ValueError(f"unknown variant {v!r}; the variants are {', '.join(VARIANTS)}")
    rows = []
    with one_thread() as limited:
        for cell in cells:
            params = init_params(K, m=m, seed=work.seed, cell=cell)
            base = None
            for variant in variants:
                row = dict(
                    cell=cell,
                    m=m,
                    K=K,
                    seq_length=seq_length,
                    variant=variant,
                    label=LABELS[variant],
                    updates_per_sec=None,
                    updates_per_cpu_sec=None,
                    ratio=None,
                    updates=0,
                    seconds=0.0,
                    cpu_seconds=0.0,
                    loss_difference=None,
                    one_thread=limited,
                    note=_why_not(variant),
                )
                if not row["note"]:
                    rate, n, took, cpu, losses = measure(
                        RUNS[variant], params, ids, seconds, seq_length, eta
                    )
                    per_cpu = n / max(cpu, 1e-9)
                    if base is None:
                        base = per_cpu, losses
                    k = min(AGREE_UPDATES, len(losses), len(base[1]))
                    row.update(
                        updates_per_sec=rate,
                        updates_per_cpu_sec=per_cpu,
                        ratio=per_cpu / base[0],
                        updates=n,
                        seconds=took,
                        cpu_seconds=cpu,
                        loss_difference=float(np.max(np.abs(losses[:k] - base[1][:k]))),
                    )
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def html(rows: list[dict]) -> str:
    """The table as HTML for a notebook: one line per cell and variant, updates per second by
    the wall clock and by CPU time, the ratio to the textbook loop, and a sentence on how it
    was measured (and, when it was, that the machine was busy)."""
    from rnn.report.markup import escape, table

    def number(value, form):
        return format(value, form) if value is not None else ""

    body = [
        (
            r["cell"],
            r["label"] if not r["note"] else f"{r['label']}: {r['note']}",
            number(r["updates_per_sec"], ",.0f"),
            number(r["updates_per_cpu_sec"], ",.0f"),
            number(r["ratio"], ".1f"),
        )
        for r in rows
    ]
    if not rows:
        return table([], header=HEADER)
    first = rows[0]
    diffs = [r["loss_difference"] for r in rows if r["loss_difference"] is not None]
    threads = (
        "one thread (BLAS, OpenMP and torch held to one)"
        if first["one_thread"]
        else "torch held to one thread, BLAS to its own number (threadpoolctl is not installed)"
    )
    note = (
        f"AdaGrad updates of one sequence of {first['seq_length']} characters each, m = "
        f"{first['m']}, K = {first['K']}, float64, measured in this process with {threads}, "
        f"by the wall clock and by the process's CPU time; the ratio, of the latter, is to the "
        f"textbook loop of the same cell. Over the first {AGREE_UPDATES} updates every "
        f"implementation's losses differ from the textbook loop's by at most "
        f"{max(diffs, default=0.0):.1e} nats."
    )
    measured = [r for r in rows if r["updates_per_sec"] is not None]
    busy = sum(r["cpu_seconds"] for r in measured) / max(1e-9, sum(r["seconds"] for r in measured))
    if measured and busy < BUSY:
        note += (
            f" The machine was busy: this process had the processor for {busy:.0%} of the "
            f"measured time, so the wall clock's figures are lower than on an idle machine."
        )
    return table(body, header=HEADER) + f"<p>{escape(note)}</p>"


__all__ = ["RUNS", "VARIANTS", "Workload", "html", "measure", "one_thread", "table"]
