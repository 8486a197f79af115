"""Hyperparameter sweeps: every point of a grid is one build of the report (rnn.build), run in
parallel on Dask, then compared on one page.

    python -m rnn sweep sweeps/example.yaml [--scheduler tcp://host:8786] [--workers N]

The YAML file:

    name: eta-m                  # reports/<name>/ holds everything (default: the file's stem)
    data: data/shakespeare.txt   # optional; the default corpus otherwise
    fixed: {n_updates: 20000}    # parameters shared by every point
    grid: {eta: [0.05, 0.1], m: [50, 100]}
    points: [{cell: lstm, m: 45}]  # optional: points beside the grid's, each one mapping


Every point is checked, with the corpus, before any worker starts. Each point builds
reports/<name>/points/<eta-0.05_m-50>/ exactly as `make report` builds a folder. Workers
need no shared filesystem: the client sends each point the corpus and the notebook, the
worker builds in a folder of its own, and the point's files come back through Dask. A
point is skipped when its folder holds a report of the same effective parameters and
corpus; otherwise it is built again (its earlier checkpoint goes with it, so a change of a
report-only parameter does not retrain). A point that fails is retried once, then
recorded as failed; the others go on.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import itertools
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

from . import build, checkpoint, lock, report
from . import run as driver
from .atomic import write_atomic
from .data import load_corpus
from .errors import RNNError

ROOT = Path(__file__).resolve().parent.parent
SWEEP_NOTEBOOK = build.notebook_path("sweep.ipynb")
DEFAULT_DATA = ROOT / "data" / "shakespeare.txt"
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
POINT_FILES = ("report.html", "report.ipynb", "metrics.json", "checkpoint.npz", build.SEAL)
# Points are counted before the grid is expanded: each is a build, and the sweep holds every
# point's folder while it runs (one open file each).
MAX_POINTS = 200
PROGRESS_TOPIC = "rnn-point-progress"  # Dask events: a point's training progress
POINT_LINES = 10  # progress lines per point
HEARTBEAT = 5.0  # seconds of silence after which the client says what is still running


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
        cfg, effective = build.effective_parameters(build.NOTEBOOK, values)
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


def files_sha256(out: Path) -> str | None:
    """One SHA-256 over the point's files (names and contents); None if one is missing."""
    h = hashlib.sha256()
    try:
        for name in POINT_FILES:
            h.update(name.encode() + b"\0" + build.file_sha256(out / name).encode())
    except OSError:
        return None
    return h.hexdigest()


