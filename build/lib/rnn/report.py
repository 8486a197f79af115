"""What the report notebook shows: tables, the loss figure, preformatted text.

Each function returns an HTML string or a matplotlib Figure; the notebook displays it.
Every piece of text that comes from the corpus or the model is HTML-escaped here.
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import math
import platform

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


def table(rows, header=None) -> str:
    """A two-or-more-column HTML table; every cell is escaped."""
    head = ""
    if header:
        head = (
            "<thead><tr>"
            + "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
            + "</tr></thead>"
        )
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table class="rnn-table">{head}<tbody>{body}</tbody></table>'


def pre(text: str) -> str:
    """Text as it is, line breaks kept, markup shown rather than run."""
    return f'<pre class="rnn-text">{html.escape(text)}</pre>'


def sampling_grid(items) -> str:
    """Samples side by side: items are (label, text, mean ln p per character)."""
    cells = "".join(
        f'<div class="rnn-cell"><h4>{html.escape(label)}</h4>'
        f"<p>mean log-probability {logp:.3f} nats per character</p>{pre(text)}</div>"
        for label, text, logp in items
    )
    return f'<div class="rnn-grid">{cells}</div>'


def gradcheck_table(errors: dict[str, float]) -> str:
    return table(
        [(name, f"{err:.2e}", "yes" if err < 1e-6 else "NO") for name, err in errors.items()],
        header=("parameter", "max relative error", "below 1e-6"),
    )


def samples_html(samples: dict, vocab) -> str:
    parts = []
    for step in sorted(samples):
        label = "before the first update" if step == 0 else f"before update {step:,}"
        parts.append(f"<h4>step {step:,} ({label})</h4>" + pre(vocab.decode(samples[step])))
    return "\n".join(parts)


def header_rows(
    *, data_path, text, vocab, n_train, n_val, cfg, result, resumed_at=None
) -> list[tuple[str, str]]:
    rows = [
        ("corpus", f"{data_path} ({len(text):,} characters, K = {len(vocab)})"),
        ("training / validation", f"{n_train:,} / {n_val:,} characters"),
    ]
    rows += [(name, _show(value)) for name, value in cfg.to_dict().items()]
    rows += [
        ("epochs covered", f"{result.epochs:.2f} ({result.per_epoch:,} updates per epoch)"),
        ("training time", f"{result.seconds:.1f} s ({result.updates_per_sec:,.0f} updates/s)"),
        ("resumed", "no" if resumed_at is None else f"from a checkpoint at update {resumed_at:,}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions().items())),
    ]
    return rows


def _show(value) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str):
        return repr(value) if value.strip() != value or not value else value
    return str(value)


def loss_figure(result, seq_length: int):
    """Smooth loss against update step with epoch boundaries marked; validation bits per
    character on a second axis when there is a validation curve."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no backend

    fig = Figure(figsize=(9, 4.5), dpi=100)
    ax = fig.subplots()
    steps = np.arange(len(result.smooth_loss))
    ax.plot(steps, result.smooth_loss, color="C0", lw=1.2, label="smooth training loss")
    for k in range(1, int(math.ceil(result.epochs))):
        x = k * result.per_epoch
        ax.axvline(x, color="0.6", ls="--", lw=0.8, label="epoch boundary" if k == 1 else None)
    ax.set_xlabel("update step")
    ax.set_ylabel(f"smooth loss (nats per {seq_length}-character sequence)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if len(result.val_steps):
        ax2 = ax.twinx()
        ax2.plot(
            result.val_steps,
            np.asarray(result.val_loss) / math.log(2),
            "o-",
            color="C3",
            ms=3,
            lw=1,
            label="validation bits per character",
        )
        ax2.set_ylabel("validation bits per character")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper right")
    ax.set_title("Training loss")
    fig.tight_layout()
    return fig


def png(fig) -> bytes:
    """The figure as PNG bytes, for IPython.display.Image: the report embeds it as is."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def metrics(result, cfg) -> dict:
    """The run's figures, for sweeps and for anyone comparing runs."""
    out = {
        "config": cfg.to_dict(),
        "final_smooth_loss": float(result.smooth_loss[-1]) if len(result.smooth_loss) else None,
        "best_smooth_loss": result.best_smooth_loss if len(result.smooth_loss) else None,
        "best_step": int(result.best_step),
        "best_by": result.best_by,
        "seconds": result.seconds,
        "updates_per_sec": result.updates_per_sec if len(result.loss) else None,
        "epochs": result.epochs,
        "smooth_loss_every_100": [float(x) for x in result.smooth_loss[::100]],
    }
    if len(result.val_steps):
        best = float(np.min(result.val_loss))
        out |= {
            "val_steps": [int(s) for s in result.val_steps],
            "val_loss": [float(v) for v in result.val_loss],
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
    """Smooth loss of every successful sweep point, overlaid (from metrics.json's every-100th)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.5), dpi=100)
    ax = fig.subplots()
    for row in rows:
        if row.get("curve"):
            ax.plot(np.arange(len(row["curve"])) * 100, row["curve"], lw=1.1, label=row["point"])
    ax.set_xlabel("update step")
    ax.set_ylabel("smooth loss (nats per sequence)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Smooth training loss of each point")
    fig.tight_layout()
    return fig
