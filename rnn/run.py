"""The one driver of a run: read and check the corpus, split it, reuse or continue a
checkpoint or start afresh, train with checkpoints, and say what happened.

`make report`, the report notebook, `python -m rnn train` and every sweep point call
`prepare` and then `run`. A run folder holds at most two checkpoints: `checkpoint.npz`, a
finished run, and `checkpoint.partial.npz`, one in progress (or interrupted). The rule for
using them is `plan`, and nowhere else:

- a checkpoint is this run's when every TRAINING parameter (rnn.config) and the corpus's
  SHA-256 agree with it; REPORT and RUN parameters do not matter;
- this run's finished checkpoint is reused as it is (nothing is trained);
- this run's partial checkpoint is continued from, or, when it has made all its updates
  (trained, but its report not yet written), reused;
- anything else trains afresh, into the partial file; a finished checkpoint of another run
  is replaced only when the new run is promoted (or, with replace_other=False, refused).
A run is promoted (partial -> finished) as soon as it finishes, except in a build, which
promotes it once the report of it is written, so that a report and the checkpoint beside it
are always of the same run.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint
from .analysis.gradflow import MAX_K, PER_STRETCH, SPACING, WARMUP
from .config import Config
from .data import Corpus, load_corpus, split_train_val
from .errors import CheckpointError, ConfigError, DataError, RNNError
from .model import init_params, param_shapes
from .order import Order
from .train import TrainResult, train

FINAL, PARTIAL = "checkpoint.npz", "checkpoint.partial.npz"
# Part VI's gradient flow reads stretches of this many characters of the training text.
ANALYSIS_MIN_TEXT = WARMUP + MAX_K + (PER_STRETCH - 1) * SPACING + 2


@dataclass(frozen=True)
class Data:
    """The corpus as a run reads it: the training split and the held-out suffix."""

    corpus: Corpus
    train_ids: np.ndarray
    val_ids: np.ndarray

    @property
    def vocab(self):
        return self.corpus.vocab


def prepare(cfg: Config, source) -> Data:
    """Read the corpus (a path, or a Corpus already read) and check it against every
    parameter, before anything is trained."""
    corpus = source if isinstance(source, Corpus) else load_corpus(source)
    train_ids, val_ids = split_train_val(corpus.ids, cfg.val_fraction)
    if len(train_ids) < cfg.seq_length + 1:
        raise DataError(
            f"{corpus.path}: its training split has {len(train_ids):,} characters; "
            f"seq_length={cfg.seq_length} needs at least {cfg.seq_length + 1}"
        )
    check_memory(cfg, len(corpus.vocab))
    if cfg.analysis and (len(train_ids) < ANALYSIS_MIN_TEXT or len(corpus.vocab) < 2):
        raise ConfigError(
            f"parameter analysis: part VI needs at least {ANALYSIS_MIN_TEXT} characters of "
            f"training text and two distinct characters ({corpus.path.name} has "
            f"{len(train_ids):,} and {len(corpus.vocab)}); turn it off with -p analysis False"
        )
    unknown = sorted(set(cfg.prime) - set(corpus.vocab.chars))
    if unknown:
        raise ConfigError(
            f"parameter prime: character {unknown[0]!r} does not occur in {corpus.path.name}"
        )
    return Data(corpus, train_ids, val_ids)


def check_memory(cfg: Config, K: int) -> None:
    """Refuse a run that cannot fit in memory before it starts, rather than fail inside."""
    n_params = sum(int(np.prod(s)) for s in param_shapes(cfg.m, K, cfg.cell).values())
    # parameters, AdaGrad's sums, gradients, the best models and their starting copies;
    # two float64 histories (loss and smooth loss) of n_updates each
    need = 8 * (6 * n_params + 2 * cfg.n_updates)
    free = _available_memory()
    if free is not None and need > free:
        raise ConfigError(
            f"parameters m={cfg.m:,} and n_updates={cfg.n_updates:,} need about "
            f"{need / 1e9:,.1f} GB of memory; this machine has {free / 1e9:,.1f} GB free"
        )


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Plan:
    action: str  # "train" (afresh), "continue" (from the partial checkpoint), "reuse" (finished)
    path: Path | None  # the checkpoint continued from or reused
    other: list[str] = field(
        default_factory=list
    )  # how a finished checkpoint of another run differs


def _meta(path: Path) -> dict | None:
    try:
        return checkpoint.load(path)[1] if path.exists() else None
    except CheckpointError:
        return None  # unreadable: as good as absent, and replaced when this run finishes


def plan(run_dir: Path, cfg: Config, corpus_sha256: str, fresh: bool = False) -> Plan:
    """What a run of `cfg` on that corpus does with the checkpoints in run_dir. fresh: do
    not reuse the finished run (a partial one of this run, the interrupted retraining, is
    still continued)."""
    key = cfg.training_key()
    final, partial = _meta(run_dir / FINAL), _meta(run_dir / PARTIAL)
    other = checkpoint.differences(final, key, corpus_sha256) if final else []
    ours = partial and not checkpoint.differences(partial, key, corpus_sha256)
    if ours and partial["step"] >= cfg.n_updates:  # trained, its report not yet written:
        return Plan("reuse", run_dir / PARTIAL, other)  # newer than any finished run
    if final and not other and not fresh:
        return Plan("reuse", run_dir / FINAL)
    if ours:
        return Plan("continue", run_dir / PARTIAL, other)
    return Plan("train", None, other)


@dataclass
class Run:
    """A finished run: what it was given, what it learned, and how this call came by it."""

    cfg: Config
    data: Data
    result: TrainResult
    sessions: list[dict]  # every training session of the run, oldest first
    provenance: str  # one sentence: trained here, continued, or rendered from an earlier run
    checkpoint: Path

    @property
    def finished_at(self) -> str:
        return self.sessions[-1]["finished"] if self.sessions else ""


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def run(
    cfg: Config,
    data: Data,
    run_dir,
    *,
    build_id: str = "",
    fresh: bool = False,
    replace_other: bool = True,
    progress: bool = False,
    should_stop=None,
    backend: str = "auto",
    promote: bool = True,
) -> Run:
    """Train `cfg` on `data` in run_dir, or reuse or continue what is there (see `plan`).
    promote: make the trained run the folder's finished one at once (a build does it later,
    with its report)."""
    run_dir = Path(run_dir)
    final, partial = run_dir / FINAL, run_dir / PARTIAL
    p = plan(run_dir, cfg, data.corpus.sha256, fresh)
    if p.action == "train" and p.other and not replace_other:
        raise RNNError(
            f"{final}: holds a finished run of other parameters ({'; '.join(p.other[:3])}); "
            f"use --force to replace it, or another output folder"
        )
    state, sessions = None, []
    if p.path is not None:
        state, meta = checkpoint.load(p.path)
        sessions = meta["sessions"]
    params0 = init_params(len(data.vocab), m=cfg.m, sigma=cfg.sigma, seed=cfg.seed, cell=cfg.cell)
    kwargs = dict(
        n_updates=cfg.n_updates,
        seq_length=cfg.seq_length,
        eta=cfg.eta,
        sample_every=cfg.sample_every,
        sample_length=cfg.sample_length,
        seed=cfg.seed,
        val_ids=data.val_ids if len(data.val_ids) > 1 else None,
        eval_every=cfg.eval_every,
        resume=state,
        backend=backend,
        order=Order.from_config(cfg),
    )
    if p.action == "reuse":
        result = train(params0, data.train_ids, **kwargs)  # nothing left to train
        where = promote_run(run_dir) if promote else p.path
        return Run(cfg, data, result, sessions, _provenance(sessions, build_id, None), where)

    session = {"started": _now(), "from": state.step if state else 0, "build_id": build_id}
    seconds_before = state.seconds if state else 0.0

    def save(s) -> None:
        session.update(finished=_now(), to=s.step, seconds=s.seconds - seconds_before)
        checkpoint.save(
            partial,
            s,
            vocab_chars=data.vocab.chars,
            config=cfg.to_dict(),
            corpus_sha256=data.corpus.sha256,
            sessions=sessions + [session],
        )

    if should_stop is not None:
        kwargs["should_stop"] = should_stop
    result = train(
        params0,
        data.train_ids,
        progress=progress,
        checkpoint=save,
        checkpoint_every=cfg.checkpoint_every,
        **kwargs,
    )
    where = promote_run(run_dir) if promote else partial
    sessions = sessions + [session]
    return Run(cfg, data, result, sessions, _provenance(sessions, build_id, session), where)


def promote_run(run_dir: Path) -> Path:
    """The partial checkpoint, finished, becomes run_dir's finished run (replacing whatever
    finished run was there); returns the finished checkpoint's path."""
    partial, final = Path(run_dir) / PARTIAL, Path(run_dir) / FINAL
    if partial.exists():
        os.replace(partial, final)
    return final


