"""Checkpoints that resume a run exactly, in a format that loads without running code.

One .npz file (read with allow_pickle=False) holds the arrays of a TrainState and, as UTF-8
bytes, a JSON document with the scalars, the random generator's state, the vocabulary and
the configuration. The optimizer's state is stored as arrays `opt_<name>` (AdaGrad's and
RMSProp's opt_G; Adam's opt_m, opt_v and opt_t, its update count); format 3, from before
there was more than one optimizer, stored AdaGrad's G as `G` and is still read.
A SHA-256 over everything else is stored with it, so a truncated or edited file is refused
rather than half-loaded. Files are written to a temporary name and renamed, so a run killed
at any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from rnn.engine import optim
from rnn.engine.cells import STATE
from rnn.engine.model import param_shapes
from rnn.engine.train import TrainState
from rnn.errors import CheckpointError, RNNError
from rnn.runs.atomic import atomic_path
from rnn.runs.paths import PACKAGE

# 5: networks of several layers (theta in Params.names() order, h every layer's state
# stacked) in float64 or float32 (config's layers and dtype), the validations' wall seconds
# and where a time budget stopped training; 4: the optimizer's state as opt_<name> arrays
# (3: AdaGrad's G as "G")
FORMAT = 5
READABLE = (3, 4, 5)  # formats load reads
REQUIRED = (
    "theta",
    "h",
    "best_smooth_theta",
    "best_smooth_h",
    "loss",
    "smooth_loss",
    "val_steps",
    "val_loss",
)


# The code a trained run depends on: what these modules compute is what a checkpoint stores
# (the network's parameters, the samples drawn while training, the indices of the text), and
# with them every module of the package they import, found by reading their imports. A
# checkpoint made by other code is another run.
TRAINING_ROOTS = ("engine/train.py", "runs/data.py")


def _module_file(package: Path, dotted: str) -> Path | None:
    """The file of module `dotted` (relative to the package, "" being the package), if any."""
    base = package.joinpath(*dotted.split(".")) if dotted else package
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported(package: Path, file: Path) -> set[Path]:
    """The package's files that `file` imports (relative imports and `rnn.` absolute ones)."""
    here = file.parent.relative_to(package).parts
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.split(".")[0] == package.name:
                module = ".".join(node.module.split(".")[1:])
            else:
                continue
            targets = [module] + [f"{module}.{a.name}".strip(".") for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [
                ".".join(a.name.split(".")[1:])
                for a in node.names
                if a.name.split(".")[0] == package.name
            ]
        for dotted in filter(None, targets):  # not the package itself: its __init__ only
            parts = dotted.split(".")  # gathers names for users
            for i in range(1, len(parts) + 1):  # a submodule's packages run their __init__
                path = _module_file(package, ".".join(parts[:i]))
                if path is not None:
                    found.add(path)
    return found


def training_code(package: Path = PACKAGE) -> list[Path]:
    """Every file of the package that TRAINING_ROOTS import, directly or not, with them."""
    todo = [package / name for name in TRAINING_ROOTS]
    seen: set[Path] = set()
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        todo += sorted(_imported(package, file) - seen)
    return sorted(seen)


def code_digest(package: Path = PACKAGE) -> str:
    """SHA-256 over the source of `training_code`, as it is now."""
    h = hashlib.sha256()
    for file in training_code(package):
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
        "h": state.h,
        "best_smooth_theta": state.best_smooth_theta,
        "best_smooth_h": state.best_smooth_h,
        "loss": state.loss[: state.step],
        "smooth_loss": state.smooth_loss[: state.step],
        "val_steps": np.asarray(state.val_steps, dtype=np.int64),
        "val_loss": np.asarray(state.val_loss, dtype=np.float64),
        "val_seconds": np.asarray(state.val_seconds, dtype=np.float64),
    }
    for name, value in state.opt.items():
        arrays[f"opt_{name}"] = value
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
        "budget_stop": state.budget_stop,
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
    if meta.get("format") not in READABLE:
        raise CheckpointError(
            f"{path}: checkpoint format {meta.get('format')} is not one of "
            f"{', '.join(map(str, READABLE))}"
        )
    if meta["format"] == 3 and "G" in arrays:  # AdaGrad's G, from before the optimizers
        arrays["opt_G"] = arrays.pop("G")
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
        opt={k[len("opt_") :]: v.copy() for k, v in arrays.items() if k.startswith("opt_")},
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
        val_seconds=[float(v) for v in arrays.get("val_seconds", ())],  # none before format 5
        budget_stop=int(meta.get("budget_stop", -1)),
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
        optimizer = meta["config"].get("optimizer", "adagrad")  # format 3: always AdaGrad
        layers = int(meta["config"].get("layers", 1))  # one, before format 5
        dtype = np.dtype(meta["config"].get("dtype", "float64"))
        n_theta = sum(int(np.prod(s)) for s in param_shapes(m, K, cell, layers).values())
        n_state = STATE[cell] * m * layers  # every layer's state, stacked
        kept = optim.state_names(optimizer)
    except (KeyError, TypeError, ValueError, AttributeError, RNNError):
        raise CheckpointError(
            f"{path}: metadata incomplete (m, K, step, cell, layers or dtype)"
        ) from None
    if dtype not in (np.float64, np.float32):
        raise CheckpointError(f"{path}: its dtype {dtype} is not float64 or float32")
    missing = [name for name in kept if f"opt_{name}" not in arrays]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint (no {optimizer} state {missing[0]})")
    t = arrays.get("opt_t")
    if t is not None and (t.dtype != np.int64 or t.shape != (1,) or not 0 <= t[0] <= step):
        raise CheckpointError(f"{path}: array opt_t is not Adam's count of {step} updates")
    expect = {
        "theta": n_theta,
        "best_smooth_theta": n_theta,
        "h": n_state * int(meta["config"].get("batch_size", 1)),  # a column per stream
        "best_smooth_h": n_state,
        "loss": step,
        "smooth_loss": step,
        "best_val_theta": n_theta,
        "best_val_h": n_state,
    } | {f"opt_{name}": n_theta for name in kept if name != "t"}
    for name, size in expect.items():
        want = np.dtype(np.float64) if name in ("loss", "smooth_loss") else dtype
        if name in arrays and arrays[name].dtype != want:
            raise CheckpointError(f"{path}: array {name} is {arrays[name].dtype}, not {want}")
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
