"""Build the report: train, then papermill executes the notebook and nbconvert renders it.

    python -m rnn report --data data/shakespeare.txt --out reports -p eta 0.05 -f params.yaml

(the command line is rnn/__main__.py; `python -m rnn.build` is the same as `python -m rnn
report`, and `python -m rnn.build --pdf-only` as `python -m rnn pdf`).

1. The effective parameters are the notebook's own defaults (its `parameters` cell, as it
   is on disk) with the given ones over them; all are validated, with the corpus, before
   anything starts.
2. A process of its own (rnn.trainer) reads and checks the corpus; then the build holds OUT
   (rnn.lock) and that process trains there through rnn.run (Ctrl-C stops it cleanly at a
   checkpoint) and ends, giving back numba's and the corpus's memory before papermill starts.
3. papermill executes the notebook with exactly those parameters and the run's folder and
   checkpoint; the notebook reads the run (rnn.run.read_run) and trains nothing. nbconvert
   renders the HTML.
Work happens in a staging folder inside OUT; only a run that succeeds replaces OUT's
report.html, report.ipynb and metrics.json. A failed run keeps its partly executed notebook
as OUT/report.failed.ipynb, names the cell that failed, and exits 1.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import lock, report, trainer
from . import run as driver
from .config import Config
from .errors import RNNError
from .outcome import Verdict
from .progress import STILL_EVERY

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
# The HTML and its seal last: a report is there only once everything of it is
PRODUCTS = ("report.ipynb", "metrics.json", "report.html", "report.run.json")
# What executing the report notebook takes (the kernel's start, the gradient check, the samples,
# part VI): measured 23.7 s at the defaults on the 2-core machine under a load average of 11.
# The kernel compiles nothing: it never loads numba (rnn.trainer's docstring says why).
EXECUTE_SECONDS = "about 15 s, more with a large vocabulary"
# The notebook's path parameters (rnn.config.PATH_PARAMETERS) are the build's to set.
SET_BY_BUILD = {
    "data_path": "give the corpus as DATA=... (--data)",
    "out_dir": "give the folder as OUT=... (--out)",
    "run_dir": "the run's checkpoints live in OUT",
    "run_checkpoint": "the build names the run it trained",
    "build_id": "the build sets it",
    "train_if_missing": "the build trains before the notebook reads",
}


def notebook_path(name: str) -> Path:
    """A notebook shipped in the package (an installed wheel), else the source tree's."""
    packaged = Path(__file__).resolve().parent / "notebooks" / name
    return packaged if packaged.exists() else ROOT / "notebooks" / name


NOTEBOOK = notebook_path("report.ipynb")


def notebook_defaults(notebook: Path) -> dict:
    """The values of the notebook's `parameters` cell as it is on disk: literals only."""
    try:
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    except FileNotFoundError:
        raise RNNError(f"{notebook}: the report notebook is missing (git checkout it)") from None
    except OSError as err:
        raise RNNError(f"{notebook}: cannot be read ({err.strerror})") from None
    except (ValueError, KeyError, TypeError, AttributeError):  # truncated or not a notebook
        raise RNNError(
            f"{notebook}: not a readable notebook (truncated or edited?); restore it with "
            f"git checkout"
        ) from None
    if len(cells) != 1:
        raise RNNError(f"{notebook}: needs exactly one cell tagged 'parameters'")
    try:
        body = ast.parse("".join(cells[0]["source"])).body
    except SyntaxError as err:
        raise RNNError(
            f"{notebook}: the parameters cell is not valid Python ({err.msg}, line {err.lineno})"
        ) from None
    values = {}
    for node in body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if not all(isinstance(t, ast.Name) for t in targets) or node.value is None:
                raise RNNError(
                    f"{notebook}: line {node.lineno} of the parameters cell must be one "
                    f"'name: type = value' (got {ast.unparse(node)!r})"
                )
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise RNNError(
                    f"{notebook}: parameter {targets[0].id} must be a literal in the parameters "
                    f"cell"
                ) from None
            values |= {t.id: value for t in targets}
    return values


def effective_parameters(notebook: Path, given: dict) -> tuple[Config, dict]:
    """The run's Config, from the notebook's defaults with `given` over them; refuses the
    path parameters, which the build sets, and any name it does not know."""
    for name in given:
        if name in SET_BY_BUILD:
            raise RNNError(f"parameter {name} is set by make report: {SET_BY_BUILD[name]}")
    values = {k: v for k, v in notebook_defaults(notebook).items() if k not in SET_BY_BUILD}
    cfg = Config.from_dict(values | given)
    # As given, None where the preset decides: the notebook resolves them as Config did here.
    return cfg, cfg.given()


