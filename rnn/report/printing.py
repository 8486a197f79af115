"""A rendered page printed to PDF (A4 or Letter) with headless Chromium, only when its seal
says it is the run beside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from rnn.errors import RNNError
from rnn.report.build import resolved
from rnn.report.seal import check_seal
from rnn.runs import lock

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
