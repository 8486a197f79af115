"""Hyperparameter sweeps: every point of a grid is one papermill run of the report notebook,
run in parallel on Dask, then compared in a sweep report.

    python -m rnn.sweep sweeps/example.yaml [--scheduler tcp://host:8786] [--workers N]

The YAML file:

    name: eta-m                  # reports/<name>/ holds everything (default: the file's stem)
    data: data/shakespeare.txt   # optional; the default corpus otherwise
    fixed: {n_updates: 20000}    # parameters shared by every point
    grid: {eta: [0.05, 0.1], m: [50, 100]}

Each point builds reports/<name>/points/<eta=0.05,m=50>/ exactly as `make report` builds
reports/: report.html, report.ipynb, metrics.json, checkpoint.npz. A point whose report
already exists is skipped, so re-running a sweep finishes what is missing. A point that fails
is retried once, then recorded as failed; the others go on. With --scheduler the points run on
an existing Dask cluster, whose workers must see this folder at the same path.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

import yaml

from .atomic import write_atomic
from .config import Config
from .errors import ConfigError, RNNError

ROOT = Path(__file__).resolve().parent.parent
SWEEP_NOTEBOOK = ROOT / "notebooks" / "sweep.ipynb"
# One thread of BLAS (and of numba) per run: the parallelism is across runs, and threads
# within runs would only fight over the same cores.
SINGLE_THREADED = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMBA_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
    )
}


def load_spec(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RNNError(f"{path}: no such sweep file")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise RNNError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("grid"), dict) or not spec["grid"]:
        raise RNNError(f"{path}: a sweep needs a 'grid' mapping parameter names to lists of values")
    unknown = set(spec) - {"name", "data", "fixed", "grid"}
    if unknown:
        raise RNNError(
            f"{path}: unknown key {sorted(unknown)[0]!r} (known: name, data, fixed, grid)"
        )
    for name, values in spec["grid"].items():
        if not isinstance(values, list) or not values:
            raise RNNError(f"{path}: grid entry {name!r} must be a non-empty list")
    spec.setdefault("name", path.stem)
    spec.setdefault("fixed", {})
    spec["data"] = str((ROOT / spec.get("data", "data/shakespeare.txt")).resolve())
    return spec


def expand(spec: dict) -> list[dict]:
    """Every combination of the grid, each with the fixed parameters; grid order kept."""
    names = list(spec["grid"])
    return [
        dict(spec["fixed"]) | dict(zip(names, values))
        for values in itertools.product(*(spec["grid"][n] for n in names))
    ]


def point_name(point: dict, grid_names) -> str:
    return ",".join(f"{n}={point[n]}" for n in grid_names)


def run_point(data: str, out: str, params: dict) -> dict:
    """One point: build its report. Runs in a Dask worker; raises if the build fails."""
    from . import build

    os.environ.update(SINGLE_THREADED)  # for the kernel this starts
    t0 = time.perf_counter()
    try:
        build.build(Path(data), Path(out), dict(params))
    except build.BuildError as err:
        raise RuntimeError(str(err)) from None  # a plain error pickles back to the client
    return {"seconds": time.perf_counter() - t0}


def is_done(out: Path) -> bool:
    return (out / "report.html").exists() and (out / "metrics.json").exists()


def run_sweep(
    spec: dict, sweep_dir: Path, scheduler: str | None = None, workers: int | None = None, log=print
) -> list[dict]:
    """Run every point not yet done; returns one status record per point, in grid order."""
    from dask.distributed import Client, LocalCluster, as_completed

    points = expand(spec)
    names = list(spec["grid"])
    known = {f.name for f in fields(Config)}
    for name in list(spec["fixed"]) + names:  # a misspelt name would fail every point
        if name not in known:
            raise ConfigError(
                f"unknown parameter {name!r} in the sweep; known: {', '.join(sorted(known))}"
            )
    records, todo = {}, []
    for p in points:
        name = point_name(p, names)
        out = sweep_dir / "points" / name
        if is_done(out):
            records[name] = {"point": name, "status": "done (earlier)", "out": str(out)}
        else:
            todo.append((name, out, p))
    log(
        f"sweep {spec['name']}: {len(points)} points, {len(records)} already done, "
        f"{len(todo)} to run"
    )
    if todo:
        if scheduler:
            client, cluster = Client(scheduler), None
        else:
            n = workers or max(1, min(len(todo), os.cpu_count() or 1))
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env=SINGLE_THREADED,
            )
            client = Client(cluster)
        try:
            futures = {}
            for name, out, p in todo:
                fut = client.submit(
                    run_point, spec["data"], str(out), p, key=f"point-{name}", retries=1, pure=False
                )
                futures[fut] = (name, out)
            done = failed = 0
            for fut in as_completed(futures):
                name, out = futures[fut]
                if fut.status == "finished":
                    done += 1
                    records[name] = {
                        "point": name,
                        "status": "done",
                        "out": str(out),
                        "seconds": fut.result()["seconds"],
                    }
                else:
                    failed += 1
                    error = str(fut.exception()).splitlines()[0]
                    records[name] = {
                        "point": name,
                        "status": "failed",
                        "out": str(out),
                        "error": error,
                    }
                detail = f" ({records[name]['error']})" if "error" in records[name] else ""
                log(
                    f"{name}: {records[name]['status']}{detail} | done {done}, failed {failed}, "
                    f"running or queued {len(futures) - done - failed}"
                )
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    ordered = [records[point_name(p, names)] for p in points]
    write_atomic(sweep_dir / "status.json", json.dumps(ordered, indent=1) + "\n")
    return ordered


def table(sweep_dir: Path) -> list[dict]:
    """One row per point from status.json and each point's metrics.json, best first:
    by best validation bits/char where there are any, else by best smooth loss."""
    rows = []
    for rec in json.loads((sweep_dir / "status.json").read_text()):
        row = {
            "point": rec["point"],
            "status": rec["status"],
            "seconds": rec.get("seconds"),
            "error": rec.get("error", ""),
        }
        metrics_file = Path(rec["out"]) / "metrics.json"
        if rec["status"] != "failed" and metrics_file.exists():
            m = json.loads(metrics_file.read_text())
            row |= {
                "best_smooth_loss": m["best_smooth_loss"],
                "final_smooth_loss": m["final_smooth_loss"],
                "val_bits_per_char": m.get("best_val_bits_per_char"),
                "seconds": row["seconds"] or m["seconds"],
                "curve": m["smooth_loss_every_100"],
                "passage": m.get("passage", ""),
                "report": str(Path(rec["out"]) / "report.html"),
            }
        rows.append(row)

    def quality(row):
        if row["status"] == "failed":
            return (2, math.inf)
        v = row.get("val_bits_per_char")
        return (0, v) if v is not None else (1, row.get("best_smooth_loss") or math.inf)

    return sorted(rows, key=quality)


def render_report(sweep_dir: Path) -> Path:
    """reports/<sweep>/index.html: the sweep notebook, executed and rendered like the report."""
    from . import build

    executed = sweep_dir / "index.ipynb"
    build.execute(SWEEP_NOTEBOOK, executed, {"sweep_dir": str(sweep_dir.resolve())}, None)
    with_html = sweep_dir / "index.html"
    build.render(executed, with_html)
    return with_html


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rnn.sweep", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("sweep", type=Path, help="the sweep's YAML file")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786)")
    parser.add_argument(
        "--workers", type=int, help="local worker processes (default: one per core)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "reports", help="parent of the sweep's folder"
    )
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.sweep)
        sweep_dir = (args.out / spec["name"]).resolve()
        t0 = time.perf_counter()
        records = run_sweep(spec, sweep_dir, args.scheduler, args.workers)
        wall = time.perf_counter() - t0
        page = render_report(sweep_dir)
    except RNNError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    ran = [r for r in records if r["status"] == "done"]
    failed = [r for r in records if r["status"] == "failed"]
    if ran:
        total = sum(r["seconds"] for r in ran)
        print(
            f"{len(ran)} points ran in {wall:.1f} s of wall time; their own times add up to "
            f"{total:.1f} s (parallel speed-up {total / wall:.2f}x)"
        )
    print(f"wrote {page}" + (f"; {len(failed)} point(s) failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
