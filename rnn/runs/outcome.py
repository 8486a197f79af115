"""Whether a finished run did what training is for: the verdict that the report's warning box
and the command line's exit status share.

A run that diverged stops with TrainingDiverged and never gets here. This judges runs that
made all their updates and are no better, or worse, than where they began. A run failed when

1. its smooth loss ended above its first value by more than IMPROVED of it (the loss rose
   over the run), or fell by less than IMPROVED of it (it did not move), or
2. its validation loss never fell IMPROVED below the first validation pass's (made before
   any update), or
3. the best model is the initial one: by rnn.engine.train's rule (lowest validation loss, else
   lowest smooth loss) no update made the model better.

With a validation split, 2 and 3 are one finding (the best model is chosen by validation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rnn.engine.train import TrainResult


IMPROVED = 1e-3  # a fall of less than this fraction of the start is no fall
SHORT = 1000  # below this many updates a rise is no reason to lower eta: train longer


@dataclass(frozen=True)
class Verdict:
    """What `verdict` found: failed, what happened (one clause each) and what to try."""

    failed: bool
    findings: tuple[str, ...] = ()
    advice: str = ""

    @property
    def line(self) -> str:
        """One line for a terminal or a log ("training failed: ...; lower eta"), or "" when
        the run did not fail."""
        if not self.failed:
            return ""
        return f"training failed: {'; '.join(self.findings)}: {self.advice}"


def verdict(result: TrainResult) -> Verdict:
    """The verdict on a finished run (an rnn.TrainResult; it reads loss, smooth_loss,
    best_step, best_by, val_steps and val_loss). A run of no updates has not failed."""
    n = len(result.loss)
    if n == 0:
        return Verdict(failed=False)
    smooth = np.asarray(result.smooth_loss, dtype=float)
    first, last = float(smooth[0]), float(smooth[-1])
    findings, rose = [], not last <= first * (1 + IMPROVED)  # NaN counts as risen
    flat = not rose and not last < first * (1 - IMPROVED)
    if rose:
        findings.append(f"the smooth loss rose from {first:,.1f} to {last:,.1f} over {n:,} updates")
    elif flat:
        findings.append(
            f"the smooth loss did not fall ({first:,.3f} at the first update, {last:,.3f} at "
            f"the last of {n:,})"
        )
    val = np.asarray(result.val_loss, dtype=float)
    never = len(val) >= 2 and not np.nanmin(val[1:]) < val[0] * (1 - IMPROVED)
    if never:
        findings.append(
            f"the validation loss never fell below its value before training "
            f"({val[0] / math.log(2):.3f} bits per character; the lowest after it "
            f"{np.nanmin(val[1:]) / math.log(2):.3f}), so the best model is the untrained one"
        )
    elif result.best_step == 0:
        findings.append(
            f"the best model (by {result.best_by}) is the initial one: no update improved on it"
        )
    if not findings:
        return Verdict(failed=False)
    if rose and n < SHORT and getattr(result, "stopped_by_budget", False):
        advice = (
            f"raise time_budget (it stopped training at update {n:,}, too few to judge a run by)"
        )
    elif rose and n < SHORT:  # it climbs over the first updates: too few to blame eta
        advice = f"train for more updates ({n:,} are too few to judge a run by)"
    elif rose:
        advice = "lower eta"
    elif flat:
        advice = "raise eta or train for more updates"
    else:
        advice = (
            "lower eta or train for more updates, and check that the validation text (the "
            "corpus's last val_fraction) is like the rest"
        )
    if getattr(result, "stopped_by_budget", False):  # its length was the budget's, not n_updates
        advice = advice.replace("train for more updates", "raise time_budget")
    return Verdict(failed=True, findings=tuple(findings), advice=advice)
