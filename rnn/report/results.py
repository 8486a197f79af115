"""Parts II to IV in words: the loss's summary, the verdict's warning box, the samples
written while training and the passage from the best model."""

from __future__ import annotations

import math

import numpy as np

from rnn.report.markup import escape, pre


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
        f"{escape(what[:1].upper() + what[1:])}. <b>Try:</b> {escape(advice)}. "
        "The parts below show this run as it is.</p></div>"
    )


def summary_html(facts: dict, n_val: int, refs: dict | None = None) -> str:
    """The summary a reader reads first, from metrics' figures (facts): the validation
    score, where it sits among the n-gram baselines, the gradient check and the training
    time. refs: where the details are, by topic ("validation", "baselines", "gradient
    check"), e.g. {"baselines": "Table 3"}."""
    refs = refs or {}

    def see(topic):
        return f" ({escape(refs[topic])})" if topic in refs else ""

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
        from rnn.report.analysis.show import placement  # show imports this module

        rows = [(name, value) for name, value in facts["baselines"]]
        placed = placement(rows, bits).removesuffix(".")
        items.append(f"<b>Against n-gram models.</b> {escape(placed)}{see('baselines')}.")
    check = facts.get("gradient_check")
    if check:
        names = ", ".join(check["errors"])
        if check["passed"]:
            verdict = (
                f"passed: the largest error, {check['largest']:.2e} "
                f"(in {escape(check['largest_in'])}), is below {check['pass_below']:g} "
                f"for all of {escape(names)}"
            )
        else:
            failing = [n for n, err in check["errors"].items() if err >= check["pass_below"]]
            verdict = (
                f"<b>FAILED</b>: the error of {escape(', '.join(failing))} is not below "
                f"{check['pass_below']:g} (largest {check['largest']:.2e}, in "
                f"{escape(check['largest_in'])})"
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
