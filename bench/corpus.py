"""Memory and time of a huge corpus: `make bench` (after bench.py).

Writes a text of --mb megabytes (the default corpus repeated), then, in a fresh process,
reads it with rnn.runs.driver.prepare and trains a few updates with validation, as a report would,
and prints the load time and the process's peak resident memory against the file's size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
import rnn
from rnn.runs import driver
t0 = time.perf_counter()
cfg = rnn.Config(n_updates=int(sys.argv[2]), eval_every=10**9, sample_every=10**9)
data = driver.prepare(cfg, sys.argv[1])
load = time.perf_counter() - t0
t0 = time.perf_counter()
spec = cfg.train_spec().replace(eval_every=cfg.n_updates, sample_every=None)
params = spec.init_params(len(data.vocab))
result = rnn.train(params, data.train_ids, spec, val_ids=data.val_ids[:200_000])
print(json.dumps({"load_seconds": load, "train_seconds": time.perf_counter() - t0,
                  "n_chars": data.corpus.n_chars, "K": len(data.vocab),
                  "ids_dtype": str(data.corpus.ids.dtype)}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/shakespeare.txt"))
    parser.add_argument("--mb", type=int, default=100, help="size of the generated text")
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    seed_text = args.data.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.txt"
        with open(big, "wb") as f:
            while f.tell() < args.mb * 1_000_000:
                f.write(seed_text)
        size = big.stat().st_size
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(big), str(args.updates)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        wall = time.perf_counter() - t0
    figures = json.loads(out)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    figures |= {
        "file_bytes": size,
        "peak_rss_bytes": peak,
        "peak_rss_over_file": peak / size,
        "wall_seconds": wall,
    }
    print(
        f"corpus of {size / 1e6:.0f} MB ({figures['n_chars']:,} characters, K = {figures['K']}, "
        f"indices {figures['ids_dtype']}): read and checked in {figures['load_seconds']:.1f} s; "
        f"{args.updates:,} updates with validation in {figures['train_seconds']:.1f} s; "
        f"peak RSS {peak / 1e6:.0f} MB = {peak / size:.2f}x the file"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
