"""Peak memory of a whole report build on a large corpus: `make bench` (after corpus.py).

Writes a text of --mb megabytes (the default corpus's lines, shuffled with a fixed seed, so
that it is not one text repeated), then runs `python -m rnn report` on it at the default
parameters (part VI on) and samples, every --every seconds, the resident memory of the
build's whole process tree: the build, papermill's kernel and anything else it starts.
Prints the peak of the sum, its time, and the bound the project promises:
4 x the corpus file + ALLOWANCE_MB.

    python bench/report_memory.py --data data/shakespeare.txt --mb 100 --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ALLOWANCE_MB = 300  # the fixed part of the bound: interpreters, libraries, the kernel's own
# With the optional torch extra, part I's autograd column imports PyTorch in the notebook's
# kernel: about 220 MB resident more (measured: `python -c "import torch"` holds 224 MB), which
# the allowance does not cover for small corpora.
TORCH_NOTE = "the torch extra is installed: part I's autograd column loads PyTorch (~220 MB)"


def write_corpus(source: Path, target: Path, mb: int) -> int:
    """About mb megabytes of source's lines in a seeded random order; returns the size."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    rng, size = random.Random(0), 0
    with open(target, "w", encoding="utf-8") as f:
        while size < mb * 1_000_000:
            rng.shuffle(lines)
            block = "".join(lines)
            f.write(block)
            size += len(block.encode("utf-8"))
    return target.stat().st_size


def tree_rss(root: psutil.Process) -> tuple[int, dict]:
    """Resident bytes of root and all its descendants, and per process (pid -> name, rss)."""
    each = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            name = f"{p.pid} (of {p.ppid()}) " + " ".join(p.cmdline()[:3])[:80]
            each[p.pid] = (name, p.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return sum(rss for _, rss in each.values()), each


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/shakespeare.txt"))
    parser.add_argument("--mb", type=int, default=100, help="size of the generated text")
    parser.add_argument("--every", type=float, default=0.1, help="seconds between samples")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("params", nargs="*", help="extra -p NAME VALUE for the build")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rnn-bench-") as tmp:
        corpus = Path(tmp) / "big.txt"
        size = write_corpus(args.data, corpus, args.mb)
        cmd = [
            sys.executable,
            "-m",
            "rnn",
            "report",
            "--data",
            str(corpus),
            "--out",
            tmp + "/out",
        ]
        t0 = time.perf_counter()
        child = subprocess.Popen(
            cmd + args.params, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        root = psutil.Process(child.pid)
        peak, at_peak, samples = 0, {}, 0
        while child.poll() is None:
            total, each = tree_rss(root)
            samples += 1
            if total > peak:
                peak, at_peak = total, each
            time.sleep(args.every)
        seconds = time.perf_counter() - t0
        log = child.stdout.read().decode("utf-8", "replace")
        built = (Path(tmp) / "out" / "report.html").is_file()  # a build that ran, not a no-op
    bound = 4 * size + ALLOWANCE_MB * 1_000_000
    torch = importlib.util.find_spec("torch") is not None
    figures = {
        "corpus_bytes": size,
        "exit_code": child.returncode,
        "report_written": built,
        "seconds": round(seconds, 1),
        "peak_tree_rss_bytes": peak,
        "peak_over_corpus": round(peak / size, 2),
        "bound_bytes": bound,
        "within_bound": peak <= bound,
        "torch_installed": torch,
        "samples": samples,
        "at_peak": {str(p): {"process": name, "rss": rss} for p, (name, rss) in at_peak.items()},
    }
    print(log.strip().splitlines()[-1] if log.strip() else "(no output)")
    print(
        f"report on a {size / 1e6:.0f} MB corpus: {seconds:.1f} s; peak resident memory of the "
        f"whole process tree {peak / 1e6:,.0f} MB ({peak / size:.2f} x the corpus; bound "
        f"4 x + {ALLOWANCE_MB} MB = {bound / 1e6:,.0f} MB: {'within' if peak <= bound else 'OVER'})"
    )
    for name, rss in sorted(at_peak.values(), key=lambda x: -x[1]):
        print(f"  {rss / 1e6:8,.0f} MB  {name}")
    if torch:
        print(f"  ({TORCH_NOTE})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    if not built:
        print("error: the build wrote no report.html: the figures above measure nothing")
    return 0 if child.returncode == 0 and built and peak <= bound else 1


if __name__ == "__main__":
    sys.exit(main())