def point_record(out: Path) -> dict | None:
    """The point's record if its files are still the ones the sweep wrote (checkpoint,
    metrics, report and seal under one digest); None otherwise."""
    try:
        stored = json.loads((out / "point.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("files_sha256") != files_sha256(out):
        return None
    return stored


def is_done(out: Path, ident: dict) -> bool:
    """A point is done when its folder holds the files the sweep wrote for these very
    parameters, corpus and code, unchanged since (a report built there by hand is not)."""
    stored = point_record(out)
    return stored is not None and {k: stored.get(k) for k in ident} == ident


def run_point(
    name: str,
    corpus: bytes,
    corpus_name: str,
    notebook: bytes,
    params: dict,
    checkpoint: bytes | None,
) -> dict:
    """One point, in a Dask worker: build its report in a folder of the worker's own from
    the corpus and notebook sent along; returns the point's files as bytes. Its training
    progress (a line every tenth) and its stages go to the client as Dask events."""
    os.environ.update(SINGLE_THREADED)  # for the kernel this starts
    lock.clear_dead_temp_folders()
    with tempfile.TemporaryDirectory(prefix=lock.temp_prefix(lock.POINT_PREFIX)) as tmp:
        tmp = Path(tmp)
        (tmp / corpus_name).write_bytes(corpus)
        (tmp / "report.ipynb").write_bytes(notebook)
        out = tmp / "out"
        out.mkdir()
        if checkpoint is not None:
            (out / "checkpoint.npz").write_bytes(checkpoint)
        t0 = time.perf_counter()
        progress = _progress_to_client(name, params)
        try:
            build.build_report(
                build.Request(tmp / corpus_name, out, params, notebook=tmp / "report.ipynb"),
                progress=progress,
                log=progress.emit if progress else lambda line: None,  # the build's stages
            )
        except (build.BuildError, RNNError) as err:
            raise RuntimeError(str(err)) from None  # a plain error pickles back to the client
        files = {name: (out / name).read_bytes() for name in POINT_FILES}
        return {"files": files, "seconds": time.perf_counter() - t0}


def _progress_line(event) -> str:
    """A worker's progress event (timestamp, {"point", "line"}) as the client prints it."""
    _, msg = event
    return f"{msg['point']}: {msg['line']}"


def _progress_to_client(name: str, params: dict):
    """A training Progress whose lines go to the client as events of the worker running
    this point; False outside a worker."""
    from distributed import get_worker

    from .progress import Progress, round_interval

    try:
        worker = get_worker()
    except ValueError:
        return False
    every = round_interval(params["n_updates"] / POINT_LINES)
    return Progress(
        every=every,
        emit=lambda line: worker.log_event(PROGRESS_TOPIC, {"point": name, "line": line}),
    )


def check_address(scheduler: str) -> None:
    """A scheduler address Dask can read (tcp://host:port), before anything starts."""
    from distributed.comm import get_address_host_port

    try:
        get_address_host_port(scheduler)
    except ValueError as err:
        raise RNNError(f"cannot reach the Dask scheduler at {scheduler} ({err})") from None


def _client(scheduler: str | None, workers: int | None, n_points: int):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError, ValueError) as err:
            raise RNNError(f"cannot reach the Dask scheduler at {scheduler} ({err})") from None
    n = workers or max(1, min(n_points, os.cpu_count() or 1))
    cluster = LocalCluster(
        silence_logs=logging.CRITICAL,  # a point's failure is reported once, by the client
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env=SINGLE_THREADED,
    )
    return Client(cluster), cluster


def run_sweep(
    spec: dict, sweep_dir: Path, scheduler: str | None = None, workers: int | None = None, log=print
) -> list[dict]:
    """Run every point not yet done; returns one status record per point, in grid order."""
    if workers is not None and workers < 1:
        raise RNNError(f"--workers must be at least 1, got {workers}")
    if scheduler:
        check_address(scheduler)
    points, corpus_sha256 = check(spec)
    with lock.hold(sweep_dir, f"sweep {spec['name']}"), contextlib.ExitStack() as held:
        records, todo = {}, []
        for name, params in points:
            out = sweep_dir / "points" / name
            # every point's folder is the sweep's while it runs, as OUT is make report's
            held.enter_context(lock.hold(out, f"sweep {spec['name']}, point {name}"))
            if is_done(out, identity(params, corpus_sha256)):
                records[name] = {"point": name, "status": "done (earlier)"}
            else:
                todo.append((name, out, params))
        log(
            f"sweep {spec['name']}: {len(points)} points, {len(records)} already done, "
            f"{len(todo)} to run"
        )
        if todo:
            records |= _run_points(spec, todo, corpus_sha256, scheduler, workers, log)
        ordered = [records[name] | {"params": params} for name, params in points]
        summary = {
            "name": spec["name"],
            "corpus": {"path": spec["data"], "sha256": corpus_sha256},
            "fixed": spec["fixed"],
            "grid": spec["grid"],
            "listed_points": spec["points"],
            "points": ordered,
        }
        write_atomic(sweep_dir / "sweep.json", json.dumps(summary, indent=1) + "\n")
    return ordered


def _run_points(spec, todo, corpus_sha256, scheduler, workers, log) -> dict:
    from dask.distributed import wait

    corpus = Path(spec["data"]).read_bytes()
    notebook = build.NOTEBOOK.read_bytes()
    client, cluster = _client(scheduler, workers, len(todo))
    records = {}
    said = [time.perf_counter()]  # when the last line was printed

    def say(line: str) -> None:
        said[0] = time.perf_counter()
        log(line)

    client.subscribe_topic(PROGRESS_TOPIC, lambda event: say(_progress_line(event)))
    try:
        futures = {}
        for name, out, params in todo:
            previous = out / "checkpoint.npz"
            fut = client.submit(
                run_point,
                name,
                corpus,
                Path(spec["data"]).name,
                notebook,
                params,
                previous.read_bytes() if previous.exists() else None,
                key=f"point-{name}-{time.time_ns()}",
                retries=1,
                pure=False,
            )
            futures[fut] = (name, out, params)
        done = failed = 0
        started, pending = time.perf_counter(), set(futures)
        while pending:
            try:
                finished, pending = wait(pending, 1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished in that second
                finished = set()
            if not finished and time.perf_counter() - said[0] >= HEARTBEAT:
                running = ", ".join(sorted(futures[f][0] for f in pending))
                say(
                    f"still running: {running} ({time.perf_counter() - started:.0f} s so far; "
                    f"{done} done, {failed} failed)"
                )
            for fut in finished:
                name, out, params = futures[fut]
                if fut.status == "finished":
                    result = fut.result()
                    for file, content in result["files"].items():
                        write_atomic(out / file, content)
                    ident = identity(params, corpus_sha256) | {"files_sha256": files_sha256(out)}
                    write_atomic(out / "point.json", json.dumps(ident, indent=1) + "\n")
                    done += 1
                    records[name] = {"point": name, "status": "done", "seconds": result["seconds"]}
                    detail = f" in {result['seconds']:.1f} s"
                else:
                    failed += 1
                    error = str(fut.exception()).splitlines()[0]
                    records[name] = {"point": name, "status": "failed", "error": error}
                    detail = f": {error}"
                say(
                    f"{name}: {records[name]['status']}{detail} ({done} done, {failed} failed, "
                    f"{len(futures) - done - failed} to go)"
                )
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return records


def table(sweep_dir: Path) -> list[dict]:
    """One row per point from sweep.json and each point's metrics.json, best first:
    by best validation bits/char where there are any, else by best smooth loss."""
    rows = []
    summary = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))
    for rec in summary["points"]:
        out = sweep_dir / "points" / rec["point"]
        row = {
            "point": rec["point"],
            "status": rec["status"],
            "params": rec["params"],
            "seconds": rec.get("seconds"),
            "error": rec.get("error", ""),
        }
        metrics_file = out / "metrics.json"
        if rec["status"] != "failed" and point_record(out) is None:
            row |= {"status": "changed", "error": "its folder was rewritten since the sweep"}
        elif rec["status"] != "failed" and metrics_file.exists():
            m = json.loads(metrics_file.read_text(encoding="utf-8"))
            # Every point's smooth loss per character, whatever its loss and seq_length, so
            # that points of a summed and of a mean loss share one scale.
            config = m.get("config", {})
            per = config.get("seq_length", 1) if config.get("loss", "sum") == "sum" else 1
            row |= {
                "best_smooth_loss": m["best_smooth_loss"] / per,
                "final_smooth_loss": m["final_smooth_loss"] / per,
                "val_bits_per_char": m.get("best_val_bits_per_char"),
                "seconds": row["seconds"] or m["seconds"],
                "updates_per_sec": m.get("updates_per_sec"),
                "n_params": m.get("n_params"),
                "curve": [v / per for v in m["smooth_loss_every_100"]],
                "passage": m.get("passage", ""),
                "report": f"points/{rec['point']}/report.html",
            }
        rows.append(row)

    def quality(row):
        if row["status"] in ("failed", "changed"):
            return (2, math.inf)
        v = row.get("val_bits_per_char")
        return (0, v) if v is not None else (1, row.get("best_smooth_loss") or math.inf)

    return sorted(rows, key=quality)