def kernel_manager_class():
    """Kernels that talk over Unix sockets in a private folder rather than TCP ports.

    Parallel runs (sweeps) start kernels at the same moment; with TCP each picks free ports
    and may lose them to another before binding ("Address already in use", "Kernel didn't
    respond"). Socket files in a folder of their own cannot collide. TCP where there are none.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    if os.name != "posix":
        return AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("ip")
        def _default_ip(self):
            return os.path.join(tempfile.mkdtemp(prefix=lock.temp_prefix(lock.KERNEL_PREFIX)), "k")

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            # The kernel's own log (start-up, shutdown) is not the user's business: cell
            # output and errors reach papermill through the kernel's messages instead.
            kw.setdefault("stderr", subprocess.DEVNULL)
            await super()._async_launch_kernel(kernel_cmd, **kw)

        @property
        def kernel_spec(self):
            # This very interpreter, whatever kernelspecs the user has on JUPYTER_PATH.
            return project_kernel_spec()

        async def cleanup_resources(self, restart=False):
            await super().cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(os.path.dirname(self.ip), ignore_errors=True)

    return IPCKernelManager


def project_kernel_spec():
    from jupyter_client.kernelspec import KernelSpec

    return KernelSpec(
        argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name="Python (rnn)",
        language="python",
    )


def execute(notebook: Path, output: Path, params: dict, cwd: Path, progress: bool = False) -> None:
    """papermill executes `notebook` into `output`; progress: its bar of cells, on stderr, when
    that is a terminal (in a log, the stage lines say enough)."""
    import papermill as pm

    bar = progress and sys.stderr.isatty()
    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=params,
        kernel_name="python3",  # the kernel manager runs this interpreter whatever the name
        cwd=str(cwd),
        log_output=False,
        progress_bar={"dynamic_ncols": True, "ascii": True, "leave": False} if bar else False,
        kernel_manager_class=kernel_manager_class(),
    )


def render(executed: Path, html_out: Path, drop=()) -> None:
    """HTML with code hidden, set-up cells (and cells tagged with any of `drop`) removed,
    images embedded, no network scripts."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config as TConfig

    c = TConfig()
    c.TemplateExporter.extra_template_basedirs = [str(TEMPLATES)]
    c.HTMLExporter.template_name = "report"
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"} | set(drop)
    c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    exporter = HTMLExporter(config=c)
    body, _ = exporter.from_notebook_node(nbformat.read(str(executed), as_version=4))
    html_out.write_text(body, encoding="utf-8")


class Built(NamedTuple):
    html: Path  # out/report.html
    verdict: Verdict  # on the run it reports (rnn.outcome)


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
    `log`. progress: training's (rnn.progress.Progress, or True).

    The training runs in a process of its own (rnn.trainer), which ends before papermill's
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
                    render(executed, staging / "report.html", report.dropped_tags(cfg))
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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


SEAL = "report.run.json"


def write_seal(staging: Path, checkpoint_file: Path, build_id: str) -> None:
    """staging/report.run.json: which run the report is of (its checkpoint's SHA-256), and
    the SHA-256 of the report and metrics as written, so that a later reader (make pdf, a
    sweep) can tell that report, metrics and checkpoint are still of one run."""
    from . import checkpoint

    _, meta = checkpoint.load(checkpoint_file)
    last = meta["sessions"][-1] if meta["sessions"] else {}
    metrics = json.loads((staging / "metrics.json").read_text(encoding="utf-8"))
    seal = {
        "build_id": build_id,
        "run_finished": last.get("finished", ""),
        "checkpoint_sha256": file_sha256(checkpoint_file),
        "report_sha256": file_sha256(staging / "report.html"),
        "metrics_sha256": file_sha256(staging / "metrics.json"),
        # what sealed_run compares: every parameter (report ones too) and the corpus
        "config": metrics.get("config"),
        "corpus_sha256": metrics.get("corpus_sha256"),
    }
    (staging / SEAL).write_text(json.dumps(seal, indent=1) + "\n", encoding="utf-8")


