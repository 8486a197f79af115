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
from .cells import STATE
from .errors import CheckpointError, RNNError
from .model import param_shapes
from .train import TrainState

FORMAT = 3  # 3: the corpus checksum is of the file's bytes; the run's training sessions
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


# The code a trained model depends on: the network, its kernels, the training loop, the
# order and batches it reads, the optimiser and how text becomes indices. A checkpoint made
# by other code is another run.
TRAINING_CODE = (
    "model.py",
    "cells",
    "kernels",
    "train.py",
    "order.py",
    "batch.py",
    "optim.py",
    "data.py",
)


def code_digest() -> str:
    """SHA-256 over the source of TRAINING_CODE, as it is now."""
    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in TRAINING_CODE:
        path = package / name
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            h.update(file.relative_to(package).as_posix().encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


CODE_SHA256 = code_digest()


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def save(
    path,
    state: TrainState,
    *,
    vocab_chars: str,
    config: dict,
    corpus_sha256: str = "",
    sessions: list | None = None,
) -> None:
    """Write `state` to `path` atomically. sessions: the training sessions so far, each
    {"started": ISO date, "from": update, "to": update, "seconds": s, "build_id": str}."""
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
        "m": config["m"],
        "K": len(vocab_chars),
        "config": config,
        "corpus_sha256": corpus_sha256,
        "code_sha256": CODE_SHA256,
        "sessions": sessions or [],
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
    _check_consistent(path, arrays, meta)
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = meta["rng"]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: the random generator's state is not readable") from None
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


def differences(meta: dict, training_key: dict, corpus_sha256: str) -> list[str]:
    """What keeps a checkpoint from being this run's: the training parameters that differ
    (name: checkpoint's value -> this run's), and the corpus. Empty if it is this run's."""
    theirs = meta.get("config", {})
    found = [
        f"{name}: {theirs.get(name)!r} -> {value!r}"
        for name, value in training_key.items()
        if theirs.get(name) != value
    ]
    if meta.get("corpus_sha256") != corpus_sha256:
        found.append("the corpus (another file or other contents)")
    if meta.get("code_sha256") != CODE_SHA256:
        found.append("the training code (the network, its kernels or the training loop)")
    return found


def _check_consistent(path, arrays: dict, meta: dict) -> None:
    """The arrays must be what the metadata says: a checkpoint edited by hand, or written by
    other code, is refused here rather than failing later inside training."""
    try:
        m, K, step = int(meta["m"]), int(meta["K"]), int(meta["step"])
        cell = meta["config"]["cell"]
        n_theta = sum(int(np.prod(s)) for s in param_shapes(m, K, cell).values())
        n_state = STATE[cell] * m
    except (KeyError, TypeError, ValueError, RNNError):
        raise CheckpointError(f"{path}: metadata incomplete (m, K, step or cell)") from None
    expect = {
        "theta": n_theta,
        "G": n_theta,
        "best_smooth_theta": n_theta,
        "h": n_state * int(meta["config"].get("batch_size", 1)),  # a column per stream
        "best_smooth_h": n_state,
        "loss": step,
        "smooth_loss": step,
        "best_val_theta": n_theta,
        "best_val_h": n_state,
    }
    for name, size in expect.items():
        if name in arrays and arrays[name].dtype != np.float64:
            raise CheckpointError(f"{path}: array {name} is {arrays[name].dtype}, not float64")
        if name in arrays and arrays[name].size != size:
            raise CheckpointError(
                f"{path}: array {name} has {arrays[name].size} entries, its metadata "
                f"(m={m}, K={K}, update {step}) says {size}"
            )
    sessions = meta.get("sessions")
    if not isinstance(sessions, list) or not all(
        isinstance(s, dict) and {"from", "to", "seconds", "finished"} <= set(s) for s in sessions
    ):
        raise CheckpointError(f"{path}: its list of training sessions is not readable")
    if not isinstance(meta.get("vocab"), str) or len(meta["vocab"]) != K:
        raise CheckpointError(f"{path}: its vocabulary is not of K={K} characters")


def _num(x: float):
    return None if not math.isfinite(x) else x


def _inf(x):
    return math.inf if x is None else x
