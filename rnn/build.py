"""Build the report: train, then papermill executes the notebook and nbconvert renders it.

    python -m rnn.build --data data/shakespeare.txt --out reports -p eta 0.05 -f params.yaml

1. The effective parameters are the notebook's own defaults (its `parameters` cell, as it
   is on disk) with the given ones over them; all are validated, with the corpus, before
   anything starts.
2. The build holds OUT (rnn.lock) and trains there through rnn.run, the driver the notebook
   uses too: in this process, so that Ctrl-C stops training cleanly at a checkpoint.
3. papermill executes the notebook with exactly those parameters; its driver call finds the
   finished run and reads it. nbconvert renders the HTML.
Work happens in a staging folder inside OUT; only a run that succeeds replaces OUT's
report.html, report.ipynb and metrics.json. A failed run keeps its partly executed notebook
as OUT/report.failed.ipynb, names the cell that failed, and exits 1.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import yaml

from . import lock
from . import run as driver
from .config import Config, names
from .errors import Interrupted, RNNError

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
PRODUCTS = ("report.ipynb", "metrics.json", "report.html")  # the HTML last, as the seal
# The notebook's path parameters (rnn.config.PATH_PARAMETERS) are the build's to set.
SET_BY_BUILD = {
    "data_path": "give the corpus as DATA=... (--data)",
    "out_dir": "give the folder as OUT=... (--out)",
    "run_dir": "the run's checkpoints live in OUT",
    "build_id": "the build sets it",
}


def notebook_path(name: str) -> Path:
    """A notebook shipped in the package (an installed wheel), else the source tree's."""
    packaged = Path(__file__).resolve().parent / "notebooks" / name
    return packaged if packaged.exists() else ROOT / "notebooks" / name


NOTEBOOK = notebook_path("report.ipynb")


def parse_value(raw: str):
    """A -p value as papermill's command line reads it: int, float, bool, None, else str."""
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(raw, raw)


def collect_parameters(args) -> dict:
    params = {}
    for f in args.parameters_file or []:
        if not Path(f).is_file():
            raise RNNError(f"{f}: no such parameters file")
        try:
            text = Path(f).read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise RNNError(f"{f}: not UTF-8 text (invalid byte at offset {err.start})") from None
        params |= _yaml_mapping(text, f)
    for y in args.parameters_yaml or []:
        params |= _yaml_mapping(y, "-y")
    for name, raw in args.parameters or []:
        params[name] = parse_value(raw)
    for name, raw in args.parameters_raw or []:
        params[name] = raw
    return params


