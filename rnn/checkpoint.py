"""Checkpoints that resume a run exactly, in a format that loads without running code.

One .npz file (read with allow_pickle=False) holds the arrays of a TrainState and, as UTF-8
bytes, a JSON document with the scalars, the random generator's state, the vocabulary and
the configuration. A SHA-256 over everything else is stored with it, so a truncated or
edited file is refused rather than half-loaded. Files are written to a temporary name and
renamed, so a run killed at any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import CheckpointError
from .train import TrainState

FORMAT = 2
REQUIRED = (
    "theta",
    "G",
    "h",
    "best_smooth_theta",
    "best_smooth_h",
    "loss",
    "smooth_loss",
    "val_steps",
    "val_loss",
)


def corpus_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def save(
    path, state: TrainState, *, vocab_chars: str, m: int, config: dict, corpus_sha256: str = ""
) -> None:
    """Write `state` to `path` atomically."""
    arrays = {
        "theta": state.theta,
        "G": state.G,
        "h": state.h,
        "best_smooth_theta": state.best_smooth_theta,
        "best_smooth_h": state.best_smooth_h,
        "loss": state.loss[: state.step],
        "smooth_loss": state.smooth_loss[: state.step],
        "val_steps": np.asarray(state.val_steps, dtype=np.int64),
        "val_loss": np.asarray(state.val_loss, dtype=np.float64),
    }
    if state.best_val_theta is not None:
        arrays["best_val_theta"] = state.best_val_theta
        arrays["best_val_h"] = state.best_val_h
    for step, ids in state.samples.items():
        arrays[f"sample_{step}"] = np.asarray(ids, dtype=np.int64)
    meta = {
        "format": FORMAT,
        "step": state.step,
        "smooth": state.smooth,
        "best_smooth": _num(state.best_smooth),
        "best_smooth_step": state.best_smooth_step,
        "best_val": _num(state.best_val),
        "best_val_step": state.best_val_step,
        "seconds": state.seconds,
        "rng": state.rng.bit_generator.state,
        "vocab": vocab_chars,
        "m": m,
        "K": len(vocab_chars),
        "config": config,
        "corpus_sha256": corpus_sha256,
    }
    meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    arrays["meta"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    arrays["digest"] = np.frombuffer(_digest(arrays).encode(), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load(path) -> tuple[TrainState, dict]:
    """(state, meta) from a checkpoint; CheckpointError if it is missing, truncated or altered."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    if "meta" not in arrays or "digest" not in arrays:
        raise CheckpointError(f"{path}: not a checkpoint of this package (no metadata)")
    stored = arrays.pop("digest").tobytes().decode("ascii", "replace")
    if _digest(arrays) != stored:
        raise CheckpointError(f"{path}: contents do not match their checksum (truncated or edited)")
    meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')} is not {FORMAT}")
    missing = [name for name in REQUIRED if name not in arrays]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint (no {missing[0]})")
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    samples = {int(k[len("sample_") :]): v for k, v in arrays.items() if k.startswith("sample_")}
    loss, smooth = arrays["loss"], arrays["smooth_loss"]
    state = TrainState(
        step=meta["step"],
        theta=arrays["theta"].copy(),
        G=arrays["G"].copy(),
        h=arrays["h"].copy(),
        smooth=meta["smooth"],
        best_smooth=_inf(meta["best_smooth"]),
        best_smooth_step=meta["best_smooth_step"],
        best_smooth_theta=arrays["best_smooth_theta"].copy(),
        best_smooth_h=arrays["best_smooth_h"].copy(),
        rng=rng,
        loss=loss.copy(),
        smooth_loss=smooth.copy(),
        samples=dict(sorted(samples.items())),
        val_steps=[int(s) for s in arrays["val_steps"]],
        val_loss=[float(v) for v in arrays["val_loss"]],
        best_val=_inf(meta["best_val"]),
        best_val_step=meta["best_val_step"],
        best_val_theta=arrays["best_val_theta"].copy() if "best_val_theta" in arrays else None,
        best_val_h=arrays["best_val_h"].copy() if "best_val_h" in arrays else None,
        seconds=meta["seconds"],
    )
    return state, meta


def check_compatible(meta: dict, path, *, vocab_chars: str, m: int) -> None:
    """Refuse a checkpoint made for another vocabulary or network shape."""
    if meta["vocab"] != vocab_chars:
        raise CheckpointError(
            f"{path}: made for another vocabulary "
            f"(K={meta['K']}, this corpus has K={len(vocab_chars)})"
        )
    if meta["m"] != m:
        raise CheckpointError(f"{path}: made for m={meta['m']} hidden units, this run has m={m}")


def same_run(path, *, config: dict, corpus_sha256: str) -> bool:
    """True if `path` is a readable checkpoint of this very configuration and corpus."""
    try:
        _, meta = load(path)
    except CheckpointError:
        return False
    return meta["config"] == config and meta["corpus_sha256"] == corpus_sha256


class Checkpointer:
    """The `checkpoint` callable for rnn.train: saves the state it is given."""

    def __init__(self, path, *, vocab_chars: str, m: int, config: dict, corpus_sha256: str = ""):
        self.path = Path(path)
        self.kwargs = dict(vocab_chars=vocab_chars, m=m, config=config, corpus_sha256=corpus_sha256)

    def __call__(self, state: TrainState) -> None:
        save(self.path, state, **self.kwargs)


def _num(x: float):
    return None if not math.isfinite(x) else x


def _inf(x):
    return math.inf if x is None else x
