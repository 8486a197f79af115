"""Training speed and memory, measured on this machine: `make bench`.

Prints, and writes as JSON: updates/s of the reference per-time-step loop and of the compiled
path with their ratio, for each cell (vanilla, LSTM, GRU) at m = 50, 100 (the report's
setting) and 200 with AdaGrad, and at m = 100 with each other optimizer (Adam, RMSProp, as
the adam preset trains: mean loss, no clipping); the wall time of a full 100,000-update run
at the default settings; its peak traced memory; the time to sample 1,000 characters and to
run the report's gradient check, and a gradient check at K = 5000; and the bonus report's
speed table (rnn.report.speed): the textbook loop, the loop with the suggested speed-ups, the
compiled path and PyTorch (with the torch extra) at m = 100, on one thread. Nothing here is a
test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np

import rnn
import rnn.engine.cells
from rnn.report import speed
from rnn.runs.atomic import write_atomic


def updates_per_sec(params, ids, spec, backend: str, repeats: int = 3) -> float:
    """Best of `repeats` runs of spec.n_updates updates (after one warm-up run that compiles)."""
    controls = rnn.Controls(backend=backend)
    rnn.train(params, ids, spec.replace(n_updates=min(spec.n_updates, 50)), controls=controls)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        rnn.train(params, ids, spec, controls=controls)
        best = max(best, spec.n_updates / (time.perf_counter() - t0))
    return best


def speed_at(cell: str, m: int, optimizer: str, ids, K: int, n: tuple[int, int]) -> dict:
    """One row: n = (updates timed on the compiled path, on the reference loop)."""
    assignment = "adagrad" if optimizer == "adagrad" else "adam"
    cfg = rnn.Config(assignment=assignment, optimizer=optimizer, cell=cell, m=m)
    spec = cfg.train_spec().replace(sample_every=None)
    params = spec.init_params(K)
    ref = updates_per_sec(params, ids, spec.replace(n_updates=n[1]), "reference", repeats=2)
    fast = updates_per_sec(params, ids, spec.replace(n_updates=n[0]), "numba")
    return {
        "cell": cell,
        "m": m,
        "optimizer": optimizer,
        "reference_updates_per_sec": round(ref, 1),
        "fast_updates_per_sec": round(fast, 1),
        "speedup": round(fast / ref, 2),
    }


def full_run(ids, K: int, n_updates: int) -> dict:
    """The report's training call at the default settings, timed, with memory traced."""
    train_ids, val_ids = rnn.split_train_val(ids, rnn.Config().val_fraction)
    spec = rnn.Config(n_updates=n_updates).train_spec()
    params = spec.init_params(K)
    tracemalloc.start()
    t0 = time.perf_counter()
    result = rnn.train(params, train_ids, spec, val_ids=val_ids)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "n_updates": n_updates,
        "seconds": round(seconds, 2),
        "updates_per_sec": round(n_updates / seconds, 1),
        "peak_traced_memory_mb": round(peak / 2**20, 2),
        "history_arrays_mb": round((result.loss.nbytes + result.smooth_loss.nbytes) / 2**20, 2),
        "final_smooth_loss": round(float(result.smooth_loss[-1]), 3),
        "best_smooth_loss": round(result.best_smooth_loss, 3),
    }


