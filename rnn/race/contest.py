"""The race: this package's training of a configuration file against PyTorch with char-rnn's
configuration, for the same budget of seconds, on the same corpus and the same held-out text.

    python -m rnn race --config configs/ten-minutes.yaml --budget 600 --data ... --out ...
    make race CONFIG=configs/ten-minutes.yaml BUDGET=600

Each side runs in a process of its own with one thread (BLAS, OpenMP, numba and torch held
to one), pinned to a core of its own (os.sched_setaffinity) when the machine gives this
process two or more, and both at once; otherwise one after the other. Both validate on the
corpus's last 5% (rnn.runs.data.split_train_val, the same characters on both sides), reading it as
one stream from the state the first stream carries, before the first update, on a period
every budget / EVAL_POINTS seconds of training and after the last update. The budget is
seconds of training: validation is excluded on both sides (timed apart, and reported), so
both curves' seconds are training seconds, and the last model is validated after it.

The package's side (`train_rnn`) trains with rnn.train and the configuration's TrainSpec;
the harness stops it and draws its curve through rnn.engine.train's hooks (Controls.should_stop
and the checkpoint callable, see `_Clock`). The PyTorch side is rnn.race.torch_side.

The record (`record`) holds every figure, both configurations, the machine and the commit;
rnn.race.result shows it and writes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import math
import multiprocessing
import os
import platform
import queue
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn.errors import ConfigError, Interrupted, RNNError
from rnn.runs.paths import DEFAULT_CONFIG, ROOT

DEFAULT_BUDGET = 600.0


MAX_BUDGET = 7 * 24 * 3600.0


VAL_FRACTION = 0.05  # char-rnn's held-out share; both sides validate on this suffix


CHAR_RNN_STREAMS, CHAR_RNN_LENGTH = 50, 50  # char-rnn's batch: 50 sequences of 50 characters


EVAL_POINTS = 20  # the PyTorch side's validations in the budget (a point every budget / 20 s)


MIN_POINTS = 10  # fewer on a side's curve is said at the end


PROGRESS_EVERY = 5.0  # seconds between the terminal's progress lines


SIDES = ("rnn", "torch")


NAMES = {"rnn": "this package", "torch": "PyTorch"}


TORCH_MISSING = (
    "PyTorch is not installed: only this package's side runs; `make torch` (pip install "
    "'.[torch]') adds the other side"
)


def check_budget(text) -> float:
    """BUDGET as seconds: a finite number above 0 (and at most a week); ConfigError naming it."""
    try:
        budget = float(str(text).strip())
    except ValueError:
        budget = math.nan
    if not (0 < budget <= MAX_BUDGET):
        raise ConfigError(
            f"BUDGET must be a number of seconds above 0 and at most {MAX_BUDGET:,.0f}, "
            f"got {str(text)!r}"
        )
    return budget


def load_config(path) -> tuple:
    """(Config, the parameters as given) of a parameters file, read as `make report PARAMS='-f
    FILE'` reads it (the notebook's defaults under it), part VI off (a race has no report);
    one-line errors naming the file."""
    from rnn.report import execution
    from rnn.runs import values as param_values

    path = Path(path)
    given = param_values.collect(execution.NOTEBOOK, files=[path])
    try:
        cfg, _ = execution.effective_parameters(execution.NOTEBOOK, given | {"analysis": False})
    except RNNError as err:
        raise ConfigError(f"{path}: {err}") from None
    if cfg.val_fraction != VAL_FRACTION:
        raise ConfigError(
            f"{path}: val_fraction is {cfg.val_fraction:g}; the race validates both sides on the "
            f"corpus's last {VAL_FRACTION:.0%} (leave val_fraction out, or give {VAL_FRACTION:g})"
        )
    return cfg, given


@dataclass(frozen=True)
class Plan:
    """A race, checked: what each side trains on, for how long, and where the result goes."""

    config_path: Path
    cfg: object  # rnn.runs.config.Config
    given: dict
    data: Path
    sha256: str
    budget: float
    out: Path
    torch: bool  # the PyTorch side runs
    cores: tuple = ()  # one per side when they run at once, else empty (one after the other)
    facts: dict = field(default_factory=dict)  # the corpus's figures


def plan(data, out, config=DEFAULT_CONFIG, budget=DEFAULT_BUDGET, sequential=False) -> Plan:
    """Every input checked, the corpus read once: one clear error before anything runs."""
    from rnn.engine.order import Order, schedule
    from rnn.runs import driver

    budget = check_budget(budget)
    cfg, given = load_config(config)
    prepared = driver.prepare(cfg, data)
    spec = cfg.train_spec()
    schedule(Order.from_config(cfg), len(prepared.train_ids), spec.seq_length, spec.seed)
    if len(prepared.val_ids) < 2:
        raise ConfigError(f"{data}: too short for a validation split of {VAL_FRACTION:.0%}")
    with_torch = importlib.util.find_spec("torch") is not None
    need = CHAR_RNN_STREAMS * (CHAR_RNN_LENGTH + 1)  # every stream a sequence and its targets
    if with_torch and len(prepared.train_ids) < need:
        raise ConfigError(
            f"{data}: its training split has {len(prepared.train_ids):,} characters; PyTorch's "
            f"side reads {CHAR_RNN_STREAMS} streams of {CHAR_RNN_LENGTH} characters (and their "
            f"targets): at least {need:,}"
        )
    cores = tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else ()
    facts = {
        "path": str(prepared.corpus.path),
        "sha256": prepared.corpus.sha256,
        "characters": int(prepared.corpus.n_chars),
        "K": len(prepared.corpus.vocab),
        "train_characters": int(len(prepared.train_ids)),
        "val_characters": int(len(prepared.val_ids)),
    }
    concurrent = with_torch and not sequential and len(cores) >= 2
    return Plan(
        config_path=Path(config),
        cfg=cfg,
        given=given,
        data=Path(data),
        sha256=prepared.corpus.sha256,
        budget=budget,
        out=Path(out),
        torch=with_torch,
        cores=cores[:2] if concurrent else (),
        facts=facts,
    )


class _Clock:
    """The budget and the curve, through rnn.engine.train's two hooks (rnn.engine.train.Controls).

    should_stop is called before every run of updates (at most CHUNK_SECONDS apart): it
    says stop once the seconds of training pass the budget. The checkpoint callable is
    called every `checkpoint_every` updates with the state: when another `period` seconds
    of training have passed it validates the model there (`evaluate(state)`), timed, and
    that time is taken out of the seconds of training, as on the PyTorch side.

    Once training takes a time budget itself (time_budget), should_stop can give way to it
    if that budget, too, leaves validation out; the curve stays the harness's."""

    def __init__(self, budget: float, period: float, evaluate, report, per_update: int):
        self.budget, self.period, self.evaluate = budget, period, evaluate
        self.report, self.per_update = report, per_update
        self.t0 = None  # when training began (the first should_stop)
        self.evals = 0.0  # seconds spent validating since t0
        self.eval_total = 0.0  # ... and in all
        self.next_eval = period
        self.trained_to = 0.0  # seconds of training at the last hook
        self.state = None
        self.points: list = []
        self.last_report = time.perf_counter()

    def trained(self, now: float) -> float:
        return now - self.t0 - self.evals

    def should_stop(self) -> bool:
        now = time.perf_counter()
        if self.t0 is None:
            self.t0 = now
        self.trained_to = self.trained(now)
        if now - self.last_report >= 1.0 and self.state is not None:
            self.last_report = now
            s = self.state
            loss = float(s.loss[s.step - 1]) if s.step else math.nan
            self.report("progress", {"seconds": self.trained_to, "updates": s.step, "loss": loss})
        return self.trained_to >= self.budget

    def checkpoint(self, s) -> None:
        self.state = s
        self.trained_to = self.trained(time.perf_counter())
        if self.next_eval <= self.trained_to < self.budget:
            self.validate(s, self.trained_to)
            self.next_eval = (self.trained_to // self.period + 1) * self.period

    def validate(self, s, at: float) -> None:
        """A point of the curve: the model of state s, at `at` seconds of training."""
        t = time.perf_counter()
        bits = self.evaluate(s) / math.log(2)
        took = time.perf_counter() - t
        self.eval_total += took
        if self.t0 is not None:
            self.evals += took
        point = [at, int(s.step), int(s.step) * self.per_update, bits]
        self.points.append(point)
        self.report("point", {"point": point})


def _cold(batch_size: int) -> bool:
    """True when a kernel this side runs is not in numba's on-disk cache: validation's
    always, the update loop's for one stream (a guess for saying so, as
    rnn.engine.progress.cold_cache)."""
    from rnn.engine.progress import cold_cache

    return cold_cache("mean_loss_flat") or (batch_size == 1 and cold_cache())


def train_rnn(cfg, data, budget: float, report) -> dict:
    """The package's side: rnn.train with the configuration's TrainSpec on data
    (rnn.runs.driver.Data) until `budget` seconds of training or n_updates, whichever first,
    validated every budget / EVAL_POINTS seconds of training (sampling and the run's own
    validation off: a race keeps figures, not models)."""
    from rnn.engine import kernels
    from rnn.engine.model import Params
    from rnn.engine.spec import TrainSpec
    from rnn.engine.train import Controls, mean_loss, spec_schedule, train
    from rnn.runs.config import TRAINING, names

    off = {"sample_every": None, "eval_every": None}
    if "time_budget" in {f.name for f in dataclasses.fields(TrainSpec)}:
        off["time_budget"] = 0  # BUDGET stops it, with validation left out (should_stop)
    spec = cfg.train_spec().replace(**off)
    K = len(data.corpus.vocab)
    params = spec.init_params(K)
    if kernels.AVAILABLE and _cold(spec.batch_size):
        report("say", {"line": "compiling the kernels (first run only, about 30 s)"})

    def evaluate(s) -> float:  # from the state the first stream carries, as rnn.train does
        h0 = np.ascontiguousarray(s.h[:, :1])
        return mean_loss(Params.unflatten(s.theta, spec.m, K, spec.cell), data.val_ids, h0=h0)

    per_update = spec.batch_size * spec.seq_length
    clock = _Clock(budget, budget / EVAL_POINTS, evaluate, report, per_update)
    controls = Controls(
        checkpoint=clock.checkpoint,
        # how often the clock looks: about a tenth of a second of updates either way
        checkpoint_every=100 if spec.batch_size == 1 else 10,
        should_stop=clock.should_stop,
    )
    from rnn.engine.train import new_state

    wall0 = time.perf_counter()
    clock.validate(new_state(params, spec), 0.0)  # before the clock starts (and compiled)
    try:
        state = train(params, data.train_ids, spec, controls=controls).state
        stopped = "n_updates"
    except Interrupted:
        state, stopped = clock.state, "budget"
    trained = clock.trained_to
    clock.validate(state, trained)  # the last model, after the budget, as on the other side
    return {
        "points": clock.points,
        "updates": int(state.step),
        "characters": int(state.step) * per_update,
        "train_seconds": trained,
        "eval_seconds": clock.eval_total,
        "wall_seconds": time.perf_counter() - wall0,
        "epochs": state.step / spec_schedule(spec, len(data.train_ids)).per_epoch,
        "stopped": stopped,
        "configuration": {name: getattr(cfg, name) for name in names(TRAINING)},
        "description": spec.describe(),
    }


class SideLost(RuntimeError):
    """A side's process ended without its result (killed, out of memory): the race failed."""


def _worker(side: str, job: dict, out: multiprocessing.Queue, core: int | None) -> None:
    """One side, in a process of its own: one thread, on its core; every event to `out`."""

    def report(kind, payload):
        out.put((side, kind, payload))

    try:
        if core is not None:
            os.sched_setaffinity(0, {core})
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
        from rnn.runs import driver

        data = driver.prepare(job["cfg"], job["data"])
        if data.corpus.sha256 != job["sha256"]:
            raise RNNError(f"{job['data']}: the file changed since the race began")
        if side == "rnn":
            record = train_rnn(job["cfg"], data, job["budget"], report)
        else:
            import torch

            torch.set_num_threads(1)
            torch.set_num_interop_threads(1)
            from rnn.race.torch_side import train_for

            K = len(data.corpus.vocab)
            period = job["budget"] / EVAL_POINTS
            record = train_for(data.train_ids, data.val_ids, K, job["budget"], period, report)
        record["core"] = core
        report("result", record)
    except RNNError as err:
        report("error", {"line": str(err)})
    except Exception as err:  # an unexpected failure still reaches the terminal in one line
        report("error", {"line": f"{type(err).__name__}: {err}"})


@contextlib.contextmanager
def _ignoring_interrupts():
    """Children started inside ignore Ctrl-C (the setting survives exec): the race's own
    process stops them, so that one line, not a traceback from each, says what happened."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


class _Race:
    """The running sides, their latest figures, and the lines the terminal shows."""

    def __init__(self, p: Plan, log):
        self.plan, self.log = p, log
        self.ctx = multiprocessing.get_context("spawn")
        self.events = self.ctx.Queue()
        self.procs: dict = {}
        self.latest: dict = {}
        self.results: dict = {}
        self.last_line = time.perf_counter()

    def start(self, side: str, core: int | None) -> None:
        from rnn.sweep.execute import SINGLE_THREADED

        job = {"cfg": self.plan.cfg, "data": str(self.plan.data), "sha256": self.plan.sha256}
        job["budget"] = self.plan.budget
        os.environ.update(SINGLE_THREADED)  # read by the child's libraries as they load
        with _ignoring_interrupts():
            proc = self.ctx.Process(
                target=_worker, args=(side, job, self.events, core), name=f"race-{side}"
            )
            proc.start()
        self.procs[side] = proc
        self.latest[side] = {"seconds": 0.0, "updates": 0, "point": None}
        self.latest[side]["since"] = time.perf_counter()
        where = f" on core {core}" if core is not None else ""
        self.log(f"{NAMES[side]}: started{where}, {self.plan.budget:g} s of training")

    def wait(self, sides) -> None:
        """Until every side in `sides` has sent its result; RNNError if one fails."""
        while any(side not in self.results for side in sides):
            try:
                side, kind, payload = self.events.get(timeout=0.5)
            except queue.Empty:
                self.check_alive(sides)
            else:
                self.handle(side, kind, payload)
            if time.perf_counter() - self.last_line >= PROGRESS_EVERY:
                self.last_line = time.perf_counter()
                for side in sides:
                    if side not in self.results:
                        self.log(self.progress_line(side))
        for side in sides:
            self.procs[side].join(timeout=10)

    def check_alive(self, sides) -> None:
        """RNNError if a side's process ended without sending its result (killed, say)."""
        for side in sides:
            proc = self.procs[side]
            if side not in self.results and not proc.is_alive():
                raise SideLost(
                    f"{NAMES[side]}'s side stopped without a result (exit status {proc.exitcode})"
                )

    def handle(self, side: str, kind: str, payload: dict) -> None:
        if kind == "error":
            raise RNNError(f"{NAMES[side]}'s side failed: {payload['line']}")
        if kind == "say":
            self.log(f"{NAMES[side]}: {payload['line']}")
        elif kind == "progress":
            self.latest[side].update(payload)
        elif kind == "point":
            seconds, updates = payload["point"][:2]
            self.latest[side].update(seconds=seconds, updates=updates, point=payload["point"])
        elif kind == "result":
            self.results[side] = payload
            self.log(f"{NAMES[side]}: done, {payload['updates']:,} updates")

    def progress_line(self, side: str) -> str:
        now = self.latest[side]
        if now["point"] is None and not now["updates"]:
            return f"{NAMES[side]:>12}: starting ({time.perf_counter() - now['since']:.0f} s)"
        chars = now["updates"] * self.chars_per_update(side)
        rate = chars / now["seconds"] if now["seconds"] > 0 else 0.0
        line = (
            f"{NAMES[side]:>12}: {now['seconds']:6.1f} s of {self.plan.budget:g}, "
            f"{now['updates']:,} updates, {chars:,} characters ({rate:,.0f}/s)"
        )
        if now["point"] is not None:
            line += f"; validation {now['point'][3]:.3f} bits/char at {now['point'][0]:.0f} s"
        return line

    def chars_per_update(self, side: str) -> int:
        if side == "torch":
            return CHAR_RNN_STREAMS * CHAR_RNN_LENGTH
        return self.plan.cfg.batch_size * self.plan.cfg.seq_length

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs.values():
            proc.join(timeout=5)


def run(p: Plan, log=print) -> dict:
    """Run the race `p` describes; its record (what race.json holds). KeyboardInterrupt stops
    both sides at once."""
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_before = _load()
    race = _Race(p, log)
    try:
        if p.cores:
            log(f"both sides at once, each on a core of its own (cores {p.cores[0]}, {p.cores[1]})")
            race.start("rnn", p.cores[0])
            race.start("torch", p.cores[1])
            race.wait(("rnn", "torch"))
        else:
            if p.torch:
                log("one side after the other (fewer than two cores, or asked to)")
            race.start("rnn", None)
            race.wait(("rnn",))
            if p.torch:
                race.start("torch", None)
                race.wait(("torch",))
    finally:
        race.stop()
    return record(p, race.results, started, load_before)


def _load() -> list | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict:
    """What the figures were measured on."""
    from rnn.report.heading import versions

    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    found = {
        "cpu": model or "unknown",
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "numpy": np.__version__,
    }
    found |= versions()
    return found


def side_record(result: dict) -> dict:
    """A side's figures from what its process returned: the curve, best and last."""
    points = result["points"]
    bits = [pt[3] for pt in points]
    seconds = result["train_seconds"]
    return result | {
        "best_bits_per_char": min(bits),
        "last_bits_per_char": bits[-1],
        "chars_per_second": result["characters"] / seconds if seconds > 0 else math.nan,
    }


def record(p: Plan, results: dict, started: str, load_before) -> dict:
    from rnn.report.heading import git_commit

    sides = {side: side_record(results[side]) for side in SIDES if side in results}
    return {
        "budget": p.budget,
        "config_file": str(p.config_path),
        "given": p.given,
        "corpus": p.facts,
        "sides": sides,
        "torch_missing": None if p.torch else TORCH_MISSING,
        "concurrent": bool(p.cores),
        "eval_in_budget": False,
        "started": started,
        "load_average": {"before": load_before, "after": _load()},
        "machine": machine(),
        "commit": git_commit(ROOT),
    }
