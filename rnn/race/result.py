"""The race's record shown: both curves and the final figures as text for the terminal,
as race.html in the report's style, and written as OUT/race.json and OUT/race.html
(nothing is written unless the race finished)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from rnn.race.contest import (
    EVAL_POINTS,
    MIN_POINTS,
    NAMES,
    SIDES,
)
from rnn.runs.paths import TEMPLATES


def curve_rows(rec: dict, n: int = 10) -> list[list[str]]:
    """The curves at n + 1 evenly spaced seconds of the budget: each side's latest validation
    at or before that second (bits per character), then each side's last point."""
    sides = [side for side in SIDES if side in rec["sides"]]
    rows = []
    places = 0 if rec["budget"] >= 10 * n else 1 if rec["budget"] >= n else 2
    for i in range(n + 1):
        t = rec["budget"] * i / n
        row = [f"{t:,.{places}f}" + (" (end)" if i == n else "")]
        for side in sides:
            points = rec["sides"][side]["points"]
            before = [pt for pt in points if pt[0] <= t + 1e-9] if i < n else points
            row.append(f"{before[-1][3]:.3f}" if before else "")
        rows.append(row)
    return rows


def final_rows(rec: dict) -> list[list[str]]:
    sides = [rec["sides"][side] for side in SIDES if side in rec["sides"]]

    def row(name, fmt):
        return [name] + [fmt(s) for s in sides]

    return [
        row("best validation bits/char", lambda s: f"{s['best_bits_per_char']:.3f}"),
        row("last validation bits/char", lambda s: f"{s['last_bits_per_char']:.3f}"),
        row("updates", lambda s: f"{s['updates']:,}"),
        row("characters", lambda s: f"{s['characters']:,}"),
        row("characters/s of training", lambda s: f"{s['chars_per_second']:,.0f}"),
        row("epochs", lambda s: f"{s['epochs']:.2f}"),
        row("seconds of training", lambda s: f"{s['train_seconds']:.1f}"),
        row("seconds of validation", lambda s: f"{s['eval_seconds']:.1f}"),
        row("validations", lambda s: f"{len(s['points'])}"),
    ]


def headers(rec: dict) -> list[str]:
    return [NAMES[side] for side in SIDES if side in rec["sides"]]


def text_table(header, rows) -> str:
    """Columns padded to their widths: the first left, the others right."""
    table = [list(header)] + rows
    widths = [max(len(r[j]) for r in table) for j in range(len(header))]
    lines = []
    for r in table:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def summary(rec: dict) -> str:
    """What the terminal shows at the end: both curves, then the figures side by side."""
    names = headers(rec)
    out = [
        "validation bits per character against seconds of training (the latest point at or "
        "before each):",
        text_table(["seconds"] + names, curve_rows(rec)),
        "",
        text_table([""] + names, final_rows(rec)),
    ]
    for side, s in rec["sides"].items():
        if len(s["points"]) < MIN_POINTS:
            out.append(f"note: {NAMES[side]}'s curve has {len(s['points'])} points")
    if rec["torch_missing"]:
        out.append(rec["torch_missing"])
    return "\n".join(out)


def curves_figure(rec: dict):
    """Both validation curves against seconds of training, in one figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 3.2), dpi=150, layout="constrained")
    ax = fig.subplots()
    for i, side in enumerate(side for side in SIDES if side in rec["sides"]):
        pts = np.array(rec["sides"][side]["points"], dtype=float)
        ax.plot(pts[:, 0], pts[:, 3], "o-", ms=3, lw=1.2, color=f"C{i}", label=NAMES[side])
    ax.set_xlabel("seconds of training")
    ax.set_ylabel("validation bits per character")
    ax.set_xlim(0, rec["budget"] * 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    return fig


def page(rec: dict) -> str:
    """race.html: a page in the report's style (report.css), every text escaped."""
    from rnn.report import figures, markup

    e = html.escape
    names = headers(rec)
    css = (TEMPLATES / "report" / "report.css").read_text(encoding="utf-8")
    budget = f"{rec['budget']:,.0f}"
    corpus = rec["corpus"]
    how = (
        "both at once, each in a process of its own pinned to its own core"
        if rec["concurrent"]
        else "one after the other"
    )
    parts = [
        f"<h1>The race: {budget} seconds of training on one core</h1>",
        f'<p class="rnn-runline">{e(Path(corpus["path"]).name)} ({corpus["characters"]:,} '
        f"characters, K = {corpus['K']}, SHA-256 {e(corpus['sha256'][:16])}…), the last "
        f"{corpus['val_characters']:,} held out for validation on both sides; configuration "
        f"<code>{e(rec['config_file'])}</code>; commit {e(rec['commit'] or 'unknown')}; "
        f"{e(rec['started'])}</p>",
    ]
    if rec["torch_missing"]:
        parts.append(f'<div class="rnn-warning"><p>{e(rec["torch_missing"])}.</p></div>')
    parts += [
        "<h2>Validation against seconds</h2>",
        figures.figure_html(
            curves_figure(rec),
            "validation bits per character against seconds of training, one curve a side",
            "<b>Figure 1.</b> Validation bits per character of the held-out text against "
            "seconds of training (validation excluded), each point where it was measured.",
        ),
        '<p class="rnn-caption"><b>Table 1.</b> Each side\'s latest validation at or before '
        "each second (bits per character).</p>",
        markup.table(curve_rows(rec), ["seconds"] + names),
        "<h2>The figures side by side</h2>",
        '<p class="rnn-caption"><b>Table 2.</b> At the end of the budget. Characters per '
        "second are of training alone; validation's time is given apart.</p>",
        markup.table(final_rows(rec), [""] + names),
        f"<p>The sides ran {e(how)}, one thread each; the budget counts seconds of training "
        f"on each side, validation excluded (timed apart). Each side validates before its "
        f"first update, every {rec['budget'] / EVAL_POINTS:g} seconds of training and, "
        f"after the budget, its last model, reading the validation text as one stream from "
        f"the state its first training stream carries.</p>",
        "<h2>The configurations</h2>",
    ]
    for side, s in rec["sides"].items():
        parts.append(f"<h3>{e(NAMES[side])}</h3><p>{e(s['description'].rstrip('.'))}.</p>")
        items = sorted(s["configuration"].items())
        parts.append(markup.compact_table([(k, _shown(v)) for k, v in items], pairs=2))
    parts.append("<h2>The machine</h2>")
    load = rec["load_average"]
    rows = [(k, str(v)) for k, v in rec["machine"].items()]
    rows.append(("load average before, after", f"{load['before']}, {load['after']}"))
    if "torch" in rec["sides"]:
        rows.append(("torch", rec["sides"]["torch"]["versions"]["torch"]))
    parts.append(markup.table(rows, kind="keyvalue"))
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f"<title>The race: {budget} seconds</title><style>{css}</style></head>"
        f'<body class="jp-Notebook"><main><div class="jp-RenderedHTMLCommon">{body}</div>'
        "</main></body></html>\n"
    )


def _shown(value) -> str:
    if isinstance(value, str):
        return repr(value) if value.strip() != value or not value else value
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def write(out: Path, rec: dict) -> tuple[Path, Path]:
    """OUT/race.json and OUT/race.html, each replaced in one rename."""
    from rnn.report.metrics import finite
    from rnn.runs.atomic import write_atomic

    out = Path(out)
    data = json.dumps(finite(rec), indent=1, allow_nan=False, default=str) + "\n"
    html_text = page(rec)
    write_atomic(out / "race.json", data)
    write_atomic(out / "race.html", html_text)
    return out / "race.json", out / "race.html"
