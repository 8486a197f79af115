"""Which run a document is of: its heading, the run table and one-line summary, the
package's commit and the versions of the libraries that made it."""

from __future__ import annotations

import importlib.metadata
import math
import platform
import subprocess
from typing import NamedTuple

from rnn.report.markup import compact_table, escape
from rnn.report.network import CELL_LABELS
from rnn.runs.paths import PACKAGE

PACKAGES = ("numpy", "numba", "matplotlib", "papermill", "nbconvert")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit(path) -> str | None:
    """The short commit of the git checkout holding `path`, with "+dirty" when its tracked
    files have changes; None outside a checkout or without git. Never raises."""

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10
        )

    try:
        head = git("rev-parse", "--short=10", "HEAD")
        if head.returncode != 0:
            return None
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    commit = head.stdout.strip()
    if not commit:
        return None
    return commit + ("+dirty" if status.returncode != 0 or status.stdout.strip() else "")


class Heading(NamedTuple):
    """The report's heading: its title, author ("" for none), the run's date, and the commit
    of the package's checkout (None when unknown)."""

    title: str
    author: str
    date: str
    commit: str | None


class CorpusFacts(NamedTuple):
    """The corpus as the run table names it: its file's name, size, vocabulary, SHA-256 and
    the characters of the two splits."""

    name: str
    characters: int
    K: int
    sha256: str
    n_train: int
    n_val: int


class Timing(NamedTuple):
    """How long the run trained (rnn.engine.train.TrainResult has these too)."""

    epochs: float
    per_epoch: int
    seconds: float
    updates_per_sec: float


def header_rows(
    heading: Heading, corpus: CorpusFacts, config: dict, timing: Timing, provenance: str
) -> list[tuple[str, str]]:
    """The run's identity and parameters as (name, value) text rows, plain values in.

    The first rows are the title, the author (when there is one), the date and the commit
    (when known); run_header shows them as the heading and the rest as a compact table.
    `provenance` is one sentence from the caller, e.g. "trained in this build (18.2 s)".
    """
    rows = [("title", heading.title)]
    if heading.author:
        rows.append(("author", heading.author))
    rows.append(("date", heading.date))
    if heading.commit:
        rows.append(("commit", heading.commit))
    rows += [
        ("corpus", f"{corpus.name} ({corpus.characters:,} characters, K = {corpus.K})"),
        ("corpus SHA-256", corpus.sha256[:16]),
        ("training / validation", f"{corpus.n_train:,} / {corpus.n_val:,} characters"),
        ("run", provenance),
    ]
    rows += [(name, shown(value)) for name, value in config.items() if name not in HEADING]
    rate = timing.updates_per_sec
    rows += [
        ("epochs", f"{timing.epochs:.2f}"),
        ("updates per epoch", f"{timing.per_epoch:,}"),
        ("training time", f"{timing.seconds:.1f} s"),
        ("updates/s", f"{rate:,.0f}" if math.isfinite(rate) else "–"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions().items())),
    ]
    return rows


HEADING = ("title", "author", "date", "commit")


class RunHeader:
    """The report's heading (title, author, date, commit), the run in one line (run_line),
    and the compact run table of every row (table_html, for the appendix).

    Displayed in a notebook it is the heading and the line; the output also carries the
    title in its metadata ("rnn": {"title": ...}), from which the report template takes the
    page's <title> (and so the PDF's title)."""

    def __init__(self, rows):
        self.rows = [(str(k), str(v)) for k, v in rows]
        found = dict(r for r in self.rows if r[0] in HEADING)
        self.title = found.get("title", "")
        self.byline = [found[k] for k in ("author", "date") if found.get(k)]
        if found.get("commit"):
            self.byline.append(f"commit {found['commit']}")

    def _repr_html_(self) -> str:
        byline = " · ".join(escape(b) for b in self.byline)
        return (
            f'<header class="rnn-header"><h1>{escape(self.title)}</h1>'
            + (f'<p class="rnn-byline">{byline}</p>' if byline else "")
            + f'<p class="rnn-runline">{escape(run_line(self.rows))}</p>'
            + "</header>"
        )

    def table_html(self) -> str:
        """Every row but the heading's, as a compact table."""
        return compact_table([(k, v) for k, v in self.rows if k not in HEADING])

    def _repr_mimebundle_(self, include=None, exclude=None):
        return (
            {"text/html": self._repr_html_(), "text/plain": self.title},
            {"rnn": {"title": self.title}},
        )


