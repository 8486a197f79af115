"""metrics.json: the numbers of a finished run, in one schema, every value finite or
null."""

from __future__ import annotations

import json
import math

import numpy as np

from rnn.runs.atomic import write_atomic


def metrics(result, cfg, *, gradcheck: dict | None = None, baselines=None) -> dict:
    """The run's figures, for sweeps and for anyone comparing runs; the report's summary
    states them. gradcheck: part I's errors by parameter (None: not run); baselines: part
    VI's (model, bits per character) rows (None: not computed)."""
    from rnn.engine.gradcheck import PASS_BELOW
    from rnn.runs.outcome import verdict

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
    write_atomic(path, json.dumps(finite(values), indent=1, allow_nan=False) + "\n")


def finite(x):
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