def small_jobs(ids, K: int) -> dict:
    params = rnn.init_params(K, m=100, seed=0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    rnn.sample(params, np.zeros((100, 1)), ids[0], 1000, rng)
    sample_s = time.perf_counter() - t0
    check = rnn.init_params(K, m=5, seed=0)
    t0 = time.perf_counter()
    rnn.gradient_check(check, ids[:25], ids[1:26], np.zeros((5, 1)))
    check_s = time.perf_counter() - t0
    big = rnn.init_params(5000, m=5, seed=0)
    big_ids = np.random.default_rng(0).integers(0, 5000, 26)
    t0 = time.perf_counter()
    rnn.gradient_check(big, big_ids[:25], big_ids[1:], np.zeros((5, 1)))
    big_s = time.perf_counter() - t0
    return {
        "sample_1000_chars_seconds": round(sample_s, 4),
        "gradient_check_m5_seconds": round(check_s, 4),
        "gradient_check_K5000_m5_seconds": round(big_s, 3),
    }


def speed_table(ids, K: int, cells, seconds: float) -> list[dict]:
    """rnn.report.speed.table at m = 100, each row printed as it is measured."""
    print(
        f"speed table (m = 100, one thread, about {seconds:g} s a row): textbook loop, "
        f"with the suggested speed-ups, compiled path, PyTorch",
        flush=True,
    )

    def show(row):
        what = f"  {row['cell']:7s} {row['variant']:8s}"
        if row["updates_per_sec"] is None:
            print(f"{what} {row['note']}", flush=True)
            return
        print(
            f"{what} {row['updates_per_sec']:8,.0f} updates/s ({row['updates_per_cpu_sec']:6,.0f} "
            f"per CPU second, {row['cpu_seconds'] / row['seconds']:4.0%} of a core), "
            f"{row['ratio']:5.1f}x the textbook loop; losses within {row['loss_difference']:.0e}",
            flush=True,
        )

    work = speed.Workload(cells=tuple(cells), m=100, seconds=seconds)
    rows = speed.table(ids, K, work=work, progress=show)
    rounded = {
        "updates_per_sec": 1,
        "updates_per_cpu_sec": 1,
        "ratio": 2,
        "seconds": 3,
        "cpu_seconds": 3,
    }
    return [
        {k: round(v, rounded[k]) if k in rounded and v else v for k, v in row.items()}
        for row in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/shakespeare.txt"))
    parser.add_argument("--json", type=Path, default=Path("bench/results/bench.json"))
    parser.add_argument("--full-updates", type=int, default=100_000, help="0 skips the full run")
    parser.add_argument("--cells", default=",".join(rnn.CELLS), help="comma-separated cells")
    parser.add_argument("--m", default="50,100,200", help="comma-separated hidden sizes")
    parser.add_argument(
        "--optimizers",
        default=",".join(rnn.engine.optim.OPTIMIZERS),
        help="comma-separated optimizers; those other than adagrad are timed at m = 100",
    )
    parser.add_argument(
        "--table-seconds",
        type=float,
        default=2.0,
        help="seconds per row of the speed table (0 skips it)",
    )
    args = parser.parse_args()

    text = rnn.load_text(args.data)
    vocab = rnn.Vocab.from_text(text)
    ids = vocab.encode(text)
    K = len(vocab)
    out = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "corpus": {"path": str(args.data), "characters": len(text), "K": K},
    }
    print(f"corpus {args.data}: {len(text):,} characters, K = {K}")

    out["speed"] = []
    rows = [(cell, int(m), "adagrad") for cell in args.cells.split(",") for m in args.m.split(",")]
    rows += [
        (cell, 100, optimizer)
        for optimizer in args.optimizers.split(",")
        if optimizer != "adagrad"
        for cell in args.cells.split(",")
    ]
    for cell, m, optimizer in rows:
        cost = (
            (rnn.engine.model.GATES[cell] * m) * m / 100**2
        )  # recurrent work relative to vanilla m=100
        n_fast = int(min(40_000, max(2_000, 20_000 / cost)))
        n_ref = int(min(2_000, max(200, 1_000 / cost)))
        row = speed_at(cell, m, optimizer, ids, K, (n_fast, n_ref))
        out["speed"].append(row)
        print(
            f"{cell:7s} m = {m:3d} {optimizer:7s}: reference "
            f"{row['reference_updates_per_sec']:8,.0f} updates/s, compiled "
            f"{row['fast_updates_per_sec']:8,.0f} updates/s, ratio {row['speedup']:.1f}x",
            flush=True,
        )

    if args.table_seconds:
        out["speed_table"] = speed_table(ids, K, args.cells.split(","), args.table_seconds)

    if not args.full_updates:
        write_atomic(args.json, json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.json}")
        return
    full = full_run(ids, K, args.full_updates)
    out["full_run"] = full
    print(
        f"full run, {full['n_updates']:,} updates at the defaults (validation included): "
        f"{full['seconds']:.1f} s ({full['updates_per_sec']:,.0f} updates/s), "
        f"peak traced memory {full['peak_traced_memory_mb']:.1f} MB "
        f"(of which history arrays {full['history_arrays_mb']:.1f} MB), "
        f"final / best smooth loss {full['final_smooth_loss']:.2f} / {full['best_smooth_loss']:.2f}"
    )
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"process peak resident memory: {out['max_rss_mb']:.0f} MB")

    jobs = small_jobs(ids, K)
    out["small_jobs"] = jobs
    print(
        f"sampling 1,000 characters: {jobs['sample_1000_chars_seconds'] * 1e3:.1f} ms; "
        f"gradient check (m = 5, 25 characters): {jobs['gradient_check_m5_seconds'] * 1e3:.0f} ms; "
        f"at K = 5000: {jobs['gradient_check_K5000_m5_seconds']:.1f} s"
    )

    write_atomic(args.json, json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
