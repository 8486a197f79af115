"""Build the report: papermill executes the notebook, nbconvert renders it (code hidden).

    python -m rnn.build --data data/shakespeare.txt --out reports -p eta 0.05 -f params.yaml

Work happens in a staging folder inside OUT; only a run that succeeds replaces OUT's
report.html, report.ipynb and metrics.json, so a failed run never leaves a broken report in
place of a good one. A failed run keeps its partly executed notebook as
OUT/report.failed.ipynb, names the cell that failed, and exits 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from . import checkpoint
from .config import Config
from .data import load_text
from .errors import RNNError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "report.ipynb"
TEMPLATES = Path(__file__).resolve().parent / "templates"
PRODUCTS = ("report.ipynb", "report.html", "metrics.json")
NOTEBOOK_ONLY = {"data_path", "out_dir", "checkpoint_path", "resume_from"}


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
        params |= _yaml_mapping(Path(f).read_text(encoding="utf-8"), f)
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


def validate(params: dict, data: Path) -> tuple[Config, str]:
    """Fail before starting a kernel: unknown names, bad values, an unusable corpus.
    Returns the run's Config and its corpus text."""
    cfg = Config.from_dict({k: v for k, v in params.items() if k not in NOTEBOOK_ONLY})
    return cfg, load_text(data)


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
            return os.path.join(tempfile.mkdtemp(prefix="rnn-kernel-"), "k")

        async def cleanup_resources(self, restart=False):
            await super().cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(os.path.dirname(self.ip), ignore_errors=True)

    return IPCKernelManager


def execute(notebook: Path, output: Path, params: dict, kernel: str | None) -> None:
    import papermill as pm

    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=params,
        kernel_name=kernel,
        cwd=str(notebook.parent),
        log_output=True,
        progress_bar=False,
        kernel_manager_class=kernel_manager_class(),
    )


def render(executed: Path, html_out: Path) -> None:
    """HTML with code hidden, set-up cells removed, images embedded, no network scripts."""
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
    c.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    exporter = HTMLExporter(config=c)
    body, _ = exporter.from_notebook_node(nbformat.read(str(executed), as_version=4))
    html_out.write_text(body, encoding="utf-8")


def build(
    data: Path, out: Path, params: dict, kernel: str | None = None, retrain: bool = False
) -> Path:
    """Execute and render the report into `out`.

    The finished run's checkpoint is out/checkpoint.npz; while a run trains, its checkpoints
    go to out/checkpoint.partial.npz, so a failed or interrupted run never replaces a
    finished one. A run continues from whichever of the two holds this very configuration
    and corpus (a finished one, or one that was interrupted), unless `retrain`."""
    data, out = data.resolve(), out.resolve()  # the notebook runs in notebooks/, not here
    cfg, text = validate(params, data)
    out.mkdir(parents=True, exist_ok=True)
    final, partial = out / "checkpoint.npz", out / "checkpoint.partial.npz"
    resume = ""
    if not retrain:
        this_run = dict(config=cfg.to_dict(), corpus_sha256=checkpoint.corpus_digest(text))
        resume = next((str(p) for p in (final, partial) if checkpoint.same_run(p, **this_run)), "")
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    try:
        params = params | {
            "data_path": str(data),
            "out_dir": str(staging),
            "checkpoint_path": str(partial),
            "resume_from": resume,
        }
        executed = staging / "report.ipynb"
        try:
            execute(NOTEBOOK, executed, params, kernel)
        except Exception as err:
            failed = out / "report.failed.ipynb"
            if executed.exists():
                os.replace(executed, failed)
            raise BuildError(describe_failure(err), failed if failed.exists() else None) from None
        render(executed, staging / "report.html")
        for name in PRODUCTS:  # each rename is atomic; the HTML goes last, as the seal
            if (staging / name).exists() and name != "report.html":
                os.replace(staging / name, out / name)
        os.replace(staging / "report.html", out / "report.html")
        if partial.exists():
            os.replace(partial, final)
        (out / "report.failed.ipynb").unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "report.html"


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
        return f"{where} of {NOTEBOOK.name} raised {ename}: {evalue}"
    return f"{type(err).__name__}: {err}".splitlines()[0]


def print_pdf(out: Path, paper: str = "a4") -> Path:
    """Print out/report.html to out/report.pdf with headless Chromium, on A4 or US Letter.

    The report's CSS sets the page (size, margins, page numbers) and Chromium follows it; the
    size is settled here by printing a copy of the page whose last style rule names it."""
    sizes = {"a4": "A4", "letter": "letter"}  # CSS @page size of each
    if paper not in sizes:
        raise RNNError(f"paper must be one of {', '.join(sizes)}, got {paper!r}")
    html_file = (out / "report.html").resolve()
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
    if not html_file.exists():
        raise RNNError(f"{html_file}: no report to print; run 'make report' first")
    pdf = out / "report.pdf"
    sized = f"<style>@page {{ size: {sizes[paper]}; }}</style></head>"
    fd, name = tempfile.mkstemp(dir=out, prefix=".print-", suffix=".html")
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
        "-k", "--kernel", default=None, help="Jupyter kernel (default: the notebook's)"
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train afresh even if OUT/checkpoint.npz is of this very run",
    )
    parser.add_argument("--pdf-only", action="store_true", help="print OUT/report.html to PDF")
    parser.add_argument(
        "--paper", choices=("a4", "letter"), default="a4", help="page size of the PDF (default a4)"
    )
    args = parser.parse_args(argv)
    try:
        if args.pdf_only:
            print(f"wrote {print_pdf(args.out, args.paper)}")
            return 0
        html_file = build(args.data, args.out, collect_parameters(args), args.kernel, args.retrain)
    except RNNError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        if err.notebook:
            print(f"the partly executed notebook is {err.notebook}", file=sys.stderr)
        return 1
    print(f"wrote {html_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