def _yaml_mapping(text: str, where: str) -> dict:
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise RNNError(f"{where}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(loaded, dict):
        raise RNNError(f"{where}: parameters must map names to values")
    return loaded


def notebook_defaults(notebook: Path) -> dict:
    """The values of the notebook's `parameters` cell as it is on disk: literals only."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
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
    return cfg, {name: getattr(cfg, name) for name in names()}


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


def execute(notebook: Path, output: Path, params: dict, cwd: Path) -> None:
    import papermill as pm

    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=params,
        kernel_name="python3",  # the kernel manager runs this interpreter whatever the name
        cwd=str(cwd),
        log_output=False,
        progress_bar=False,
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


def build(
    data: Path,
    out: Path,
    params: dict,
    retrain: bool = False,
    *,
    notebook: Path | None = None,
    progress: bool = True,
    log=print,
) -> Path:
    """Train (or reuse) and render the report into `out`; returns the HTML's path.
    notebook: the report notebook to execute (default: the package's)."""
    data, out = Path(data).resolve(), Path(out).resolve()
    notebook = Path(notebook or NOTEBOOK)
    cfg, values = effective_parameters(notebook, params)
    prepared = driver.prepare(cfg, data)
    with lock.hold(out, f"make report into {out}"):
        build_id = uuid.uuid4().hex
        with driver.stop_requests() as should_stop:
            trained = driver.run(
                cfg,
                prepared,
                out,
                build_id=build_id,
                fresh=retrain,
                progress=progress,
                should_stop=should_stop,
                promote=False,  # below, with the report: they are always of one run
            )
        log(f"{trained.provenance}; rendering the report")
        staging = Path(tempfile.mkdtemp(dir=out, prefix=lock.transient_prefix("staging")))
        try:
            values |= {
                "data_path": str(data),
                "out_dir": str(staging),
                "run_dir": str(out),
                "build_id": build_id,
            }
            executed = staging / "report.ipynb"
            try:
                execute(notebook, executed, values, cwd=staging)
            except Exception as err:
                raise BuildError(describe_failure(err), keep_failed(executed, out)) from None
            try:
                # Part VI turned off is left out of the report, headings and prose included.
                drop = () if cfg.analysis else ("analysis",)
                render(executed, staging / "report.html", drop)
                for name in PRODUCTS:  # each rename is atomic
                    os.replace(staging / name, out / name)
                driver.promote_run(out)
                # A PDF printed from the previous report no longer describes this one.
                if (out / "report.pdf").exists():
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
    return out / "report.html"


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


PRINTED = ("report", "bonus")  # the documents a folder may hold: NAME.html prints to NAME.pdf


def print_pdfs(out: Path, paper: str = "a4") -> list[Path]:
    """Print every document out holds (report.html, bonus.html) to its PDF."""
    names = [name for name in PRINTED if (Path(out) / f"{name}.html").exists()]
    if not names:
        html_file = (Path(out) / "report.html").resolve()
        raise RNNError(f"{html_file}: no report to print; run 'make report' first")
    return [print_pdf(out, paper, name) for name in names]


def print_pdf(out: Path, paper: str = "a4", name: str = "report") -> Path:
    """Print out/NAME.html to out/NAME.pdf with headless Chromium, on A4 or US Letter.

    The report's CSS sets the page (size, margins, page numbers) and Chromium follows it; the
    size is settled here by printing a copy of the page whose last style rule names it."""
    sizes = {"a4": "A4", "letter": "letter"}  # CSS @page size of each
    if paper not in sizes:
        raise RNNError(f"paper must be one of {', '.join(sizes)}, got {paper!r}")
    html_file = (out / f"{name}.html").resolve()
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
    pdf = out / f"{name}.pdf"
    sized = f"<style>@page {{ size: {sizes[paper]}; }}</style></head>"
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT / "data" / "shakespeare.txt",
        help="UTF-8 text to train on",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports", help="output folder")
    parser.add_argument("-p", "--parameters", nargs=2, action="append", metavar=("NAME", "VALUE"))
    parser.add_argument(
        "-r", "--parameters_raw", nargs=2, action="append", metavar=("NAME", "VALUE")
    )
    parser.add_argument("-f", "--parameters_file", action="append", metavar="YAML_FILE")
    parser.add_argument("-y", "--parameters_yaml", action="append", metavar="YAML")
    parser.add_argument(
        "--retrain", action="store_true", help="train afresh even if OUT holds this very run"
    )
    parser.add_argument(
        "--pdf-only", action="store_true", help="print OUT/report.html and OUT/bonus.html to PDF"
    )
    parser.add_argument(
        "--paper", choices=("a4", "letter"), default="a4", help="page size of the PDF (default a4)"
    )
    args = parser.parse_args(argv)
    driver.terminate_like_interrupt()
    try:
        if args.pdf_only:
            for pdf in print_pdfs(args.out, args.paper):
                print(f"wrote {pdf}")
            return 0
        html_file = build(args.data, args.out, collect_parameters(args), args.retrain)
    except RNNError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        if err.notebook:
            print(f"the partly executed notebook is {err.notebook}", file=sys.stderr)
        return 1
    except Interrupted as stop:
        print(interrupted_line(stop), file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(
            "interrupted while rendering; the trained run is kept in OUT; run the same "
            "command again to render the report",
            file=sys.stderr,
        )
        return 130
    except MemoryError:
        print(OUT_OF_MEMORY, file=sys.stderr)
        return 2
    print(f"wrote {html_file}")
    return 0


OUT_OF_MEMORY = "error: out of memory; lower m, n_updates or the lengths of what is sampled"


def interrupted_line(stop: Interrupted) -> str:
    at = stop.checkpoint_step
    kept = f"checkpoint at update {at:,}" if at is not None else "no checkpoint was written"
    return f"interrupted at update {stop.step:,}; {kept}; run the same command again to continue"


if __name__ == "__main__":
    sys.exit(main())
