"""A sweep file, read and checked, and its points: every point of a grid is one build
of the report (rnn.report.build); rnn.sweep.execute runs them on Dask, rnn.sweep.comparison
compares them.

    python -m rnn sweep sweeps/example.yaml [--scheduler tcp://host:8786] [--workers N]

The YAML file:

    name: eta-m                  # reports/<name>/ holds everything (default: the file's stem)
    data: data/shakespeare.txt   # optional; the default corpus otherwise
    fixed: {n_updates: 20000}    # parameters shared by every point
    grid: {eta: [0.05, 0.1], m: [50, 100]}
    points: [{cell: lstm, m: 45}]  # optional: points beside the grid's, each one mapping


Every point is checked here, with the corpus, before any worker starts; `identity` is
what a point's report depends on (rnn.sweep.execute skips a point whose folder holds the
report of that identity, and retries a failed one once). Each point builds
reports/<name>/points/<eta-0.05_m-50>/ exactly as `make report` builds a folder.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import yaml

from rnn.errors import RNNError
from rnn.report import build, execution
from rnn.runs import checkpoint, driver
from rnn.runs.data import load_corpus
from rnn.runs.paths import DEFAULT_DATA, ROOT

# Points are counted before the grid is expanded: each is a build, and the sweep holds every
# point's folder while it runs (one open file each).
MAX_POINTS = 200


def load_spec(path) -> dict:
    """The sweep file, checked: every way it can be wrong is one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise RNNError(f"{path}: no such sweep file")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise RNNError(f"{path}: not UTF-8 text (invalid byte at offset {err.start})") from None
    except yaml.YAMLError as err:
        raise RNNError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(spec, dict):
        raise RNNError(f"{path}: a sweep file maps name, data, fixed, grid and points to values")
    unknown = set(spec) - {"name", "data", "fixed", "grid", "points"}
    if unknown:
        raise RNNError(
            f"{path}: unknown key {sorted(unknown)[0]!r} (known: name, data, fixed, grid, points)"
        )
    grid, points = spec.setdefault("grid", {}), spec.setdefault("points", [])
    if not isinstance(grid, dict) or not isinstance(points, list) or not (grid or points):
        raise RNNError(
            f"{path}: a sweep needs a 'grid' mapping parameter names to lists of values, "
            f"or a list of 'points', each mapping names to values"
        )
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise RNNError(f"{path}: grid entry {name!r} must be a non-empty list")
    for point in points:
        if not isinstance(point, dict) or not point:
            raise RNNError(f"{path}: each of 'points' must map parameter names to values")
    n_points = math.prod(len(values) for values in grid.values()) * bool(grid) + len(points)
    if n_points > MAX_POINTS:
        raise RNNError(
            f"{path}: the sweep has {n_points:,} points, more than {MAX_POINTS}; "
            f"split it into smaller sweeps"
        )
    name = spec.setdefault("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise RNNError(
            f"{path}: name must be a folder name of letters, digits, '.', '_' or '-', got {name!r}"
        )
    if "fixed" in spec and not isinstance(spec["fixed"], dict):
        raise RNNError(f"{path}: 'fixed' must map parameter names to values (or be left out)")
    spec.setdefault("fixed", {})
    if "data" in spec and not isinstance(spec["data"], str):
        raise RNNError(f"{path}: 'data' must be the path of a text file (or be left out)")
    data = Path(spec.get("data", DEFAULT_DATA))
    spec["data"] = str(build.resolved(data if data.is_absolute() else ROOT / data))
    return spec


def expand(spec: dict) -> list[dict]:
    """Every combination of the grid (in its order), then the listed points; each with the
    fixed parameters under it."""
    names = list(spec["grid"])
    combos = itertools.product(*(spec["grid"][n] for n in names)) if names else []
    varied = [dict(zip(names, values)) for values in combos] + list(spec["points"])
    return [dict(spec["fixed"]) | v for v in varied]


def varied_names(spec: dict) -> list[str]:
    """The parameters that name a point: the grid's, then those the listed points set."""
    names = list(spec["grid"])
    for point in spec["points"]:
        names += [n for n in point if n not in names]
    return names


def point_name(point: dict, names) -> str:
    """A folder name safe to type in a shell: eta-0.05_m-50."""
    parts = (f"{n}-{point[n]}" for n in names if n in point)
    return "_".join(re.sub(r"[^A-Za-z0-9._+-]", "", part) for part in parts) or "point"


def check(spec: dict) -> tuple[list[tuple[str, dict]], str]:
    """Every point's effective parameters, checked with the corpus before anything runs:
    [(folder name, parameters)], and the corpus's SHA-256."""
    names = varied_names(spec)
    points, seen = [], set()
    corpus = None
    for values in expand(spec):
        cfg, effective = execution.effective_parameters(execution.NOTEBOOK, values)
        corpus = corpus or load_corpus(spec["data"])  # read once, checked for every point
        driver.prepare(cfg, corpus)
        name = point_name(values, names)
        if name in seen:
            raise RNNError(f"two points of the grid have the same folder name {name!r}")
        seen.add(name)
        points.append((name, effective))
    return points, corpus.sha256


def identity(params: dict, corpus_sha256: str) -> dict:
    """What a point's report depends on: its parameters, the corpus and the training code."""
    return {
        "parameters": params,
        "corpus_sha256": corpus_sha256,
        "code_sha256": checkpoint.CODE_SHA256,
    }