def _provenance(sessions: list[dict], build_id: str, this_session: dict | None) -> str:
    """One sentence for the report's header: how this call came by the trained model."""
    if not sessions:
        return "no updates made"
    last = sessions[-1]
    total = sum(s["seconds"] for s in sessions)
    if this_session is not None or (build_id and last.get("build_id") == build_id):
        if last["from"] == 0:
            return f"trained in this build ({last['seconds']:.1f} s)"
        return (
            f"continued from update {last['from']:,} of an interrupted run "
            f"({last['seconds']:.1f} s in this build, {total:.1f} s in all)"
        )
    when = last["finished"].replace("T", " ")[:16]
    return f"rendered from the finished run of {when} (trained in {total:.1f} s)"


@contextlib.contextmanager
def stop_requests():
    """Ctrl-C and SIGTERM ask training to stop at its next check (it then saves a
    checkpoint and raises rnn.errors.Interrupted) rather than kill it in mid-update.
    Yields the `should_stop` callable for rnn.train; outside the main thread, a no-op."""
    requests: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {
        sig: signal.signal(sig, lambda signum, frame: requests.append(signum)) for sig in signals
    }
    try:
        yield lambda: bool(requests)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def terminate_like_interrupt() -> None:
    """SIGTERM outside training acts as Ctrl-C does (KeyboardInterrupt), so that a command
    stopped by either cleans up and says so in one line."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def resolve_data_path(path: str) -> Path:
    """The notebook's data_path, which may run from any folder: a relative path that does
    not exist from here is an error that says how to run it."""
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        raise DataError(
            f"{path}: no such file from {Path.cwd()}; run the notebook from notebooks/ "
            f"(papermill --cwd notebooks) or give data_path as an absolute path"
        )
    return p
