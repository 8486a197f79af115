"""The one driver of a run: read and check the corpus, split it, reuse or continue a
checkpoint or start afresh, train with checkpoints, and say what happened; and the loader of
a finished run, `Run.load`, which trains nothing.

`make report`, `python -m rnn train` and every sweep point call `prepare` and then `run`;
the report notebook only reads the run they made (`read_run`). A run folder holds at most
two checkpoints: `checkpoint.npz`, a finished run, and `checkpoint.partial.npz`, one in
progress (or interrupted). The rule for using them is `plan`, and nowhere else:

- a checkpoint is this run's when every TRAINING parameter (rnn.runs.config) and the corpus's
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
import math
import os
import signal
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rnn.engine.model import param_shapes
from rnn.engine.optim import state_names
from rnn.engine.train import Controls, TrainResult, finished, spec_schedule, train
from rnn.engine.train import result_of as result_of_state
from rnn.errors import CheckpointError, ConfigError, DataError, RNNError, TrainingDiverged
from rnn.report.analysis.gradflow import MAX_K, PER_STRETCH, SPACING, WARMUP
from rnn.runs import checkpoint, guard, lock
from rnn.runs.config import TRAINING, Config, names
from rnn.runs.data import Corpus, load_corpus, split_train_val

FINAL, PARTIAL = "checkpoint.npz", "checkpoint.partial.npz"
# The corpus the notebook trains on when asked to and given none (from notebooks/).
DEFAULT_CORPUS = "../data/shakespeare.txt"
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
    n_params = sum(int(np.prod(s)) for s in param_shapes(cfg.m, K, cfg.cell, cfg.layers).values())
    # parameters, the optimizer's state (one or two arrays), gradients, the best models
    # and their starting copies; two float64 histories (loss and smooth loss) of n_updates
    n_opt = len([name for name in state_names(cfg.optimizer) if name != "t"])
    need = 8 * ((5 + n_opt) * n_params + 2 * cfg.n_updates)
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


def plan(
    run_dir: Path, cfg: Config, corpus_sha256: str, fresh: bool = False, extend: bool = False
) -> Plan:
    """What a run of `cfg` on that corpus does with the checkpoints in run_dir. fresh: do
    not reuse the finished run (a partial one of this run, the interrupted retraining, is
    still continued). extend: continue a finished run that `extends` allows."""
    key = cfg.training_key()
    final, partial = _meta(run_dir / FINAL), _meta(run_dir / PARTIAL)
    other = checkpoint.differences(final, key, corpus_sha256) if final else []
    ours = partial and not checkpoint.differences(partial, key, corpus_sha256)
    done = partial and partial.get("budget_stop") == partial["step"]  # its time budget spent
    if ours and (partial["step"] >= cfg.n_updates or done):  # trained, its report not yet written:
        return Plan("reuse", run_dir / PARTIAL, other)  # newer than any finished run
    if final and not other and not fresh:
        return Plan("reuse", run_dir / FINAL)
    if ours:
        return Plan("continue", run_dir / PARTIAL, other)
    if extend and final and not fresh and extends(final, cfg, corpus_sha256):
        return Plan("continue", run_dir / FINAL, other)
    return Plan("train", None, other)


def extends(meta: dict, cfg: Config, corpus_sha256: str) -> bool:
    """Whether `cfg` continues the finished run of checkpoint metadata `meta` into exactly
    the run a single longer one would have been: the same in everything but n_updates, of
    which it has more, and the finished run's closing validation (after its last update) is
    one the longer run makes too (no validation split, or n_updates a multiple of
    eval_every); else that extra validation could have chosen another best model. A run that
    anneals (lr_anneal) never extends: its rates follow from its own n_updates."""
    n = meta["config"]["n_updates"]
    same = not checkpoint.differences(meta, cfg.training_key() | {"n_updates": n}, corpus_sha256)
    exact = (cfg.val_fraction == 0 or n % cfg.eval_every == 0) and cfg.lr_anneal == 0
    return same and exact and meta["step"] == n < cfg.n_updates


@dataclass(frozen=True)
class Run:
    """A finished run: what it was given, what it learned, and how this call came by it.

    cfg: its parameters; data: its corpus (path, SHA-256, vocabulary) and the two splits;
    result: the curves (loss, smooth loss, validation), the samples, the final and the best
    parameters and the state the best model ran from; sessions: every training session,
    oldest first, each with the corpus file it read; checkpoint: the file it was read from."""

    cfg: Config
    data: Data
    result: TrainResult
    sessions: list[dict]  # every training session of the run, oldest first
    provenance: str  # one sentence: trained here, continued, or rendered from an earlier run
    checkpoint: Path

    @property
    def finished_at(self) -> str:
        return self.sessions[-1]["finished"] if self.sessions else ""

    @classmethod
    def load(cls, path, *, corpus=None, build_id: str = "") -> Run:
        """The finished run in `path`: a run folder (its checkpoint.npz) or a checkpoint
        file. Nothing is trained. corpus: the text it was trained on (a path or a Corpus;
        default: the file its last session read), re-read and checked against the run's
        SHA-256. build_id: the build rendering it (the provenance says whether that build
        trained it)."""
        path = Path(path)
        file = path / FINAL if path.is_dir() else path
        state, meta = checkpoint.load(file)
        cfg, sessions = Config.from_dict(meta["config"]), meta["sessions"]
        if not finished(state, cfg.n_updates):
            raise RNNError(
                f"{file}: an unfinished run, at update {state.step:,} of {cfg.n_updates:,}; "
                f"run the command that made it again to continue it"
            )
        data = prepare(cfg, _recorded_corpus(file, meta, corpus))
        return cls(
            cfg,
            data,
            result_of(state, cfg, data),
            sessions,
            _provenance(sessions, build_id, None),
            file,
        )


def _recorded_corpus(file: Path, meta: dict, corpus) -> Corpus:
    """The run's corpus, read (from `corpus`, else the path its last session recorded) and
    checked to be the very text it was trained on."""
    if corpus is None:
        recorded = [s["corpus"] for s in meta["sessions"] if s.get("corpus")]
        if not recorded:
            raise DataError(f"{file}: records no corpus file; give the text it was trained on")
        corpus = recorded[-1]
    corpus = corpus if isinstance(corpus, Corpus) else load_corpus(corpus)
    if corpus.sha256 != meta.get("corpus_sha256"):
        raise DataError(
            f"{corpus.path}: not the text {file} was trained on (SHA-256 "
            f"{corpus.sha256[:16]}, the run's {str(meta.get('corpus_sha256'))[:16]})"
        )
    return corpus


def result_of(state, cfg: Config, data: Data) -> TrainResult:
    """What training returned, from the state a checkpoint holds (nothing is trained)."""
    per_epoch = spec_schedule(cfg.train_spec(), len(data.train_ids)).per_epoch
    return result_of_state(state, cfg.cell, cfg.m, len(data.vocab), per_epoch)


def read_run(
    cfg: Config,
    run_dir,
    *,
    checkpoint_file: str = "",
    data_path: str = "",
    build_id: str = "",
    train_if_missing: bool = False,
) -> Run:
    """What the report notebook shows: the finished run in run_dir (or its checkpoint_file),
    which must be a run of cfg's training parameters, with cfg's report parameters. Without
    one, one line says which command makes it; train_if_missing trains it here instead,
    visibly (on data_path, the default corpus when empty)."""
    run_dir = resolve_path(run_dir, "run_dir")
    if data_path:
        data_path = resolve_path(data_path, "data_path")
    file = run_dir / (checkpoint_file or FINAL)
    if not file.exists() and not train_if_missing:
        raise RNNError(
            f"no finished run in {run_dir}: `make report` makes one (or `python -m rnn train "
            f"--data ... --out {run_dir}`); or set train_if_missing = True to train it here"
        )
    if not file.exists():
        data = prepare(cfg, resolve_path(data_path or DEFAULT_CORPUS, "data_path"))
        # The notebook holds run_dir already (rnn.runs.guard); anything else takes it here.
        holding = (
            contextlib.nullcontext()
            if guard.holds(run_dir)
            else lock.hold(run_dir, f"the report notebook training into {run_dir}")
        )
        with holding:
            with stop_requests() as should_stop:
                trained = run(
                    cfg,
                    data,
                    run_dir,
                    policy=Policy(replace_other=False),
                    controls=Controls(progress=True, should_stop=should_stop),
                )
        return trained
    found = Run.load(file, corpus=data_path or None, build_id=build_id)
    differs = [
        f"{name} = {getattr(found.cfg, name)!r} there, {getattr(cfg, name)!r} here"
        for name in names(TRAINING)
        if getattr(found.cfg, name) != getattr(cfg, name)
    ]
    if differs:
        raise RNNError(
            f"{file}: a run of other parameters ({'; '.join(differs[:3])}); make this one "
            f"with `make report` and these parameters, or name another run_dir"
        )
    return replace(found, cfg=cfg, data=prepare(cfg, found.data.corpus))


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class Policy:
    """What `run` may do with the checkpoints it finds in a run folder.

    fresh: do not reuse the finished run (see `plan`); extend: continue a finished shorter
    run (`extends`); replace_other: train over a finished run of other parameters (else
    refuse); promote: make the trained run the folder's finished one at once (a build does
    it later, with its report)."""

    fresh: bool = False
    extend: bool = False
    replace_other: bool = True
    promote: bool = True


def run(
    cfg: Config,
    data: Data,
    run_dir,
    *,
    build_id: str = "",
    policy: Policy = Policy(),
    controls: Controls | None = None,
) -> Run:
    """Train `cfg` on `data` in run_dir, or reuse or continue what is there (see `plan` and
    Policy). controls: backend, progress and stop requests (rnn.engine.train.Controls; the
    checkpoints are the driver's)."""
    run_dir = Path(run_dir)
    final, partial = run_dir / FINAL, run_dir / PARTIAL
    check_run_files(run_dir)
    promote = policy.promote
    p = plan(run_dir, cfg, data.corpus.sha256, policy.fresh, policy.extend)
    if p.action == "train" and p.other and not policy.replace_other:
        raise RNNError(
            f"{final}: holds a finished run of other parameters ({'; '.join(p.other[:3])}); "
            f"use --force to replace it, or another output folder"
        )
    state, sessions = None, []
    if p.path is not None:
        state, meta = checkpoint.load(p.path)
        sessions = meta["sessions"]
    spec = cfg.train_spec()
    params0 = spec.init_params(len(data.vocab))
    val_ids = data.val_ids if len(data.val_ids) > 1 else None
    if p.action == "reuse":  # nothing left to train: read what the checkpoint holds
        where = promote_run(run_dir) if promote else p.path
        result = result_of(state, cfg, data)
        return Run(cfg, data, result, sessions, _provenance(sessions, build_id, None), where)

    session = {
        "started": _now(),
        "from": state.step if state else 0,
        "build_id": build_id,
        "corpus": str(Path(data.corpus.path).resolve()),  # where Run.load finds the text
    }
    seconds_before = state.seconds if state else 0.0

    def save(s) -> None:
        session.update(finished=_now(), to=s.step, seconds=s.seconds - seconds_before)
        try:
            checkpoint.save(
                partial,
                s,
                vocab_chars=data.vocab.chars,
                config=cfg.to_dict(),  # resolved: what the run was trained with
                corpus_sha256=data.corpus.sha256,
                sessions=sessions + [session],
            )
        except OSError as err:  # a full disk, a folder in the checkpoint's place...
            raise RNNError(
                f"{partial}: could not save the checkpoint of update {s.step:,} "
                f"({err.strerror or err}); the one before it, if any, is unchanged"
            ) from None

    controls = replace(
        controls or Controls(), checkpoint=save, checkpoint_every=cfg.checkpoint_every
    )
    try:
        result = train(
            params0, data.train_ids, spec, val_ids=val_ids, resume=state, controls=controls
        )
    except TrainingDiverged as err:
        raise TrainingDiverged(diverged_advice(str(err), cfg, params0, data)) from None
    where = promote_run(run_dir) if promote else partial
    sessions = sessions + [session]
    return Run(cfg, data, result, sessions, _provenance(sessions, build_id, session), where)


# The loss before any update, above this many times that of uniform guessing, says the
# initial weights are too large (sigma), whatever the rate.
INITIAL_LOSS_TOO_HIGH = 10.0


def budget_line(result: TrainResult, cfg: Config) -> str:
    """One line saying that time_budget ended training, where, and which model was kept;
    empty when it did not."""
    if not result.stopped_by_budget:
        return ""
    return (
        f"time budget of {cfg.time_budget:g} s reached: training stopped at update "
        f"{len(result.loss):,} of {cfg.n_updates:,}; the best model (by {result.best_by}) is that "
        f"of update {result.best_step:,}"
    )


def diverged_advice(message: str, cfg: Config, params0, data: Data) -> str:
    """The divergence message, ending in what the run's numbers point to: the initial scale
    (the loss is far above uniform guessing before any update), the rate, or both."""
    from rnn.engine.train import mean_loss

    where = message.split("; lower eta")[0]
    uniform = math.log(len(data.vocab))
    first = data.train_ids[: cfg.seq_length + 1]
    with np.errstate(all="ignore"):
        start = mean_loss(params0, first)
    scale = not (start <= INITIAL_LOSS_TOO_HIGH * uniform)  # NaN counts as too high
    eta_default = Config().eta
    if not scale:
        return f"{where}; lower eta (now {cfg.eta:g})"
    numbers = (
        f"before any update the loss is {start:.4g} per character, against {uniform:.3g} for "
        f"uniform guessing"
    )
    if cfg.eta > eta_default:
        return (
            f"{where}; {numbers}: lower sigma (now {cfg.sigma:g}) and eta (now {cfg.eta:g}, "
            f"default {eta_default:g})"
        )
    return f"{where}; {numbers}: the initial weights are too large; lower sigma (now {cfg.sigma:g})"


def check_run_files(run_dir: Path) -> None:
    """The run's checkpoints must be files (or absent): a folder in their place would stop
    the run only when it saves, or a build once it had replaced the report."""
    for name in (FINAL, PARTIAL):
        path = Path(run_dir) / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise RNNError(f"{path}: is not a file; move it away and run again")


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
        if getattr(signal.getsignal(signal.SIGINT), "starting", False):  # start-up is over
            signal.signal(signal.SIGINT, signal.default_int_handler)


def resolve_path(path, name: str) -> Path:
    """A path parameter of the notebook, which may run from any folder: a relative path that
    does not exist from here is an error that says how to run it."""
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        raise DataError(
            f"{path}: no such file or folder from {Path.cwd()}; run the notebook from "
            f"notebooks/ (papermill --cwd notebooks) or give {name} as an absolute path"
        )
    return p
