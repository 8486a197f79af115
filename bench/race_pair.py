"""Candidates for the race's configuration, two at a time: the race's own side of each
(rnn.race.contest.train_rnn: one thread, validation left out of the budget, timed apart) for
BUDGET seconds, both at once, each process pinned to a core of its own, as `make race` runs
its two sides.

A configuration whose rate falls (lr_anneal) is set by its n_updates, and what the budget
holds depends on the machine and on what runs beside it. So each side first trains for
--calibrate seconds to measure its updates per second, then trains afresh with n_updates set
to --share of what BUDGET holds at that rate (time_budget still stops it at BUDGET). It prints
one line a configuration: the rate, n_updates, what stopped it, epochs, the best validation
bits/char and the curve's last points; --json writes every point.

    .venv/bin/python bench/race_pair.py configs/ten-minutes.yaml my-candidate.yaml --budget 600
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import sys
from pathlib import Path
from queue import Empty


def side(path: str, core: int | None, args, queue) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    from rnn.race import contest
    from rnn.runs import driver

    cfg, _ = contest.load_config(path)
    data = driver.prepare(cfg, args.data)
    quiet = lambda kind, payload: None  # noqa: E731
    first = contest.train_rnn(cfg, data, args.calibrate, quiet)
    rate = first["updates"] / first["train_seconds"]
    cfg = dataclasses.replace(cfg, n_updates=max(1, int(args.share * args.budget * rate)))
    record = contest.train_rnn(cfg, data, args.budget, quiet)
    queue.put((path, rate, cfg.n_updates, record))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+", help="one or two parameters files")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training")
    parser.add_argument("--calibrate", type=float, default=20.0, help="seconds to measure")
    parser.add_argument("--share", type=float, default=0.97, help="of what BUDGET holds")
    parser.add_argument("--data", type=Path, default=Path("data/shakespeare.txt"))
    parser.add_argument("--json", type=Path, help="every point of every curve, here")
    args = parser.parse_args(argv)
    if len(args.configs) > 2:
        parser.error("at most two configurations (one a core)")
    from rnn.errors import RNNError
    from rnn.race import contest

    for path in args.configs:  # a bad file is one line, before anything trains
        try:
            contest.load_config(path)
        except RNNError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    cores = sorted(os.sched_getaffinity(0))
    pinned = len(cores) >= len(args.configs)
    queue = mp.Queue()
    procs = [
        mp.Process(target=side, args=(p, cores[i] if pinned else None, args, queue))
        for i, p in enumerate(args.configs)
    ]
    for p in procs:
        p.start()
    results = {}
    while len(results) < len(procs):
        try:
            path, rate, n, rec = queue.get(timeout=1.0)
        except Empty:  # a side that died without a result (its traceback is above) ends it
            failed = [c for p, c in zip(procs, args.configs) if p.exitcode not in (None, 0)]
            if failed:
                for p in procs:
                    p.terminate()
                print(f"error: {', '.join(failed)} failed; nothing measured", file=sys.stderr)
                return 1
            continue
        best = min(bits for *_, bits in rec["points"])
        last = [(round(s), round(bits, 4)) for s, _, _, bits in rec["points"][-4:]]
        print(
            f"{path}: {rate:.2f} updates/s, n_updates {n:,}, stopped by {rec['stopped']} "
            f"after {rec['updates']:,} updates ({rec['epochs']:.2f} epochs); "
            f"best {best:.4f} bits/char; last points (s, bits/char) {last}",
            flush=True,
        )
        results[path] = {"rate": rate, "n_updates": n, "record": rec}
    for p in procs:
        p.join()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0 if all(p.exitcode == 0 for p in procs) else 1


if __name__ == "__main__":
    sys.exit(main())
