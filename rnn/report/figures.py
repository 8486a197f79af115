"""The report's figures: the smooth loss against updates, and a matplotlib figure as
an inline PNG."""

from __future__ import annotations

import base64
import html
import io
import math

import numpy as np


def figure_html(fig, alt: str, caption: str = "") -> str:
    """The figure as an embedded PNG with a text alternative, in a <figure>, with `caption`
    (a Numbering.figure line) under it when given."""
    data = base64.b64encode(png(fig)).decode("ascii")
    below = f"<figcaption>{caption}</figcaption>" if caption else ""
    return (
        f'<figure class="rnn-figure"><img alt="{html.escape(alt, quote=True)}" '
        f'src="data:image/png;base64,{data}">{below}</figure>'
    )


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