def summary_html(sweep_dir: Path) -> str:
    """What the sweep is: its name, corpus, what varied (in words) and the parameters every
    point shares, escaped."""
    summary = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))
    corpus = summary["corpus"]
    shared = shared_parameters(summary)
    rows = [
        ("sweep", summary["name"]),
        ("corpus", f"{Path(corpus['path']).name} (SHA-256 {corpus['sha256'][:12]})"),
        ("compared", grid_words(summary)),
        ("fixed parameters", ", ".join(_setting(k, v) for k, v in shared.items()) or "none"),
        ("points", f"{len(summary['points'])}; every other parameter at its default"),
    ]
    return report.table(rows, kind="keyvalue")


def title(sweep_dir: Path) -> str:
    """The page's title: the sweep and what it compared ("cells: cell and m compared")."""
    summary = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))
    names = list(summary["grid"])
    for point in summary.get("listed_points", []):
        names += [n for n in point if n not in names]
    return f"Sweep {summary['name']}: {_and(names)} compared" if names else summary["name"]


def shared_parameters(summary: dict) -> dict:
    """The sweep's fixed parameters that every point has (a listed point may set its own)."""
    points = [p["params"] for p in summary["points"]]
    return {
        name: points[0][name] if points else value
        for name, value in summary["fixed"].items()
        if all(p.get(name) == points[0].get(name) for p in points)
    }