BUDGET_ROW = "updates made (stopped by time_budget)"


# the run line names these only when they differ from the single float64 layer's defaults
NUMBER_DEFAULTS = {
    "layers": 1,
    "dropout": 0,
    "lr_decay": 1,
    "lr_decay_after": 10,
    "lr_anneal": 0,
    "time_budget": 0,
}


def run_line(rows) -> str:
    """The run in one line, from the header's rows: the network, how long it trained, the
    corpus and what this build did ("vanilla cell, m = 100 · 100,000 updates of 25
    characters (2.39 epochs), eta = 0.1 · ..."). Rows it does not find are left out."""
    named = dict(rows)
    network = [f"{CELL_LABELS.get(named['cell'], named['cell'])} cell"] if "cell" in named else []
    network += [f"m = {named['m']}"] if "m" in named else []
    # depth, dropout and precision when not the single float64 layer's defaults
    number = {k: float(named.get(k, v)) for k, v in NUMBER_DEFAULTS.items()}
    network += [f"{number['layers']:g} layers"] if number["layers"] != 1 else []
    network += [f"dropout {number['dropout']:g}"] if number["dropout"] else []
    network += [named["dtype"]] if named.get("dtype", "float64") != "float64" else []
    training = []
    if "n_updates" in named:
        updates = named["n_updates"]
        if BUDGET_ROW in named:  # the time budget stopped it first
            updates = f"{named[BUDGET_ROW]} of {updates}"
        training.append(
            f"{updates} updates"
            + (f" of {named['seq_length']} characters" if "seq_length" in named else "")
            + (f" ({named['epochs']} epochs)" if "epochs" in named else "")
        )
    training += ["stopped by the time budget"] if BUDGET_ROW in named else []
    training += [named["optimizer"]] if "optimizer" in named else []
    training += [f"η = {named['eta']}"] if "eta" in named else []
    if number["lr_decay"] != 1:
        after = max(number["lr_decay_after"], 1)
        training += [f"η × {number['lr_decay']:g} per epoch after epoch {after:g}"]
    if number["lr_anneal"] == 1:
        training += ["η falling to 0 over the run"]
    elif number["lr_anneal"]:
        share = f"{100 * number['lr_anneal']:.3g}%"  # 30%, 0.4%: never a rounded 0%
        training += [f"η falling to 0 over the last {share} of updates"]
    if number["time_budget"]:
        training += [f"time budget {number['time_budget']:g} s"]
    parts = [", ".join(network), ", ".join(training), named.get("corpus"), named.get("run")]
    return " · ".join(p for p in parts if p)


def header_for(trained) -> RunHeader:
    """The heading and run table of an rnn.runs.driver.Run, with the commit of the package's own
    checkout (none for an installed copy)."""
    cfg, corpus, result = trained.cfg, trained.data.corpus, trained.result
    finished = trained.finished_at.replace("T", " ")[:16]
    commit = git_commit(PACKAGE)
    return run_header(
        header_rows(
            Heading(cfg.report_title, cfg.author, finished, commit),
            CorpusFacts(
                corpus.path.name,
                corpus.n_chars,
                len(corpus.vocab),
                corpus.sha256,
                len(trained.data.train_ids),
                len(trained.data.val_ids),
            ),
            cfg.to_dict() | {"assignment": cfg.preset_description()} | _budget_rows(result),
            Timing(result.epochs, result.per_epoch, result.seconds, result.updates_per_sec),
            trained.provenance,
        )
    )


def _budget_rows(result) -> dict:
    """The row a run stopped by its time budget adds: the updates it made."""
    if not result.stopped_by_budget:
        return {}
    return {BUDGET_ROW: len(result.loss)}


def run_header(rows) -> RunHeader:
    """What display() shows at the top of the report: see RunHeader."""
    return RunHeader(rows)


def shown(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str):
        return repr(value) if value.strip() != value or not value else value
    return str(value)
