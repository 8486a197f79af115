"""The bonus report: training orders, batches, sampling measures and speed, built like the report.

    python -m rnn bonus --data data/shakespeare.txt --out reports/bonus -p order_updates 60000

The build trains, the notebook reads. The build checks every parameter and the corpus, holds
OUT, and trains each variant into its own run folder OUT/runs/<name> through the package's
driver (rnn.runs.driver: a finished variant of the same parameters is reused, an interrupted one
continued); then papermill executes notebooks/bonus.ipynb, which only loads the finished runs
(`load_variant`) and shows them, and nbconvert renders OUT/bonus.html with the report's
template. Part 1 trains the three orders at the same number of updates; part 2 one batch size
per run, each reading the same number of sequences (updates = batch_budget / B).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from rnn.engine.model import Params
from rnn.engine.order import ORDERS
from rnn.errors import BuildError, CheckpointError, RNNError
from rnn.runs import checkpoint, driver, lock
from rnn.runs.config import Config, check_float, check_int, check_str
from rnn.runs.data import load_corpus

LN2 = math.log(2.0)
NOTEBOOK_NAME = "bonus.ipynb"
PRODUCTS = ("bonus.ipynb", "bonus.html")  # the HTML last, as the seal
SPEED = "speed.json"  # part 4's measurements, made by the build, read by the notebook


@dataclass(frozen=True)
class BonusConfig:
    """The bonus report's parameters; the notebook's parameters cell is generated from these
    defaults (`parameters_source`). At these defaults `make bonus` rendered on the default
    corpus in 9 min 37 s on the project's shared 2-core machine, the kernels' first compile
    included (README); every budget scales it up."""

    assignment: str = "adagrad"  # the edition: adagrad (earlier) or adam (current); sets the rest
    cell: str = "vanilla"  # recurrent cell of every variant: vanilla, lstm or gru
    m: int = 100  # hidden units
    eta: float | None = None  # learning rate (None: the edition's, 0.1 or 0.001)
    seq_length: int = 25  # characters per sequence
    seed: int = 0  # weights, orders and samples
    val_fraction: float = 0.05  # held-out suffix of the corpus, the same for every variant
    order_updates: int = 50_000  # part 1: updates of each order
    n_chunks: int = 20  # part 1: chunks of the training text for order chunks
    batch_sizes: str = "1, 4, 16, 64"  # part 2: batch sizes, comma-separated
    batch_order: str = "sequential"  # part 2: the order the B streams read
    batch_budget: int = 96_000  # part 2: sequences each batch size reads, in budget / B updates
    n_evals: int = 20  # validation passes per run (the curves' points)
    temperatures: str = "0.5, 1.0, 1.5"  # part 3: low, medium, high temperature
    top_ps: str = "0.5, 0.9, 0.99"  # part 3: low, medium, high nucleus mass
    measure_length: int = 2000  # part 3: characters per sample
    ngram_order: int = 5  # part 3: order of the Kneser-Ney model the samples are scored by
    speed_seconds: float = 2.0  # part 4: seconds of each speed measurement (0: no part 4)
    title: str = ""  # the bonus report's title (empty: the default)

    def __post_init__(self):
        Config(**self._base())  # the shared parameters, checked as the report checks them
        check_int("order_updates", self.order_updates, 1)
        check_int("n_chunks", self.n_chunks, 1)
        check_str("batch_order", self.batch_order, ORDERS)
        check_int("batch_budget", self.batch_budget, 1)
        check_int("n_evals", self.n_evals, 1, 1000)
        check_int("measure_length", self.measure_length, 10, 1_000_000)
        check_int("ngram_order", self.ngram_order, 1, 10)
        check_float("speed_seconds", self.speed_seconds, low=0.0, high=60.0)
        sizes = self.batch_size_list()
        if self.batch_order == "chunks" and self.n_chunks < max(sizes):
            raise RNNError(
                f"parameter n_chunks must be >= the largest batch size ({max(sizes)}) "
                f"for batch_order chunks, got {self.n_chunks}"
            )
        for name in ("temperatures", "top_ps"):
            values = _numbers(name, getattr(self, name))
            if len(values) != 3:
                raise RNNError(f"parameter {name} must be three numbers (low, medium, high)")
        for t in _numbers("temperatures", self.temperatures):
            check_float("temperatures", t, low=0.0, low_open=True)
        for p in _numbers("top_ps", self.top_ps):
            check_float("top_ps", p, low=0.0, high=1.0, low_open=True)

    def _base(self) -> dict:
        keys = ("assignment", "cell", "m", "eta", "seq_length", "seed", "val_fraction")
        return {k: getattr(self, k) for k in keys}

    def edition(self) -> str:
        """The preset and what it set, as the report's run table says it."""
        return Config(**self._base()).preset_description()

    def batch_size_list(self) -> list[int]:
        values = _numbers("batch_sizes", self.batch_sizes)
        whole = all(math.isfinite(v) and v == int(v) for v in values)  # no 1.5, nan or inf
        sizes = [int(v) for v in values] if whole else []
        # at most the budget, and at most what the report's batch_size allows
        top = min(self.batch_budget, _config_field("batch_size").metadata["rule"]["maximum"])
        if not sizes or any(b < 1 or b > top for b in sizes):
            raise RNNError(
                f"parameter batch_sizes must be integers from 1 to {top:,} (batch_budget and "
                f"batch_size's limit), got {self.batch_sizes!r}"
            )
        return sorted(set(sizes))

    def variants(self) -> dict[str, Config]:
        """Every run the bonus report reads, by folder name: part 1's orders, part 2's sizes."""
        out = {}
        for order in ORDERS:
            out[f"order-{order}"] = self._config(self.order_updates, order, 1)
        for B in self.batch_size_list():
            out[f"batch-{B}"] = self._config(self.batch_budget // B, self.batch_order, B)
        return out

    def _config(self, n_updates: int, order: str, B: int) -> Config:
        return Config(
            **self._base(),
            n_updates=n_updates,
            order=order,
            n_chunks=self.n_chunks,
            batch_size=B,
            eval_every=max(1, n_updates // self.n_evals),
            sample_every=max(1, n_updates),  # one sample, before the first update
            sample_length=0,
            checkpoint_every=max(1, n_updates // 4),
            analysis=False,
        )


def _config_field(name: str):
    return next(f for f in fields(Config) if f.name == name)


def _numbers(name: str, text) -> list[float]:
    try:
        return [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise RNNError(
            f"parameter {name} must be numbers separated by commas, got {text!r}"
        ) from None


def bonus_config(values: dict) -> BonusConfig:
    """BonusConfig from a mapping; an unknown name is an error naming it."""
    known = [f.name for f in fields(BonusConfig)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise RNNError(f"unknown parameter {unknown[0]!r}; known: {', '.join(known)}")
    return BonusConfig(**values)


def known_parameters() -> set[str]:
    """The bonus notebook's parameters: BonusConfig's, and where the runs and corpus are."""
    return {f.name for f in fields(BonusConfig)} | {"data_path", "out_dir"}


def parameters_source() -> str:
    """The bonus notebook's `parameters` cell, from BonusConfig's defaults and comments."""
    import inspect

    comments = {}
    for line in inspect.getsource(BonusConfig).splitlines():
        name, _, rest = line.strip().partition(":")
        if "#" in rest and name.isidentifier():
            comments[name] = rest.split("#", 1)[1].strip()
    lines = [
        "# Parameters: papermill replaces this cell. "
        "Generated from rnn/report/bonus.py's BonusConfig.",
        'data_path: str = "../data/shakespeare.txt"  # UTF-8 text the variants trained on',
        'out_dir: str = "../reports/bonus"  # folder holding runs/<variant>',
    ]
    for f in fields(BonusConfig):
        value = f.default
        literal = f'"{value}"' if isinstance(value, str) else repr(value)
        kind = str(f.type).removesuffix(" | None")  # papermill reads one plain type name
        lines.append(f"{f.name}: {kind} = {literal}  # {comments[f.name]}")
    return "\n".join(lines)


# --- what the notebook reads ----------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A finished run of the bonus build, as read from its folder (nothing is trained)."""

    name: str
    cfg: Config
    val_steps: np.ndarray  # updates made before each validation pass
    val_bits: np.ndarray  # validation bits per character there
    seconds: float  # training time, validation passes included
    best_params: Params
    best_h: np.ndarray  # (S, 1)
    corpus_sha256: str

    @property
    def n_updates(self) -> int:
        return self.cfg.n_updates

    @property
    def updates_per_sec(self) -> float:
        return self.n_updates / self.seconds if self.seconds > 0 else math.nan

    @property
    def chars_per_sec(self) -> float:
        return self.updates_per_sec * self.cfg.batch_size * self.cfg.seq_length

    @property
    def val_seconds(self) -> np.ndarray:
        """Seconds into training of each validation pass: its update count times the run's
        mean time per update (every update does the same work)."""
        return self.val_steps * (self.seconds / max(self.n_updates, 1))

    @property
    def final_bits(self) -> float:
        return float(self.val_bits[-1]) if len(self.val_bits) else math.nan


def load_variant(folder, name: str | None = None) -> Variant:
    """The finished run in `folder` (its checkpoint.npz); RNNError naming the command that
    makes it when there is none."""
    folder = Path(folder)
    path = folder / driver.FINAL
    if not path.exists():
        raise RNNError(f"{folder}: no finished run; 'make bonus' trains it")
    try:
        state, meta = checkpoint.load(path)
    except CheckpointError as err:
        raise RNNError(f"{err}; 'make bonus' trains it again") from None
    cfg = Config.from_dict(meta["config"])
    K = len(meta["vocab"])
    if state.best_val_theta is not None:
        theta, h = state.best_val_theta, state.best_val_h
    else:
        theta, h = state.best_smooth_theta, state.best_smooth_h
    return Variant(
        name=name or folder.name,
        cfg=cfg,
        val_steps=np.asarray(state.val_steps, dtype=np.int64),
        val_bits=np.asarray(state.val_loss) / LN2,
        seconds=state.seconds,
        best_params=Params.unflatten(theta, cfg.m, K, cfg.cell),
        best_h=np.reshape(h, (-1, 1)),
        corpus_sha256=meta.get("corpus_sha256", ""),
    )


def load_variants(out_dir, bc: BonusConfig) -> dict[str, Variant]:
    """The finished runs of bc's variants; RNNError, naming what differs, where a folder
    holds a run of other training parameters (the notebook shows only the runs it names)."""
    runs = Path(out_dir) / "runs"
    found = {}
    for name, cfg in bc.variants().items():
        v = found[name] = load_variant(runs / name, name)
        want, got = cfg.training_key(), v.cfg.training_key()
        differs = [
            f"{k} = {got.get(k)!r} there, {want[k]!r} here" for k in want if got.get(k) != want[k]
        ]
        if differs:
            raise RNNError(
                f"{runs / name}: a run of other parameters ({'; '.join(differs[:3])}); "
                f"'make bonus' with these parameters trains it"
            )
    return found


def bits_at(v: Variant, x: float, by: str = "updates") -> float:
    """Validation bits per character of v at `x` updates (or seconds), read off its curve
    (linear between passes; NaN past its end)."""
    xs = v.val_steps if by == "updates" else v.val_seconds
    if len(xs) == 0 or x > xs[-1] + 1e-9:
        return math.nan
    return float(np.interp(x, xs, v.val_bits))


def faster(variants: dict[str, Variant], by: str = "updates") -> tuple[str, float, dict]:
    """Which variant converges faster in the sense `by` (updates or seconds): the one lowest
    in validation bits per character at the largest x every variant reached. Returns (name,
    that x, {name: bits there})."""
    ends = [
        (v.val_steps if by == "updates" else v.val_seconds)[-1]
        for v in variants.values()
        if len(v.val_steps)
    ]
    x = float(min(ends))
    at = {name: bits_at(v, x, by) for name, v in variants.items()}
    return min(at, key=at.get), x, at


# --- what the notebook shows ----------------------------------------------------------------


def curves_figure(variants: dict[str, Variant], by: str = "updates", log: bool = False):
    """Validation bits per character of each variant against updates or seconds; log: on a
    logarithmic axis (the passes after the start), for runs of very different lengths."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state
    from matplotlib.ticker import StrMethodFormatter

    fig = Figure(figsize=(7.2, 3.0), dpi=150)
    ax = fig.subplots()
    for name, v in variants.items():
        x = v.val_steps if by == "updates" else v.val_seconds
        keep = x > 0 if log else slice(None)
        ax.plot(x[keep], v.val_bits[keep], "o-", ms=3, lw=1.2, label=name)
    if log:
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if by == "updates" else "{x:,.1f}"))
    unit = "updates" if by == "updates" else "seconds of training"
    ax.set_xlabel(f"{unit} (logarithmic)" if log else unit)
    ax.set_ylabel("validation bits per character")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig


def runs_table(variants: dict[str, Variant]) -> tuple[list, list]:
    """(header, rows): each variant's budget, speed and validation bits per character."""
    header = [
        "variant",
        "B",
        "updates",
        "sequences",
        "seconds",
        "updates/s",
        "characters/s",
        "final bits/char",
        "best bits/char",
    ]
    rows = [
        [
            name,
            v.cfg.batch_size,
            f"{v.n_updates:,}",
            f"{v.n_updates * v.cfg.batch_size:,}",
            f"{v.seconds:.1f}",
            f"{v.updates_per_sec:,.0f}",
            f"{v.chars_per_sec:,.0f}",
            f"{v.final_bits:.3f}",
            f"{np.min(v.val_bits):.3f}" if len(v.val_bits) else "",
        ]
        for name, v in variants.items()
    ]
    return header, rows


def faster_sentence(variants: dict[str, Variant], by: str) -> str:
    """Which variant converges faster per update or per second, as one computed sentence."""
    best, x, at = faster(variants, by)
    where = f"{x:,.0f} updates" if by == "updates" else f"{x:,.1f} seconds of training"
    others = ", ".join(f"{name} {bits:.3f}" for name, bits in at.items() if name != best)
    return (
        f"Per {'update' if by == 'updates' else 'second'}, {best} converges fastest: at "
        f"{where}, the furthest every run reached, it reads the validation text at "
        f"{at[best]:.3f} bits per character ({others})."
    )


# --- the build ------------------------------------------------------------------------------


def notebook_path() -> Path:
    from rnn.runs.paths import notebook_path as find

    return find(NOTEBOOK_NAME)


def measure_speed(corpus, seconds: float, path: Path, log) -> None:
    """Part 4: updates per second of each implementation and cell at m = 100, one thread,
    measured here (rnn.report.speed.table), written to `path` as JSON for the notebook."""
    from rnn.report import speed
    from rnn.runs.atomic import write_atomic

    log(f"part 4: timing each implementation for {seconds:g} s a cell (one thread)")

    def said(row):
        rate = row["updates_per_sec"]
        log(
            f"  {row['cell']} {row['label']}: "
            + (f"{rate:,.0f} updates/s" if rate else row["note"])
        )

    work = speed.Workload(seconds=seconds)
    rows = speed.table(corpus.ids, len(corpus.vocab), work=work, progress=said)
    write_atomic(path, json.dumps(rows, indent=1) + "\n")


def build(data: Path, out: Path, params: dict, *, progress: bool = True, log=print) -> Path:
    """Train (or reuse) every variant in out/runs and render out/bonus.html; returns its path."""
    from rnn.report.build import describe_failure
    from rnn.report.execution import execute, render

    data, out = Path(data).resolve(), Path(out).resolve()
    bc = bonus_config(params)
    variants = bc.variants()
    corpus = load_corpus(data)  # read once, checked against every variant before training
    prepared = {name: driver.prepare(cfg, corpus) for name, cfg in variants.items()}
    with lock.hold(out, f"make bonus into {out}"):
        with driver.stop_requests() as should_stop:
            for i, (name, cfg) in enumerate(variants.items(), 1):
                log(f"variant {i} of {len(variants)}: {name} ({cfg.n_updates:,} updates)")
                trained = driver.run(
                    cfg,
                    prepared[name],
                    out / "runs" / name,
                    controls=driver.Controls(progress=progress, should_stop=should_stop),
                )
                log(f"  {name}: {trained.provenance}")
        if bc.speed_seconds:
            measure_speed(corpus, bc.speed_seconds, out / SPEED, log)
        else:
            (out / SPEED).unlink(missing_ok=True)
        log("rendering the bonus report")
        staging = Path(tempfile.mkdtemp(dir=out, prefix=lock.transient_prefix("staging")))
        try:
            executed = staging / "bonus.ipynb"
            values = asdict(bc) | {"data_path": str(data), "out_dir": str(out)}
            try:
                execute(notebook_path(), executed, values, cwd=staging)
            except Exception as err:
                failed = out / "bonus.failed.ipynb"
                if executed.exists():
                    os.replace(executed, failed)
                message = describe_failure(err).replace("report.ipynb", NOTEBOOK_NAME)
                raise BuildError(message, failed if failed.exists() else None) from None
            render(executed, staging / "bonus.html")
            for name in PRODUCTS:  # each rename is atomic
                os.replace(staging / name, out / name)
            if (out / "bonus.pdf").exists():
                (out / "bonus.pdf").unlink()
                log("removed the previous bonus.pdf; make pdf prints this one")
            (out / "bonus.failed.ipynb").unlink(missing_ok=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out / "bonus.html"
