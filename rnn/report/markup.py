"""HTML pieces every document shares: escaping, tables, preformatted text, the
numbering of figures and tables. Every string from a user, the corpus or the model is
escaped here; the look is rnn/report/templates/report/report.css."""

from __future__ import annotations

import html
import math

import numpy as np


def escape(value) -> str:
    """Any value as HTML text: markup in it is shown, never run."""
    return html.escape(str(value))


def cell_html(tag: str, value) -> str:
    """A table cell; numbers are set right-aligned so their digits line up."""
    attr = ' class="num"' if is_numeric(value) else ""
    return f"<{tag}{attr}>{escape(value)}</{tag}>"


def is_numeric(value) -> bool:
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
            all(is_numeric(row[j]) for row in rows if j < len(row) and str(row[j]) != "")
            and any(j < len(row) and str(row[j]) != "" for row in rows)
            for j in range(len(header))
        ]
        head = (
            "<thead><tr>"
            + "".join(
                f'<th class="num">{escape(h)}</th>' if num else f"<th>{escape(h)}</th>"
                for h, num in zip(header, numeric)
            )
            + "</tr></thead>"
        )
    body = "".join("<tr>" + "".join(cell_html("td", c) for c in row) + "</tr>" for row in rows)
    cls = f"rnn-table rnn-{kind}" if kind else "rnn-table"
    return f'<table class="{cls}">{head}<tbody>{body}</tbody></table>'


def compact_table(rows, pairs: int = 3, long: int = 28) -> str:
    """(name, value) rows in little space: rows whose value is longer than `long` characters
    span the width, one a line, and the short ones follow in `pairs` name-value column pairs,
    filled down the columns. Every cell is escaped."""
    wide = [(k, v) for k, v in rows if len(str(v)) > long]
    short = [(k, v) for k, v in rows if len(str(v)) <= long]
    out = [
        f'<tr><th scope="row">{escape(k)}</th><td colspan="{2 * pairs - 1}">{escape(v)}</td></tr>'
        for k, v in wide
    ]
    depth = math.ceil(len(short) / pairs) if short else 0
    for i in range(depth):
        cells = []
        for j in range(pairs):
            k = i + j * depth
            if k < len(short):
                name, value = short[k]
                cells.append(f'<th scope="row">{escape(name)}</th>' + cell_html("td", value))
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
        f'<div class="rnn-cell"><h4>{escape(label)}</h4>'
        f"<p>mean log-probability {logp:.3f} nats per character</p>{pre(text)}</div>"
        for label, text, logp in items
    )
    return f'<div class="rnn-grid">{cells}</div>'


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
        return f"<b>Figure {self.number('Figure', key)}.</b> {escape(text)}"

    def table(self, key: str, text: str) -> str:
        """A table's caption line, "Table n. text", set above the table."""
        return (
            f'<p class="rnn-caption"><b>Table {self.number("Table", key)}.</b> {escape(text)}</p>'
        )

    def figure_line(self, key: str, text: str, above: bool = True) -> str:
        """A figure's caption as a line of its own, for figures made elsewhere (part VI),
        kept on the page of the figure it is set above (or below)."""
        where = "" if above else " rnn-below"
        return f'<p class="rnn-caption{where}">{self.figure(key, text)}</p>'
