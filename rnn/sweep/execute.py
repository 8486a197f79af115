"""A sweep's points run on Dask, each a build of the report in a worker's own folder,
their progress sent to the client; which points are already done.

Workers need no shared filesystem: the client sends each point the corpus and the notebook,
the worker builds in a folder of its own, and the point's files come back through Dask. A
point is skipped when its folder holds a report of the same effective parameters and corpus
(rnn.sweep.grid.identity); otherwise it is built again (its earlier checkpoint goes with it,
so a change of a report-only parameter does not retrain). A point that fails is retried
once, then recorded as failed; the others go on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from rnn.errors import BuildError, RNNError
from rnn.report import build, execution, seal
from rnn.runs import lock
from rnn.runs.atomic import write_atomic
from rnn.sweep.grid import check, identity

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


POINT_FILES = ("report.html", "report.ipynb", "metrics.json", "checkpoint.npz", seal.SEAL)


PROGRESS_TOPIC = "rnn-point-progress"  # Dask events: a point's training progress


POINT_LINES = 10  # progress lines per point


HEARTBEAT = 5.0  # seconds of silence after which the client says what is still running


def files_sha256(out: Path) -> str | None:
    """One SHA-256 over the point's files (names and contents); None if one is missing."""
    h = hashlib.sha256()
    try:
        for name in POINT_FILES:
            h.update(name.encode() + b"\0" + seal.file_sha256(out / name).encode())
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
        except (BuildError, RNNError) as err:
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

    from rnn.engine.progress import Progress, round_interval

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
    notebook = execution.NOTEBOOK.read_bytes()
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
