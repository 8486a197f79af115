"""The sweep's page: one row per point, best first, what varied in words, rendered from
notebooks/sweep.ipynb like the report."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from rnn.report import execution, markup
from rnn.runs.paths import notebook_path
from rnn.sweep.execute import point_record

SWEEP_NOTEBOOK = notebook_path("sweep.ipynb")


def table(sweep_dir: Path) -> list[dict]:
    """One row per point from sweep.json and each point's metrics.json, best first:
    by best validation bits/char where there are any, else by best smooth loss."""
    rows = []
    summary = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))
    for rec in summary["points"]:
        out = sweep_dir / "points" / rec["point"]
        row = {
            "point": rec["point"],
            "status": rec["status"],
            "params": rec["params"],
            "seconds": rec.get("seconds"),
            "error": rec.get("error", ""),
        }
        metrics_file = out / "metrics.json"
        if rec["status"] != "failed" and point_record(out) is None:
            row |= {"status": "changed", "error": "its folder was rewritten since the sweep"}
        elif rec["status"] != "failed" and metrics_file.exists():
            m = json.loads(metrics_file.read_text(encoding="utf-8"))
            # Every point's smooth loss per character, whatever its loss and seq_length, so
            # that points of a summed and of a mean loss share one scale.
            config = m.get("config", {})
            per = config.get("seq_length", 1) if config.get("loss", "sum") == "sum" else 1
            row |= {
                "best_smooth_loss": m["best_smooth_loss"] / per,
                "final_smooth_loss": m["final_smooth_loss"] / per,
                "val_bits_per_char": m.get("best_val_bits_per_char"),
                "seconds": row["seconds"] or m["seconds"],
                "updates_per_sec": m.get("updates_per_sec"),
                "n_params": m.get("n_params"),
                "curve": [v / per for v in m["smooth_loss_every_100"]],
                "passage": m.get("passage", ""),
                "report": f"points/{rec['point']}/report.html",
            }
        rows.append(row)

    def quality(row):
        if row["status"] in ("failed", "changed"):
            return (2, math.inf)
        v = row.get("val_bits_per_char")
        return (0, v) if v is not None else (1, row.get("best_smooth_loss") or math.inf)

    return sorted(rows, key=quality)


def summary_html(sweep_dir: Path) -> str:
    """What the sweep is: its name, corpus, what varied (in words) and the parameters every
    point shares, escaped."""
    summary = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))
    corpus = summary["corpus"]
    shared = shared_parameters(summary)
    rows = [
        ("sweep", summary["name"]),
        ("corpus", f"{Path(corpus['path']).name} (SHA-256 {corpus['sha256'][:12]})"),
        ("compared", grid_words(summary)),
        ("fixed parameters", ", ".join(_setting(k, v) for k, v in shared.items()) or "none"),
        ("points", f"{len(summary['points'])}; every other parameter at its default"),
    ]
    return markup.table(rows, kind="keyvalue")


def title(sweep_dir: Path) -> str:
    """The page's title: the sweep and what it compared ("cells: cell and m compared")."""
    summary = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))
    names = list(summary["grid"])
    for point in summary.get("listed_points", []):
        names += [n for n in point if n not in names]
    return f"Sweep {summary['name']}: {_and(names)} compared" if names else summary["name"]


def shared_parameters(summary: dict) -> dict:
    """The sweep's fixed parameters that every point has (a listed point may set its own)."""
    points = [p["params"] for p in summary["points"]]
    return {
        name: points[0][name] if points else value
        for name, value in summary["fixed"].items()
        if all(p.get(name) == points[0].get(name) for p in points)
    }


def grid_words(summary: dict) -> str:
    """The points in words: "cell: vanilla, lstm, gru at m = 100; plus lstm with m = 45 and
    gru with m = 54"."""
    grid, listed = summary["grid"], summary.get("listed_points", [])
    text = "; ".join(f"{k}: {', '.join(_word(v) for v in values)}" for k, values in grid.items())
    if len(grid) > 1:
        text += " (every combination)"
    shared = shared_parameters(summary)
    # fixed values that listed points change: say what the grid's points have
    partial = {k: v for k, v in summary["fixed"].items() if k not in shared}
    if grid and partial:
        text += " at " + ", ".join(_setting(k, v) for k, v in partial.items())
    if listed:
        text += ("; plus " if text else "") + _and([_point_words(p) for p in listed])
    return text


def _point_words(point: dict) -> str:
    """A listed point: "lstm with m = 45" when it leads with a word, else "eta = 0.2, m = 30"."""
    items = list(point.items())
    if isinstance(items[0][1], str):
        rest = ", ".join(_setting(k, v) for k, v in items[1:])
        return _word(items[0][1]) + (f" with {rest}" if rest else "")
    return ", ".join(_setting(k, v) for k, v in items)


def _setting(name: str, value) -> str:
    """ "m = 45", never broken across lines."""
    return f"{name}\u00a0=\u00a0{_word(value)}"


def _word(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def table_html(rows: list[dict]) -> str:
    """The points, best first, each linking its own report; numbers set right, point names
    never broken; every string escaped."""

    def fmt(x, spec):
        return "" if x is None else format(x, spec)

    body = []
    for r in rows:
        name = html.escape(r["point"])
        link = f'<a href="{html.escape(r["report"])}">{name}</a>' if r.get("report") else name
        status = r["status"] + (f": {r['error']}" if r["error"] else "")
        numbers = [
            fmt(r.get("val_bits_per_char"), ".3f"),
            fmt(r.get("best_smooth_loss"), ".3f"),
            fmt(r.get("final_smooth_loss"), ".3f"),
            fmt(r.get("n_params"), ","),
            fmt(r.get("updates_per_sec"), ",.0f"),
            fmt(r.get("seconds"), ".1f"),
        ]
        body.append(
            f'<tr><td class="rnn-point">{link}</td>'
            + "".join(f'<td class="num">{html.escape(c)}</td>' for c in numbers)
            + f"<td>{html.escape(status)}</td></tr>"
        )
    head = (
        "validation bits/char",
        "best smooth loss (nats/char)",
        "final smooth loss (nats/char)",
        "parameters",
        "updates/s",
        "time (s)",
    )
    return (
        '<table class="rnn-table"><thead><tr><th>point</th>'
        + "".join(f'<th class="num">{h}</th>' for h in head)
        + "<th>status</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


def render_report(sweep_dir: Path) -> Path:
    """reports/<sweep>/index.html: the sweep notebook, executed and rendered like the report."""
    executed = sweep_dir / "index.ipynb"
    execution.execute(
        SWEEP_NOTEBOOK, executed, {"sweep_dir": str(sweep_dir.resolve())}, cwd=sweep_dir
    )
    with_html = sweep_dir / "index.html"
    execution.render(executed, with_html)
    return with_html


def curves_figure(rows):
    """Smooth loss per character of every successful sweep point, overlaid (from
    metrics.json's every-100th, divided by seq_length for a summed loss: `table`).
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
