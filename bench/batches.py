"""Updates and characters per second of each batch size, measured on this machine.

    OPENBLAS_NUM_THREADS=1 python bench/batches.py --data data/shakespeare.txt --cell vanilla

B = 1 runs the compiled single-sequence path, larger batches rnn.engine.batch's matrix-matrix
products; `rnn.engine.train` with sampling and validation off, best of three runs after a warm-up.
Nothing here is a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import time

import rnn
from rnn.runs import driver


def rate(params, ids, B: int, n: int, repeats: int = 3) -> float:
    """Updates per second: the best of `repeats` runs of n updates, after one that warms up."""
    spec = rnn.TrainSpec(cell=params.cell, m=params.m, batch_size=B, sample_every=None)
    spec = spec.replace(eval_every=None)
    rnn.train(params, ids, spec.replace(n_updates=2))
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        rnn.train(params, ids, spec.replace(n_updates=n))
        best = max(best, n / (time.perf_counter() - t))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/shakespeare.txt")
    parser.add_argument("--cell", default="vanilla", choices=rnn.CELLS)
    parser.add_argument("--m", type=int, default=100)
    parser.add_argument("--sizes", default="1, 4, 16, 64")
    parser.add_argument("--seconds", type=float, default=3.0, help="about this long per run")
    args = parser.parse_args()
    data = driver.prepare(rnn.Config(analysis=False), args.data)
    params = rnn.init_params(len(data.vocab), m=args.m, cell=args.cell)
    L = 25
    print(f"{args.cell}, m = {args.m}: B, updates/s, characters/s")
    for B in [int(b) for b in args.sizes.split(",")]:
        guess = rate(params, data.train_ids, B, 20, repeats=1)  # how many fit in the time
        r = rate(params, data.train_ids, B, max(20, int(guess * args.seconds)))
        print(f"{B:>4} {r:>10,.0f} {r * B * L:>12,.0f}", flush=True)


if __name__ == "__main__":
    main()
