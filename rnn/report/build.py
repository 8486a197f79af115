"""Build the report: train, then papermill executes the notebook and nbconvert renders it.

    python -m rnn report --data data/shakespeare.txt --out reports -p eta 0.05 -f params.yaml

(the command line is rnn/cli/commands.py).

1. The effective parameters are the notebook's own defaults (its `parameters` cell, as it
   is on disk) with the given ones over them; all are validated, with the corpus, before
   anything starts.
2. A process of its own (rnn.runs.trainer) reads and checks the corpus; then the build holds
   OUT (rnn.runs.lock) and that process trains there through rnn.runs.driver (Ctrl-C stops
   it cleanly at a checkpoint) and ends, giving back numba's and the corpus's memory before
   papermill starts.
3. papermill executes the notebook (rnn.report.execution) with exactly those parameters and
   the run's folder and checkpoint; the notebook reads the run (rnn.runs.driver.read_run) and
   trains nothing. nbconvert renders the HTML.
Work happens in a staging folder inside OUT; only a run that succeeds replaces OUT's
report.html, report.ipynb and metrics.json. A failed run keeps its partly executed notebook
as OUT/report.failed.ipynb, names the cell that failed, and exits 1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from rnn.engine.progress import STILL_EVERY
from rnn.errors import BuildError, RNNError
from rnn.report import results
from rnn.report.execution import NOTEBOOK, effective_parameters, execute, render
from rnn.report.seal import sealed_run, write_seal
from rnn.runs import driver, lock, trainer
from rnn.runs.outcome import Verdict

# The HTML and its seal last: a report is there only once everything of it is
PRODUCTS = ("report.ipynb", "metrics.json", "report.html", "report.run.json")


# What executing the report notebook takes (the kernel's start, the gradient check, the samples,
# part VI): measured 23.7 s at the defaults on the 2-core machine under a load average of 11.
# The kernel compiles nothing: it never loads numba (rnn.runs.trainer's docstring says why).
EXECUTE_SECONDS = "about 15 s, more with a large vocabulary"


class Built(NamedTuple):
    html: Path  # out/report.html
    verdict: Verdict  # on the run it reports (rnn.runs.outcome)


@dataclass(frozen=True)
class Request:
    """What a report build is asked for: the corpus, the output folder, the parameters given
    over the notebook's defaults, whether to train afresh (make's RETRAIN=1), and the notebook
    to execute (default: the package's)."""

    data: Path
    out: Path
    params: dict
    retrain: bool = False
    notebook: Path | None = None


def build(
    data: Path, out: Path, params: dict, retrain: bool = False, *, notebook=None, progress=True
) -> Path:
    """Train (or reuse) and render the report into `out`, saying each stage on stdout;
    returns the HTML's path (build_report, for a Request)."""
    return build_report(Request(data, out, params, retrain, notebook), progress=progress).html


def build_report(request: Request, *, progress=True, log=print) -> Built:
    """Train (or reuse) and render the report into request.out, saying each stage through
    `log`. progress: training's (rnn.engine.progress.Progress, or True).

    The training runs in a process of its own (rnn.runs.trainer), which ends before papermill's
    kernel starts: this process never loads numba, and the whole build holds one copy of
    the corpus at a time."""
    data, out = resolved(request.data), resolved(request.out)
    notebook = Path(request.notebook or NOTEBOOK)
    cfg, values = effective_parameters(notebook, request.params)
    build_id = uuid.uuid4().hex
    with trainer.Trainer(values, data, out, build_id, request.retrain, progress) as child:
        child.prepared()  # the corpus read and checked, before anything is written
        with lock.hold(out, f"make report into {out} {lock.build_note(build_id)}"):
            before = sealed_run(out)
            trained = child.train()
            if trained.budget:
                log(trained.budget)
            log(f"{trained.provenance}; rendering the report")
            made_from = trained.checkpoint
            started = time.perf_counter()
            staging = Path(tempfile.mkdtemp(dir=out, prefix=lock.transient_prefix("staging")))
            try:
                values |= {
                    "data_path": str(data),
                    "out_dir": str(staging),
                    "run_dir": str(out),
                    # not yet promoted (below, with the report): the partial file, when trained
                    "run_checkpoint": made_from.name,
                    "build_id": build_id,
                    "train_if_missing": False,
                }
                executed = staging / "report.ipynb"
                log(f"executing the notebook (a Python kernel of its own; {EXECUTE_SECONDS})")
                try:
                    with still("executing the notebook", log):
                        execute(notebook, executed, values, cwd=staging, progress=bool(progress))
                except Exception as err:
                    raise BuildError(describe_failure(err), keep_failed(executed, out)) from None
                log(
                    f"executed the notebook in {time.perf_counter() - started:.1f} s; "
                    f"rendering HTML"
                )
                started = time.perf_counter()
                try:
                    # Parts turned off (or outside the layout) are left out, headings and
                    # prose included.
                    render(executed, staging / "report.html", results.dropped_tags(cfg))
                    write_seal(staging, made_from, build_id)
                    log(f"rendered HTML in {time.perf_counter() - started:.1f} s")
                    for name in PRODUCTS:  # each rename is atomic
                        os.replace(staging / name, out / name)
                    driver.promote_run(out)
                    # A PDF printed from the previous report describes this one only if both
                    # are of the same run, parameters and corpus (their seals say).
                    if (out / "report.pdf").exists() and sealed_run(out) != before:
                        (out / "report.pdf").unlink()
                        log("removed the previous report's report.pdf; make pdf prints this one")
                except OSError as err:
                    raise BuildError(
                        f"could not write the report into {out} ({err.strerror})",
                        keep_failed(executed, out),
                    ) from None
                (out / "report.failed.ipynb").unlink(missing_ok=True)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return Built(out / "report.html", trained.verdict)


@contextlib.contextmanager
def still(doing: str, log, every: float = STILL_EVERY):
    """While the block runs, a line every `every` seconds saying it is still `doing`: a cell
    that computes (or, on a first run, compiles) for half a minute shows nothing else."""
    done, t0 = threading.Event(), time.perf_counter()

    def tick():
        while not done.wait(every):
            log(f"  still {doing} ({time.perf_counter() - t0:.0f} s)")

    threading.Thread(target=tick, daemon=True).start()
    try:
        yield
    finally:
        done.set()


def resolved(path) -> Path:
    """The absolute path, or one line naming it if it cannot be resolved (a symlink loop)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError) as err:  # RuntimeError: a symlink loop (Python < 3.13)
        raise RNNError(f"{path}: cannot be resolved ({getattr(err, 'strerror', err)})") from None


def keep_failed(executed: Path, out: Path) -> Path | None:
    """The executed notebook of a failed build, kept as out/report.failed.ipynb."""
    failed = out / "report.failed.ipynb"
    if executed.exists():
        os.replace(executed, failed)
    return failed if failed.exists() else None


def describe_failure(err: Exception) -> str:
    """One line: which cell failed and the error it raised (not the traceback)."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        cell = getattr(err, "exec_count", None)
        where = f"cell [{cell}]" if cell else "a cell"
        return f"{where} of {NOTEBOOK.name} raised {ename}: {evalue}".splitlines()[0]
    return f"{type(err).__name__}: {err}".splitlines()[0]