def sealed_run(out: Path) -> tuple | None:
    """What out's report is of, by its seal: the run (its checkpoint's SHA-256), every
    parameter and the corpus; None without a readable seal. A build keeps report.pdf only
    when this is the same before and after it."""
    try:
        seal = json.loads((out / SEAL).read_text(encoding="utf-8"))
        return seal["checkpoint_sha256"], seal["config"], seal["corpus_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_seal(out: Path) -> dict:
    """The seal of out's report, if report, metrics and checkpoint are the ones it names;
    otherwise RNNError saying what differs."""
    try:
        seal = json.loads((out / SEAL).read_text(encoding="utf-8"))
        files = {
            "report_sha256": out / "report.html",
            "metrics_sha256": out / "metrics.json",
            "checkpoint_sha256": out / driver.FINAL,
        }
        differ = [f.name for key, f in files.items() if file_sha256(f) != seal[key]]
    except FileNotFoundError as err:
        raise RNNError(
            f"{out}: {Path(err.filename).name} is missing, so the report's run cannot be "
            f"named; run make report (it reuses a finished run) and then make pdf"
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise RNNError(f"{out / SEAL}: not readable; run make report again") from None
    if differ:
        raise RNNError(
            f"{out}: {', '.join(differ)} changed since the report was built (not of one run); "
            f"run make report again"
        )
    return seal


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


class BuildError(Exception):
    def __init__(self, message: str, notebook: Path | None):
        super().__init__(message)
        self.notebook = notebook


def describe_failure(err: Exception) -> str:
    """One line: which cell failed and the error it raised (not the traceback)."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        cell = getattr(err, "exec_count", None)
        where = f"cell [{cell}]" if cell else "a cell"
        return f"{where} of {NOTEBOOK.name} raised {ename}: {evalue}".splitlines()[0]
    return f"{type(err).__name__}: {err}".splitlines()[0]


PRINTED = ("report", "bonus", "index")  # NAME.html prints to NAME.pdf; index: a sweep's page


def print_pdfs(out: Path, paper: str = "a4") -> list[Path]:
    """Print every document out holds (report.html, bonus.html, a sweep's index.html)."""
    out = resolved(out)
    names = [name for name in PRINTED if (out / f"{name}.html").exists()]
    if not names:
        raise RNNError(f"{out / 'report.html'}: no report to print; run 'make report' first")
    return [print_pdf(out, paper, name) for name in names]


def print_pdf(out: Path, paper: str = "a4", name: str = "report") -> Path:
    """Print out/NAME.html to out/NAME.pdf with headless Chromium, on A4 or US Letter.

    The report's CSS sets the page (size, margins, page numbers) and Chromium follows it; the
    size is settled here by printing a copy of the page whose last style rule names it."""
    sizes = {"a4": "A4", "letter": "letter"}  # CSS @page size of each
    if paper not in sizes:
        raise RNNError(f"paper must be one of {', '.join(sizes)}, got {paper!r}")
    out = resolved(out)
    html_file = out / f"{name}.html"
    if not html_file.exists():
        raise RNNError(f"{html_file}: no report to print; run 'make report' first")
    chromium = (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    if chromium is None:
        raise RNNError(
            "no Chromium found for the PDF: install Debian's 'chromium' package "
            "(apt-get install chromium), or print report.html from a browser"
        )
    with lock.hold(out, f"make pdf in {out}"):
        if html_file.name == "report.html":
            check_seal(out)  # only a report whose run is named, beside that run's checkpoint
        return _print(out, html_file, sizes[paper], chromium)


def _print(out: Path, html_file: Path, size: str, chromium: str) -> Path:
    pdf = html_file.with_suffix(".pdf")
    sized = f"<style>@page {{ size: {size}; }}</style></head>"
    fd, name = tempfile.mkstemp(dir=out, prefix=lock.transient_prefix("print"), suffix=".html")
    page, tmp = Path(name), Path(name).with_suffix(".pdf")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(html_file.read_text(encoding="utf-8").replace("</head>", sized, 1))
    try:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                f"--print-to-pdf={tmp}",
                "--no-pdf-header-footer",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as err:
        last = (err.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise RNNError(f"{chromium} could not print the report: {last[0]}") from None
    finally:
        page.unlink(missing_ok=True)
    if not tmp.exists():
        raise RNNError(f"{chromium} wrote no PDF")
    os.replace(tmp, pdf)
    return pdf


def main(argv=None) -> int:
    """`python -m rnn.build ...`: `python -m rnn report ...` (`pdf` with --pdf-only)."""
    from .__main__ import main as rnn_main

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--pdf-only" in argv:
        return rnn_main(["pdf"] + [a for a in argv if a != "--pdf-only"])
    return rnn_main(["report", *argv])


if __name__ == "__main__":
    sys.exit(main())
