"""Section VI's HTML and figures: tables, text shaded character by character, legends.

Everything is static HTML with inline styles (no script), so the report reads offline and
prints with its colours. Every piece of text from the corpus is escaped here.
"""

from __future__ import annotations

import html
import math

import numpy as np

from rnn.report.analysis import gradflow
from rnn.report.analysis.gradflow import FALL, steps_to_fall
from rnn.report.analysis.units import WEAK, Match, strongest
from rnn.report.figures import figure_html
from rnn.report.markup import table

PRINT = "print-color-adjust: exact; -webkit-print-color-adjust: exact;"
TEXT_STYLE = (
    "font-family: monospace; font-size: 0.85em; line-height: 1.45; white-space: pre-wrap; "
    "padding: 0.5em; border: 1px solid #ddd; border-radius: 4px; background: #fff; " + PRINT
)
SURPRISAL_CMAP = "YlOrRd"
UNIT_CMAP = "RdBu_r"  # blue for -1, white for 0, red for +1
LINE_BREAK = "\u21b5"  # shown, shaded, in front of each line break
TIE = 0.01  # bits per character: closer than this, two models are called level


# --- colours --------------------------------------------------------------------------------


def colours(values, cmap: str, lo: float, hi: float) -> list[str]:
    """Hex colours of values on a matplotlib colormap, lo and hi at its ends (clipped)."""
    import matplotlib

    scaled = np.clip((np.asarray(values, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)
    rgb = matplotlib.colormaps[cmap](np.nan_to_num(scaled, nan=0.0))[:, :3]
    return ["#" + "".join(f"{v:02x}" for v in c) for c in np.round(rgb * 255).astype(int)]


def _ink(background: str) -> str:
    """Black or white text, whichever reads better on the background."""
    r, g, b = (int(background[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "#fff"


def shaded_text(text: str, backgrounds, titles=None) -> str:
    """text in monospace with line breaks kept, character i on backgrounds[i] (a hex colour,
    or None for none); a line break shows as a shaded arrow before the break. titles[i], if
    given, is shown on hovering over character i."""
    parts = []
    for i, ch in enumerate(text):
        shown = LINE_BREAK if ch == "\n" else html.escape(ch)
        bg = backgrounds[i]
        title = f' title="{html.escape(titles[i])}"' if titles is not None else ""
        if bg is None:
            parts.append(f"<span{title}>{shown}</span>")
        else:
            parts.append(f'<span style="background:{bg};color:{_ink(bg)}"{title}>{shown}</span>')
        if ch == "\n":
            parts.append("\n")
    return f'<div style="{TEXT_STYLE}">{"".join(parts)}</div>'


def legend(cmap: str, lo: float, hi: float, ticks, caption: str) -> str:
    """A colour bar of 24 swatches from lo to hi, labelled at ticks (value, label) pairs."""
    edges = np.linspace(lo, hi, 25)
    swatch = colours((edges[:-1] + edges[1:]) / 2, cmap, lo, hi)
    bar = "".join(
        f'<span style="display:inline-block;width:1.2em;height:0.9em;background:{c};{PRINT}">'
        "</span>"
        for c in swatch
    )
    width = 24 * 1.2
    labels = "".join(
        f'<span style="position:absolute;left:{(v - lo) / (hi - lo) * width:.2f}em;'
        f'transform:translateX(-50%);white-space:nowrap">{html.escape(label)}</span>'
        for v, label in ticks
    )
    return (
        f'<div style="margin:0.4em 0 1.6em 0;padding-left:0.8em;font-size:0.8em;{PRINT}">'
        f"<div>{html.escape(caption)}</div>"
        f'<div style="line-height:0;margin-top:0.2em">{bar}</div>'
        f'<div style="position:relative;height:1em;width:{width}em">{labels}</div></div>'
    )


def side_by_side(left: str, right: str) -> str:
    """Two blocks beside each other, wrapping under each other on a narrow page."""
    return (
        '<div class="rnn-shaded-block" '
        'style="display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start">'
        f'<div style="flex:3 1 28em;min-width:0">{left}</div>'
        f'<div style="flex:1 1 16em">{right}</div></div>'
    )


# --- 1. baselines -----------------------------------------------------------------------------


def baselines_html(rows, rnn_bits: float) -> str:
    """The n-gram table with the RNN's row, and a sentence placing the RNN among them.

    rows: (model, bits per character) from ngram.baselines; rnn_bits: the best model's."""
    shown = [(name, f"{bits:.3f}") for name, bits in rows]
    shown.append(("RNN, best model", f"{rnn_bits:.3f}"))
    head = ("model", "bits per character")
    return table(shown, header=head) + f"<p>{html.escape(placement(rows, rnn_bits))}</p>"


def placement(rows, rnn_bits: float) -> str:
    """Where rnn_bits falls among the n-gram models (rows after the uniform model)."""
    if not math.isfinite(rnn_bits):
        return "There is no RNN figure to place among the n-gram models."
    grams = rows[1:]
    weaker = [(name, bits) for name, bits in grams if bits > rnn_bits]  # the RNN beats these
    stronger = [(name, bits) for name, bits in grams if bits <= rnn_bits]
    ours = f"At {rnn_bits:.3f} bits per character the RNN"
    close = [(name, bits) for name, bits in grams if abs(bits - rnn_bits) < TIE]
    if close:
        name, bits = close[0]
        return (
            f"{ours} is level with the {name} model ({bits:.3f}: within {TIE:g} bits per "
            "character, too close to call better or worse)."
        )
    if not stronger:
        return f"{ours} beats every n-gram model in the table, the highest order included."
    if not weaker:
        name, bits = max(grams, key=lambda nb: nb[1])
        return f"{ours} is worse than every n-gram model here, even the {name} ({bits:.3f})."
    below = min(weaker, key=lambda nb: nb[1])  # the best model the RNN beats
    above = max(stronger, key=lambda nb: nb[1])  # the weakest model that beats the RNN
    return (
        f"{ours} beats the {below[0]} model ({below[1]:.3f}) and is beaten by the "
        f"{above[0]} model ({above[1]:.3f})."
    )


# --- 2. surprisal -----------------------------------------------------------------------------


def surprisal_html(text: str, bits, K: int) -> str:
    """text with each character shaded by its surprisal in bits, from 0 (white) to log2 K
    (dark red: no better than a uniform guess); NaN (a character only read) left unshaded."""
    top = math.log2(K) if K > 1 else 1.0
    bits = np.asarray(bits, dtype=np.float64)
    shade = colours(bits, SURPRISAL_CMAP, 0.0, top)
    backgrounds = [None if np.isnan(b) else c for b, c in zip(bits, shade)]
    titles = ["read only" if np.isnan(b) else f"{b:.2f} bits" for b in bits]
    ticks = [(v, f"{v:g}") for v in range(0, int(top) + 1)] + [(top, f"≥ {top:.2f}")]
    if top - int(top) < 0.35:  # the last integer label would overlap the top one
        ticks.pop(-2)
    caption = (
        "surprisal −log2 p(character), bits; the darkest shade is log2 K, no better than "
        f"guessing uniformly; {LINE_BREAK} marks a line break"
    )
    return legend(SURPRISAL_CMAP, 0.0, top, ticks, caption) + shaded_text(text, backgrounds, titles)


def kinds_table(passage_rows, split_rows) -> str:
    """Mean surprisal by kind of position in the passage and in the whole split (rows from
    surprisal.by_kind), then the rule of each kind."""
    in_passage = {name: (n, bits) for name, _, n, bits in passage_rows}
    rows = []
    for name, _, n, bits in split_rows:
        p = in_passage.get(name)
        rows.append((name, f"{p[1]:.2f} ({p[0]:,})" if p else "–", f"{bits:.2f} ({n:,})"))
    rules = "; ".join(
        f"<i>{html.escape(name)}</i>: {html.escape(rule)}" for name, rule, _, _ in split_rows
    )
    head = ("kind", "passage: bits (n)", "whole split: bits (n)")
    return table(rows, header=head) + f'<p style="font-size:0.8em">{rules}.</p>'


# --- 3. units ---------------------------------------------------------------------------------


def units_table(matches: list[Match]) -> str:
    """Every property with its best unit and r; weak and undefined correlations said so."""
    rows = []
    for mt in matches:
        if mt.unit is None:
            rows.append((mt.name, mt.definition, "–", "–", f"skipped: {mt.note}"))
        else:
            rows.append(
                (mt.name, mt.definition, mt.unit, f"{mt.r:+.2f}", "weak" if mt.weak else "")
            )
    return table(rows, header=("property", "definition", "unit", "r", ""))


def unit_html(text: str, activation, match: Match) -> str:
    """text shaded by one unit's activation (after reading each character), -1 blue to +1 red."""
    a = np.asarray(activation, dtype=np.float64)
    label = f"{match.name}: unit {match.unit}, r = {match.r:+.2f}" + (
        f" (weak: |r| < {WEAK:g})" if match.weak else ""
    )
    titles = [f"{v:+.2f}" for v in a]
    shaded = shaded_text(text, colours(a, UNIT_CMAP, -1.0, 1.0), titles)
    return f"<h4>{html.escape(label)}</h4>" + shaded


def units_blocks(matches: list[Match], text: str, h, n_show: int = 3) -> list[str]:
    """The table of every property, then text shaded by each of the n_show strongest units
    (distinct units), the first with the colour legend; text (T characters) and h (T, m) are
    the passage shown. Separate blocks, so that a printed page breaks between them."""
    blocks = [units_table(matches)]
    for i, mt in enumerate(strongest(matches, n_show)):
        shaded = unit_html(text, np.asarray(h)[:, mt.unit], mt)
        blocks.append(
            '<div class="rnn-shaded-block">'
            + (units_legend() if i == 0 else "")
            + shaded
            + "</div>"
        )
    return blocks


def units_legend() -> str:
    ticks = [(v, f"{v:+g}" if v else "0") for v in (-1, -0.5, 0, 0.5, 1)]
    caption = f"activation of the unit after reading the character; {LINE_BREAK} marks a line break"
    return legend(UNIT_CMAP, -1.0, 1.0, ticks, caption)


# --- 4. gradient flow -------------------------------------------------------------------------


def gradflow_figure(curves: dict, seq_length: int | None = None):
    """||dL_t/dh_{t-k}|| against k on a log scale: per model, the mean over positions
    (solid), the median (dashed) and the band of the middle 80% of positions.
    curves: label -> norms (positions, max_k + 1). Returns (Figure, alt text)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator

    fig = Figure(figsize=(7.5, 3.6), dpi=120)
    ax = fig.subplots()
    alt = []
    for i, (label, norms) in enumerate(curves.items()):
        k = np.arange(norms.shape[1])
        mean = norms.mean(axis=0)
        lo, median, hi = np.percentile(norms, [10, 50, 90], axis=0)
        ax.plot(k, np.where(mean > 0, mean, np.nan), color=f"C{i}", lw=1.6, label=f"{label}: mean")
        ax.plot(
            k,
            np.where(median > 0, median, np.nan),
            color=f"C{i}",
            lw=1,
            ls="--",
            label=f"{label}: median",
        )
        band = (lo > 0) & (hi > 0)
        ax.fill_between(k[band], lo[band], hi[band], color=f"C{i}", alpha=0.2, lw=0)
        alt.append(f"{label}: {fall_sentence(norms)}")
    if seq_length:
        ax.axvline(seq_length, color="0.5", ls=":", lw=1, label=f"seq_length = {seq_length}")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=12))
    ax.set_xlabel("k (steps back)")
    ax.set_ylabel(r"$\|\partial L_t / \partial h_{t-k}\|$")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    alt_text = (
        f"Log-scale plot of the gradient norm against steps back k = 0 to {norms.shape[1] - 1}, "
        "mean and median over positions with the band of the middle 80%. " + " ".join(alt)
    )
    return fig, alt_text


def gradflow_html(curves: dict, seq_length: int | None = None) -> str:
    """How the norms were measured (gradient_norms' defaults), gradflow_figure with its alt
    text, then when each curve has fallen by FALL."""
    g = gradflow
    n_stretches = -(-g.N_POSITIONS // g.PER_STRETCH)
    method = (
        f"<p>{g.N_POSITIONS} positions t of the training text: {n_stretches} stretches drawn "
        f"at random, each read once from a zero state, with {g.PER_STRETCH} positions "
        f"{g.SPACING} characters apart in each, so that even h<sub>t−{g.MAX_K}</sub> comes "
        f"after at least {g.WARMUP + 1} characters of context. The mean over positions is "
        "dominated by a few "
        "large gradients, so the median is drawn too; the band covers the middle 80% of "
        "positions.</p>"
    )
    fig, alt = gradflow_figure(curves, seq_length)
    sentences = " ".join(
        f"{html.escape(label[:1].upper() + label[1:])}: {fall_sentence(norms)}"
        for label, norms in curves.items()
    )
    return method + f"<p>{sentences}</p>" + figure_html(fig, alt=alt)


def fall_sentence(norms) -> str:
    """When the mean (and the median) over positions of norms (positions, max_k + 1) have
    fallen by FALL, in words."""
    norms = np.atleast_2d(norms)
    max_k = norms.shape[1] - 1

    def when(curve):
        k = steps_to_fall(curve)
        return f"after {k} steps" if k is not None else f"not within {max_k} steps"

    mean, median = norms.mean(axis=0), np.median(norms, axis=0)
    return (
        f"the mean norm has fallen by a factor of {FALL:g} {when(mean)} "
        f"(the median {when(median)}); at k = {max_k} the mean is "
        f"{mean[-1] / mean[0]:.1e} of its value at k = 0."
    )
