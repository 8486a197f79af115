"""What the report notebook shows: the heading and run table, tables, figures, the text the
model wrote.

Each function returns an HTML string, a matplotlib Figure, or (run_header) an object that
display() shows. Every piece of text that comes from a user, the corpus or the model is
HTML-escaped here; the look is rnn/templates/report/report.css.
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import io
import json
import math
import platform
import subprocess
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .atomic import write_atomic

PACKAGES = ("numpy", "numba", "matplotlib", "papermill", "nbconvert")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _e(value) -> str:
    """Any value as HTML text: markup in it is shown, never run."""
    return html.escape(str(value))


def _cell(tag: str, value) -> str:
    """A table cell; numbers are set right-aligned so their digits line up."""
    attr = ' class="num"' if _numeric(value) else ""
    return f"<{tag}{attr}>{_e(value)}</{tag}>"


def _numeric(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, float, np.number)):
        return True
    try:
        float(str(value).replace(",", "").replace("\u2212", "-"))
    except ValueError:
        return False
    return True


def table(rows, header=None, kind: str = "") -> str:
    """A two-or-more-column HTML table; every cell is escaped, numbers right-aligned (and
    the heading of a column of numbers with them). kind "keyvalue": names in the first
    column, never broken."""
    rows = [list(row) for row in rows]
    head = ""
    if header:
        numeric = [
            all(_numeric(row[j]) for row in rows if j < len(row) and str(row[j]) != "")
            and any(j < len(row) and str(row[j]) != "" for row in rows)
            for j in range(len(header))
        ]
        head = (
            "<thead><tr>"
            + "".join(
                f'<th class="num">{_e(h)}</th>' if num else f"<th>{_e(h)}</th>"
                for h, num in zip(header, numeric)
            )
            + "</tr></thead>"
        )
    body = "".join("<tr>" + "".join(_cell("td", c) for c in row) + "</tr>" for row in rows)
    cls = f"rnn-table rnn-{kind}" if kind else "rnn-table"
    return f'<table class="{cls}">{head}<tbody>{body}</tbody></table>'


def compact_table(rows, pairs: int = 3, long: int = 28) -> str:
    """(name, value) rows in little space: rows whose value is longer than `long` characters
    span the width, one a line, and the short ones follow in `pairs` name-value column pairs,
    filled down the columns. Every cell is escaped."""
    wide = [(k, v) for k, v in rows if len(str(v)) > long]
    short = [(k, v) for k, v in rows if len(str(v)) <= long]
    out = [
        f'<tr><th scope="row">{_e(k)}</th><td colspan="{2 * pairs - 1}">{_e(v)}</td></tr>'
        for k, v in wide
    ]
    depth = math.ceil(len(short) / pairs) if short else 0
    for i in range(depth):
        cells = []
        for j in range(pairs):
            k = i + j * depth
            if k < len(short):
                name, value = short[k]
                cells.append(f'<th scope="row">{_e(name)}</th>' + _cell("td", value))
            else:
                cells.append("<td></td><td></td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    cols = "".join('<col class="name"><col class="value">' for _ in range(pairs))
    return (
        f'<table class="rnn-table rnn-compact"><colgroup>{cols}</colgroup>'
        f"<tbody>{''.join(out)}</tbody></table>"
    )


def pre(text: str) -> str:
    """Text as it is, line breaks kept, markup shown rather than run, in a monospace font."""
    return f'<pre class="rnn-text">{html.escape(text)}</pre>'


def sampling_grid(items) -> str:
    """Samples side by side: items are (label, text, mean ln p per character)."""
    cells = "".join(
        f'<div class="rnn-cell"><h4>{_e(label)}</h4>'
        f"<p>mean log-probability {logp:.3f} nats per character</p>{pre(text)}</div>"
        for label, text, logp in items
    )
    return f'<div class="rnn-grid">{cells}</div>'


# What the report calls each cell, and the network built of it (with its article: "an LSTM").
CELL_LABELS = {"vanilla": "vanilla", "lstm": "LSTM", "gru": "GRU"}
NETWORKS = {"vanilla": "a vanilla RNN", "lstm": "an LSTM", "gru": "a GRU"}


# Each cell's equations, as part of the report's method (xₜ one-hot, hₜ₋₁ the previous state).
CELL_EQUATIONS = {
    "vanilla": "aₜ = W hₜ₋₁ + U xₜ + b, hₜ = tanh(aₜ)",
    "lstm": (
        "zₜ = W hₜ₋₁ + U xₜ + b, split into four blocks; iₜ = σ(z<sub>i</sub>), "
        "fₜ = σ(z<sub>f</sub>), oₜ = σ(z<sub>o</sub>), gₜ = tanh(z<sub>g</sub>); the memory "
        "sₜ = fₜ ⊙ sₜ₋₁ + iₜ ⊙ gₜ and hₜ = oₜ ⊙ tanh(sₜ) (the forget gate's bias starts at 1)"
    ),
    "gru": (
        "zₜ = σ(W<sub>z</sub> hₜ₋₁ + U<sub>z</sub> xₜ + b<sub>z</sub>), "
        "rₜ = σ(W<sub>r</sub> hₜ₋₁ + U<sub>r</sub> xₜ + b<sub>r</sub>), "
        "nₜ = tanh(W<sub>n</sub> (rₜ ⊙ hₜ₋₁) + U<sub>n</sub> xₜ + b<sub>n</sub>) and "
        "hₜ = (1 − zₜ) ⊙ hₜ₋₁ + zₜ ⊙ nₜ"
    ),
}
STATE = {
    "vanilla": "the hidden state hₜ",
    "lstm": "the state [hₜ; sₜ]",
    "gru": "the hidden state hₜ",
}


def model_html(cell: str, loss: str = "sum", layers: int = 1) -> str:
    """The report's statement of the model: the cell's equations and the output layer; loss
    the loss mode, "sum" or "mean" (rnn.model.LOSSES); layers, how many are stacked."""
    carried = STATE[cell]
    total = "sum" if loss == "sum" else "mean"
    stack = (
        f" The network stacks {layers} such layers: layer l > 1 reads the h of the layer below "
        f"in place of xₜ (Uˡ hₜˡ⁻¹, Uˡ of m columns), each carrying its own state, and V reads "
        f"the top layer's hₜ."
        if layers > 1
        else ""
    )
    return (
        f"<p><b>Model.</b> The network reads the text one character at a time: the character "
        f"at step t is a one-hot vector xₜ over the corpus's K distinct characters, and "
        f"{carried} of m units each is carried from step to step. The {CELL_LABELS[cell]} cell: "
        f"{CELL_EQUATIONS[cell]}.{stack} Then pₜ = softmax(V hₜ + c) are the model's "
        f"probabilities for the next character yₜ. The loss of a sequence is the {total} of "
        f"−ln pₜ[yₜ] over its characters, in nats.</p>"
    )


GATE_ORDER = {"vanilla": "", "lstm": "gates i, f, o, g", "gru": "gates z, r, n"}


def gradcheck_html(errors: dict, params, T: int, autograd=None, caption: str = "") -> str:
    """Part I: how the check was made, the cell's parameters, and the table (with autograd's
    column when given an rnn.torchref.AutogradCheck; after `caption`, a Numbering.table line,
    when given)."""
    from .gradcheck import DELTA, FULL_UP_TO, REL_FLOOR, SAMPLE

    shapes = ", ".join(
        f"{name} {value.shape[0]} × {value.shape[1]}" for name, value in params.items()
    )
    stacked = f" ({GATE_ORDER[params.cell]} stacked row-wise)" if GATE_ORDER[params.cell] else ""
    depth, dropout = "", ""
    if params.layers > 1:
        depth = f" of {params.layers} layers"
        dropout = (
            " The upper layers' W2, U2, b2 ... are checked like the first's (U2 reads the h of "
            "the layer below), with dropout off: its masks are constants BPTT multiplies by, "
            "and the test suite checks the stack with masks by complex step."
        )
        if autograd is not None:  # PyTorch's column is of a single layer: not this network
            caption = (
                "<p>The comparison with PyTorch's autograd is made for one layer only and is "
                "not shown for this stacked network.</p>" + caption
            )
            autograd = None
    return (
        f"<p>BPTT gradients of {NETWORKS[params.cell]}{depth} with m = {params.m} hidden units "
        f"on the corpus's first {T} characters: {shapes}{stacked}. Each is compared with the "
        f"fourth-order centered difference g<sub>n</sub> = [8 (L(θ + δ) − L(θ − δ)) − "
        f"(L(θ + 2δ) − L(θ − 2δ))] / 12δ, δ = {DELTA:g}, computed in float64; the error of an "
        f"entry is |g<sub>a</sub> − g<sub>n</sub>| / max({REL_FLOOR:g}, |g<sub>a</sub>| + "
        f"|g<sub>n</sub>|), g<sub>a</sub> being the BPTT gradient. A parameter of at most "
        f"{FULL_UP_TO:,} entries is checked entry by entry, a larger one on {SAMPLE} entries "
        f"drawn at random (for U, half of them in the columns of the characters the sequence "
        f"reads: U's gradient is zero elsewhere).{dropout}</p>"
        + caption
        + gradcheck_table(errors, autograd)
    )


def gradcheck_table(errors: dict, autograd=None) -> str:
    """One row per parameter: its largest error, the entries it was taken over, the verdict;
    given autograd (an rnn.torchref.AutogradCheck), a last column with the largest error
    against PyTorch's autograd and a sentence on how it was made, or, when torch is not
    installed, a sentence saying that column needs the optional extra."""
    from .gradcheck import PASS_BELOW, REL_FLOOR

    def entries(err) -> str:
        checked, size = getattr(err, "checked", None), getattr(err, "size", None)
        if checked is None or checked == size:
            return f"all {size:,}" if size is not None else ""
        return f"{checked:,} of {size:,}, at random"

    header = ("parameter", "largest error", "entries checked", f"below {PASS_BELOW:g}")
    rows = [
        (name, f"{err:.2e}", entries(err), "yes" if err < PASS_BELOW else "NO")
        for name, err in errors.items()
    ]
    if autograd is None:
        return table(rows, header=header)
    if not autograd.available:
        return table(rows, header=header) + (
            f"<p>A second column, the largest error against PyTorch's automatic "
            f"differentiation, {_e(autograd.missing)}.</p>"
        )
    net = f"m = {autograd.m}"
    header += (f"against PyTorch autograd ({net})",)
    rows = [row + (f"{autograd.errors[row[0]]:.2e}",) for row in rows]
    return table(rows, header=header) + (
        f"<p>The last column compares the same BPTT, for a {_e(autograd.cell)} network with "
        f"{net} on the first {autograd.seq_length} characters ({_e(autograd.loss)} of the "
        f"losses), with the gradients PyTorch {_e(autograd.torch_version)}'s automatic "
        f"differentiation takes through a forward pass written in torch from the same "
        f"equations, in float64, over every entry, with the same error measure (floor "
        f"{REL_FLOOR:g}).</p>"
    )


def loss_summary(result, n_val: int) -> str:
    """Part II's sentence: where the smooth loss ended and how well the best model reads
    the held-out text."""
    if not len(result.loss):
        return "<p>No updates were made.</p>"
    text = (
        f"After {len(result.loss):,} updates ({result.epochs:.2f} epochs) the smooth loss is "
        f"{result.smooth_loss[-1]:.2f}"
        + (
            ", its lowest, still falling at the end."
            if np.argmin(result.smooth_loss) == len(result.smooth_loss) - 1
            else f"; its lowest, {result.best_smooth_loss:.2f}, came after "
            f"{int(np.argmin(result.smooth_loss)):,} updates."
        )
    )
    if len(result.val_steps):
        best = float(np.min(result.val_loss))
        text += (
            f" On the held-out last {n_val:,} characters the best model reaches "
            f"{best / math.log(2):.3f} bits per character (perplexity {math.exp(best):.2f}) "
            f"after {result.best_step:,} updates."
        )
    return f"<p>{text}</p>"


def dropped_tags(cfg) -> set[str]:
    """The notebook cell tags the rendered report leaves out: part VI ("analysis") when it is
    turned off, and in the assignment layout everything but the four parts the assignment
    asks for (cells tagged "full": the model's statement, parts V and VI, the appendix)."""
    drop = set() if cfg.analysis else {"analysis"}
    return drop | ({"analysis", "full"} if cfg.layout == "assignment" else set())


def warning_html(facts: dict, eta: float | None = None) -> str:
    """The box at the top of the report of a failed run (metrics' "verdict"): what happened
    and what to try; "" for a run that did not fail."""
    found = facts.get("verdict") or {}
    if not found.get("failed"):
        return ""
    what = "; ".join(found["findings"])
    advice = found["advice"] + (f" (now {eta:g})" if eta is not None else "")
    return (
        '<div class="rnn-warning" role="alert"><p><b>Training failed.</b> '
        f"{_e(what[:1].upper() + what[1:])}. <b>Try:</b> {_e(advice)}. The parts below show "
        "this run as it is.</p></div>"
    )


def summary_html(facts: dict, n_val: int, refs: dict | None = None) -> str:
    """The summary a reader reads first, from metrics' figures (facts): the validation
    score, where it sits among the n-gram baselines, the gradient check and the training
    time. refs: where the details are, by topic ("validation", "baselines", "gradient
    check"), e.g. {"baselines": "Table 3"}."""
    refs = refs or {}

    def see(topic):
        return f" ({_e(refs[topic])})" if topic in refs else ""

    def after(step):
        return "the untrained one" if step == 0 else f"after {step:,} updates"

    items = []
    if (facts.get("verdict") or {}).get("failed"):
        items.append("<b>Training failed</b>: see the box above.")
    bits = facts.get("best_val_bits_per_char")
    if bits is not None:
        items.append(
            f"<b>Result.</b> {bits:.3f} bits per character (perplexity "
            f"{facts['best_val_perplexity']:.2f}) on the held-out last {n_val:,} characters, "
            f"by the best model, {after(facts['best_step'])}{see('validation')}. The "
            f"same validation split chose that model (the lowest of "
            f"{len(facts.get('val_steps', [])):,} passes) and scores it, so the figure is a "
            f"little optimistic."
        )
    elif facts.get("best_smooth_loss") is not None:
        items.append(
            f"<b>Result.</b> No validation split (val_fraction = 0): the best model is the one "
            f"of the lowest smooth loss, {facts['best_smooth_loss']:.2f} nats per sequence, "
            f"{after(facts['best_step'])}{see('validation')}."
        )
    if facts.get("baselines") and bits is not None:
        from .analysis.show import placement  # show imports this module

        rows = [(name, value) for name, value in facts["baselines"]]
        placed = placement(rows, bits).removesuffix(".")
        items.append(f"<b>Against n-gram models.</b> {_e(placed)}{see('baselines')}.")
    check = facts.get("gradient_check")
    if check:
        names = ", ".join(check["errors"])
        if check["passed"]:
            verdict = (
                f"passed: the largest error, {check['largest']:.2e} (in {_e(check['largest_in'])}"
                f"), is below {check['pass_below']:g} for all of {_e(names)}"
            )
        else:
            failing = [n for n, err in check["errors"].items() if err >= check["pass_below"]]
            verdict = (
                f"<b>FAILED</b>: the error of {_e(', '.join(failing))} is not below "
                f"{check['pass_below']:g} (largest {check['largest']:.2e}, in "
                f"{_e(check['largest_in'])})"
            )
        items.append(
            f"<b>Gradient check.</b> BPTT against finite differences {verdict}"
            f"{see('gradient check')}."
        )
    if facts.get("updates_per_sec") is not None:
        n_updates = facts["config"]["n_updates"]
        made = facts.get("updates", n_updates)
        stopped = (
            f", stopped by the time budget of {facts['config']['time_budget']:g} s (of "
            f"{n_updates:,} updates allowed)"
            if facts.get("stopped_by_budget")
            else ""
        )
        items.append(
            f"<b>Training.</b> {made:,} updates ({facts['epochs']:.2f} epochs) in "
            f"{facts['seconds']:.1f} s{stopped}, {facts['updates_per_sec']:,.0f} updates "
            f"per second."
        )
    body = "".join(f"<li>{item}</li>" for item in items)
    return f'<section class="rnn-summary"><h2>Summary</h2><ul>{body}</ul></section>'


def samples_html(samples: dict, vocab) -> str:
    """The samples taken during training, in two columns (each is short)."""
    parts = []
    for step in sorted(samples):
        label = "before the first update" if step == 0 else f"after {step:,} updates"
        parts.append(
            f'<div class="rnn-sample"><h4>step {step:,} ({label})</h4>'
            + pre(vocab.decode(samples[step]))
            + "</div>"
        )
    return '<div class="rnn-samples">' + "\n".join(parts) + "</div>"


def passage_html(text: str) -> str:
    """A long sample, set in two columns: verse lines are short."""
    return f'<div class="rnn-passage">{pre(text)}</div>'


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
    """How long the run trained (rnn.train.TrainResult has these too)."""

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
    rows += [(name, _show(value)) for name, value in config.items() if name not in HEADING]
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
        byline = " · ".join(_e(b) for b in self.byline)
        return (
            f'<header class="rnn-header"><h1>{_e(self.title)}</h1>'
            + (f'<p class="rnn-byline">{byline}</p>' if byline else "")
            + f'<p class="rnn-runline">{_e(run_line(self.rows))}</p>'
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
NUMBER_DEFAULTS = {"layers": 1, "dropout": 0, "lr_decay": 1, "lr_decay_after": 10, "time_budget": 0}


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
    if number["time_budget"]:
        training += [f"time budget {number['time_budget']:g} s"]
    parts = [", ".join(network), ", ".join(training), named.get("corpus"), named.get("run")]
    return " · ".join(p for p in parts if p)


def header_for(trained) -> RunHeader:
    """The heading and run table of an rnn.run.Run, with the commit of the package's own
    checkout (none for an installed copy)."""
    cfg, corpus, result = trained.cfg, trained.data.corpus, trained.result
    finished = trained.finished_at.replace("T", " ")[:16]
    commit = git_commit(Path(__file__).resolve().parent)
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


def _show(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str):
        return repr(value) if value.strip() != value or not value else value
    return str(value)


def figure_html(fig, alt: str, caption: str = "") -> str:
    """The figure as an embedded PNG with a text alternative, in a <figure>, with `caption`
    (a Numbering.figure line) under it when given."""
    data = base64.b64encode(png(fig)).decode("ascii")
    below = f"<figcaption>{caption}</figcaption>" if caption else ""
    return (
        f'<figure class="rnn-figure"><img alt="{html.escape(alt, quote=True)}" '
        f'src="data:image/png;base64,{data}">{below}</figure>'
    )


class Numbering:
    """Figures and tables numbered in the order the report first captions them.

    Each is asked for by a key, so that running a notebook cell again keeps its number;
    parts a layout leaves out are not captioned at all, so the numbers have no gaps."""

    def __init__(self):
        self.numbers: dict[str, dict[str, int]] = {"Figure": {}, "Table": {}}

    def number(self, kind: str, key: str) -> int:
        seen = self.numbers[kind]
        return seen.setdefault(key, len(seen) + 1)

    def figure(self, key: str, text: str) -> str:
        """A figure's caption, "Figure n. text" (text escaped), for figure_html's caption."""
        return f"<b>Figure {self.number('Figure', key)}.</b> {_e(text)}"

    def table(self, key: str, text: str) -> str:
        """A table's caption line, "Table n. text", set above the table."""
        return f'<p class="rnn-caption"><b>Table {self.number("Table", key)}.</b> {_e(text)}</p>'

    def figure_line(self, key: str, text: str, above: bool = True) -> str:
        """A figure's caption as a line of its own, for figures made elsewhere (part VI),
        kept on the page of the figure it is set above (or below)."""
        where = "" if above else " rnn-below"
        return f'<p class="rnn-caption{where}">{self.figure(key, text)}</p>'


def loss_figure(result, seq_length: int, loss: str = "sum"):
    """Smooth training loss against update step, epoch boundaries numbered, and the
    validation loss in the same units on the same axis: nats per seq_length characters for
    the summed loss (validation's mean nats per character times seq_length), nats per
    character for the mean loss."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no backend
    from matplotlib.ticker import StrMethodFormatter

    per = seq_length if loss == "sum" else 1
    fig = Figure(figsize=(7.2, 3.0), dpi=150)
    ax = fig.subplots()
    steps = np.arange(len(result.smooth_loss))
    ax.plot(steps, result.smooth_loss, color="C0", lw=1.2, label="smooth training loss")
    if len(result.val_steps):
        # Markers only: validation is measured at these steps and nowhere between them.
        ax.plot(
            result.val_steps,
            np.asarray(result.val_loss) * per,
            "o",
            color="C3",
            ms=4,
            label=(
                f"validation loss (mean per character × {seq_length}), where measured"
                if per != 1
                else "validation loss (mean per character), where measured"
            ),
        )
    _epoch_marks(ax, result.epochs, result.per_epoch)
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel("update step")
    ax.set_ylabel(
        f"loss (nats per {seq_length} characters)" if per != 1 else "loss (nats per character)"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig


def _epoch_marks(ax, epochs: float, per_epoch: int) -> None:
    """Dashed lines where epochs begin, each numbered above the plot (every k-th when many)."""
    starts = range(1, int(math.ceil(epochs)))
    if not per_epoch or not starts:
        return
    every = max(1, math.ceil(len(starts) / 10))
    for k in starts:
        ax.axvline(k * per_epoch, color="0.55", ls="--", lw=0.7)
    top = ax.secondary_xaxis("top")
    shown = [k for k in starts if (k + 1) % every == 0 or k == 1]
    top.set_xticks([k * per_epoch for k in shown], labels=[f"epoch {k + 1}" for k in shown])
    top.tick_params(labelsize=8, length=0, pad=2)


def png(fig) -> bytes:
    """The figure as PNG bytes (figure_html embeds them)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def metrics(result, cfg, *, gradcheck: dict | None = None, baselines=None) -> dict:
    """The run's figures, for sweeps and for anyone comparing runs; the report's summary
    states them. gradcheck: part I's errors by parameter (None: not run); baselines: part
    VI's (model, bits per character) rows (None: not computed)."""
    from .gradcheck import PASS_BELOW
    from .outcome import verdict

    found = verdict(result)
    out = {
        "config": cfg.to_dict(),
        "final_smooth_loss": float(result.smooth_loss[-1]) if len(result.smooth_loss) else None,
        "best_smooth_loss": result.best_smooth_loss if len(result.smooth_loss) else None,
        "best_step": int(result.best_step),
        "best_by": result.best_by,
        "seconds": result.seconds,
        "updates_per_sec": result.updates_per_sec if len(result.loss) else None,
        "epochs": result.epochs,
        "n_params": int(result.params.flatten().size),
        "updates": len(result.loss),  # n_updates, or fewer where time_budget stopped training
        "stopped_by_budget": bool(result.stopped_by_budget),
        "smooth_loss_every_100": [float(x) for x in result.smooth_loss[::100]],
        "verdict": {
            "failed": found.failed,
            "findings": list(found.findings),
            "advice": found.advice,
        },
    }
    if gradcheck:
        worst = max(gradcheck, key=lambda name: float(gradcheck[name]))
        out["gradient_check"] = {
            "errors": {name: float(err) for name, err in gradcheck.items()},
            "largest": float(gradcheck[worst]),
            "largest_in": worst,
            "pass_below": PASS_BELOW,
            "passed": all(float(err) < PASS_BELOW for err in gradcheck.values()),
        }
    if baselines:
        out["baselines"] = [[name, float(bits)] for name, bits in baselines]
    if len(result.val_steps):
        best = float(np.min(result.val_loss))
        out |= {
            "val_steps": [int(s) for s in result.val_steps],
            "val_loss": [float(v) for v in result.val_loss],
            # wall seconds of training at each pass: the validation curve against time
            "val_seconds": [float(v) for v in result.val_seconds],
            "best_val_bits_per_char": best / math.log(2),
            "best_val_perplexity": math.exp(best),
        }
    return out


def write_metrics(path, values: dict) -> None:
    write_atomic(path, json.dumps(_finite(values), indent=1, allow_nan=False) + "\n")


def _finite(x):
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def curves_figure(rows):
    """Smooth loss per character of every successful sweep point, overlaid (from
    metrics.json's every-100th, divided by seq_length for a summed loss: rnn.sweep.table).
    Ten colours (tab10), then dashes: up to ten points stay apart; the legend sits below the
    plot so long point names do not cover the curves."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    tab10 = colormaps["tab10"]
    drawn = [row for row in rows if row.get("curve")]
    ncol = 2 if max((len(str(r["point"])) for r in drawn), default=0) > 30 else 3
    legend_rows = math.ceil(len(drawn) / ncol)
    fig = Figure(figsize=(7.2, 3.6 + 0.22 * legend_rows), dpi=150, layout="constrained")
    ax = fig.subplots()
    for i, row in enumerate(drawn):
        ax.plot(
            np.arange(len(row["curve"])) * 100,
            row["curve"],
            lw=1.1,
            color=tab10(i % 10),
            ls=("-", "--", ":")[(i // 10) % 3],
            label=str(row["point"]),
        )
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel("update step")
    ax.set_ylabel("smooth loss (nats per character)")
    ax.grid(alpha=0.3)
    if drawn:
        fig.legend(loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)
    return fig