def grid_words(summary: dict) -> str:
    """The points in words: "cell: vanilla, lstm, gru at m = 100; plus lstm with m = 45 and
    gru with m = 54"."""
    grid, listed = summary["grid"], summary.get("listed_points", [])
    text = "; ".join(f"{k}: {', '.join(_word(v) for v in values)}" for k, values in grid.items())
    if len(grid) > 1:
        text += " (every combination)"
    shared = shared_parameters(summary)
    # fixed values that listed points change: say what the grid's points have
    partial = {k: v for k, v in summary["fixed"].items() if k not in shared}
    if grid and partial:
        text += " at " + ", ".join(_setting(k, v) for k, v in partial.items())
    if listed:
        text += ("; plus " if text else "") + _and([_point_words(p) for p in listed])
    return text


def _point_words(point: dict) -> str:
    """A listed point: "lstm with m = 45" when it leads with a word, else "eta = 0.2, m = 30"."""
    items = list(point.items())
    if isinstance(items[0][1], str):
        rest = ", ".join(_setting(k, v) for k, v in items[1:])
        return _word(items[0][1]) + (f" with {rest}" if rest else "")
    return ", ".join(_setting(k, v) for k, v in items)


def _setting(name: str, value) -> str:
    """ "m = 45", never broken across lines."""
    return f"{name}\u00a0=\u00a0{_word(value)}"


def _word(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def table_html(rows: list[dict]) -> str:
    """The points, best first, each linking its own report; numbers set right, point names
    never broken; every string escaped."""

    def fmt(x, spec):
        return "" if x is None else format(x, spec)

    body = []
    for r in rows:
        name = html.escape(r["point"])
        link = f'<a href="{html.escape(r["report"])}">{name}</a>' if r.get("report") else name
        status = r["status"] + (f": {r['error']}" if r["error"] else "")
        numbers = [
            fmt(r.get("val_bits_per_char"), ".3f"),
            fmt(r.get("best_smooth_loss"), ".3f"),
            fmt(r.get("final_smooth_loss"), ".3f"),
            fmt(r.get("n_params"), ","),
            fmt(r.get("updates_per_sec"), ",.0f"),
            fmt(r.get("seconds"), ".1f"),
        ]
        body.append(
            f'<tr><td class="rnn-point">{link}</td>'
            + "".join(f'<td class="num">{html.escape(c)}</td>' for c in numbers)
            + f"<td>{html.escape(status)}</td></tr>"
        )
    head = (
        "validation bits/char",
        "best smooth loss (nats/char)",
        "final smooth loss (nats/char)",
        "parameters",
        "updates/s",
        "time (s)",
    )
    return (
        '<table class="rnn-table"><thead><tr><th>point</th>'
        + "".join(f'<th class="num">{h}</th>' for h in head)
        + "<th>status</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


def render_report(sweep_dir: Path) -> Path:
    """reports/<sweep>/index.html: the sweep notebook, executed and rendered like the report."""
    executed = sweep_dir / "index.ipynb"
    build.execute(SWEEP_NOTEBOOK, executed, {"sweep_dir": str(sweep_dir.resolve())}, cwd=sweep_dir)
    with_html = sweep_dir / "index.html"
    build.render(executed, with_html)
    return with_html


def main(argv=None) -> int:
    """`python -m rnn.sweep ...`: `python -m rnn sweep ...`."""
    from .__main__ import main as rnn_main

    return rnn_main(["sweep", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
