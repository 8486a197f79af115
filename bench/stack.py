"""The stacked, batched path (rnn.engine.stack) on one thread: `make bench` (after bench.py).

For char-rnn's configuration (two-layer LSTM, m = 128, batch 50, sequences of 50) and a few
bigger ones, in float32 (and char-rnn's also in float64): characters per second of
loss_and_grads_stack, wall and per CPU second; the model's matrix-multiply rate (GFLOP/s,
rnn.engine.stack.matmul_flops per character) as a share of this machine's one-thread matrix-multiply
rate in the same precision, measured in the same run (numpy's `@` on 1024 x 1024 matrices, and
on a (50, 256) x (256, 512) product of a step's size); the cost of an Adam step on all the
parameters; and, with the PyTorch extra installed, PyTorch's characters per second with
char-rnn's configuration on one thread (nn.LSTM on one-hot input, Adam, gradient norm clipped
at 5). Random batches of the corpus; nothing is a test: figures depend on the machine and its
load (the load average is printed with them).

    .venv/bin/python bench/stack.py --data data/shakespeare.txt --json bench/results/stack.json
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import rnn  # noqa: E402
from rnn.engine.cells import GATES, STATE  # noqa: E402
from rnn.engine.stack import layer_names, loss_and_grads_stack, matmul_flops  # noqa: E402
from rnn.runs.atomic import write_atomic  # noqa: E402

# (name, cell, layers, m, batch, sequence length, dtype)
CONFIGS = [
    ("char-rnn", "lstm", 2, 128, 50, 50, "float32"),
    ("char-rnn", "lstm", 2, 128, 50, 50, "float64"),
    ("lstm-256", "lstm", 2, 256, 50, 64, "float32"),
    ("lstm-512", "lstm", 2, 512, 32, 100, "float32"),
    ("ten-min", "gru", 2, 256, 32, 64, "float32"),  # configs/ten-minutes.yaml
]


def configuration(name: str, cell: str, L: int, m: int, B: int, T: int) -> dict:
    """A row's configuration, as both sides' rows name it."""
    return {"name": name, "cell": cell, "layers": L, "m": m, "batch": B, "seq_length": T}


def best_rate(fn, seconds: float) -> tuple[float, float]:
    """(calls per wall second, calls per CPU second): the best of five rounds of about
    seconds / 5 each, after one call that warms up."""
    fn()
    t0 = time.perf_counter()
    fn()
    n = max(1, int(seconds / 5 / max(time.perf_counter() - t0, 1e-6)))
    wall = cpu = 0.0
    for _ in range(5):
        w, c = time.perf_counter(), time.process_time()
        for _ in range(n):
            fn()
        wall = max(wall, n / (time.perf_counter() - w))
        cpu = max(cpu, n / max(time.process_time() - c, 1e-9))
    return wall, cpu


def matmul_rates(dtype: str, seconds: float) -> dict:
    """GFLOP/s of numpy's `@` on one thread: square 1024 and a step-sized product."""
    rng = np.random.default_rng(0)
    out = {}
    for name, (r, k, c) in {
        "square_1024": (1024, 1024, 1024),
        "step_50x256x512": (50, 256, 512),
    }.items():
        a, b = rng.standard_normal((r, k)).astype(dtype), rng.standard_normal((k, c)).astype(dtype)
        wall, cpu = best_rate(lambda a=a, b=b: a @ b, seconds)
        out[name] = {"gflops": round(2 * r * k * c * wall / 1e9, 1)}
        out[name]["gflops_cpu"] = round(2 * r * k * c * cpu / 1e9, 1)
    return out


def random_params(cell, L, m, K, dtype, rng) -> dict:
    G = GATES[cell]
    P = {}
    for name in layer_names(L):
        kind = name.rstrip("0123456789")
        cols = {"W": m, "U": K if name == "U" else m, "b": 1, "V": m, "c": 1}[kind]
        rows = K if kind in "Vc" else G * m
        P[name] = (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(dtype)
    return P


def adam_step(P: dict, grads: dict):
    """Training's update of every parameter, as a function of no arguments: the gradients
    clipped and Adam's step, in place (rnn.engine.optim.update_in_place, what rnn.train runs on the
    stack's path)."""
    params, g = rnn.engine.model.Params(**P), rnn.engine.model.Params(**grads)
    opt = rnn.engine.optim.Adam(eta=2e-3)
    state = opt.init(params)
    return (lambda: rnn.engine.optim.update_in_place(opt, params, g, state, 1.0, 5.0)), (
        "rnn.engine.optim.update_in_place (Adam, clipped at 5)"
    )


def stack_row(name, cell, L, m, B, T, dtype, ids, K, seconds, rates) -> dict:
    rng = np.random.default_rng(0)
    P = random_params(cell, L, m, K, dtype, rng)
    starts = rng.integers(0, len(ids) - T - 1, B)
    X, Y = rnn.engine.batch.sequences(ids, starts, T)
    state0 = [np.zeros((STATE[cell] * m, B), dtype) for _ in range(L)]
    wall, cpu = best_rate(lambda: loss_and_grads_stack(P, cell, X, Y, state0), seconds)
    step, label = adam_step(P, loss_and_grads_stack(P, cell, X, Y, state0)[1])
    adam_wall, _ = best_rate(step, seconds / 3)
    flops = matmul_flops(cell, L, m, K)
    chars, chars_cpu = wall * T * B, cpu * T * B
    square, small = rates[dtype]["square_1024"]["gflops"], rates[dtype]["step_50x256x512"]["gflops"]
    square_cpu = rates[dtype]["square_1024"]["gflops_cpu"]
    return configuration(name, cell, L, m, B, T) | {
        "dtype": dtype,
        "chars_per_sec": round(chars),
        "chars_per_cpu_sec": round(chars_cpu),
        "gflops": round(chars * flops / 1e9, 1),
        "share_of_square_matmul": round(chars * flops / 1e9 / square, 3),
        "share_of_step_matmul": round(chars * flops / 1e9 / small, 3),
        "share_of_square_matmul_cpu": round(chars_cpu * flops / 1e9 / square_cpu, 3),
        "adam_ms": round(1e3 / adam_wall, 3),
        "adam": label,
        "chars_per_sec_with_adam": round(T * B / (1 / wall + 1 / adam_wall)),
    }


def torch_row(config, ids, K: int, seconds: float) -> dict | None:
    """PyTorch on one of CONFIGS (float32), one thread, as char-rnn trains (one-hot input,
    Adam, the gradient's norm clipped at 5): None without the extra."""
    try:
        import torch
    except ImportError:
        return None
    name, cell, L, m, B, T, _ = config
    torch.set_num_threads(1)
    torch.manual_seed(0)
    layer = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    lstm, out = layer(K, m, num_layers=L), torch.nn.Linear(m, K)
    params = list(lstm.parameters()) + list(out.parameters())
    opt = torch.optim.Adam(params, lr=2e-3)
    rng = np.random.default_rng(0)
    state = [None]

    def update():
        starts = rng.integers(0, len(ids) - T - 1, B)
        X, Y = rnn.engine.batch.sequences(ids, starts, T)
        x = torch.nn.functional.one_hot(torch.from_numpy(X.astype(np.int64)), K).float()
        h, state[0] = lstm(x, state[0])
        state[0] = tuple(s.detach() for s in state[0]) if cell == "lstm" else state[0].detach()
        loss = torch.nn.functional.cross_entropy(
            out(h).reshape(T * B, K), torch.from_numpy(Y.astype(np.int64)).reshape(-1)
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()

    wall, cpu = best_rate(update, seconds)
    return configuration(name, cell, L, m, B, T) | {
        "torch": torch.__version__,
        "chars_per_sec": round(wall * T * B),
        "chars_per_cpu_sec": round(cpu * T * B),
        "gflops": round(wall * T * B * matmul_flops(cell, L, m, K) / 1e9, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/shakespeare.txt"))
    parser.add_argument("--json", type=Path, default=Path("bench/results/stack.json"))
    parser.add_argument("--seconds", type=float, default=3.0, help="about this long per row")
    args = parser.parse_args()
    threadpool_limits(1)
    text = rnn.load_text(args.data)
    vocab = rnn.Vocab.from_text(text)
    ids, K = vocab.encode(text), len(vocab)
    print(f"rnn.engine.stack on one thread; load average {os.getloadavg()[0]:.2f} (2 cores shared)")
    rates = {dt: matmul_rates(dt, args.seconds) for dt in ("float32", "float64")}
    for dt, r in rates.items():
        print(
            f"numpy @ {dt}: 1024^3 {r['square_1024']['gflops']:.1f} GFLOP/s, "
            f"(50x256)(256x512) {r['step_50x256x512']['gflops']:.1f} GFLOP/s",
            flush=True,
        )
    rows = []
    for config in CONFIGS:
        row = stack_row(*config, ids, K, args.seconds, rates)
        rows.append(row)
        print(
            f"{row['name']:9s} {row['cell']} L={row['layers']} m={row['m']:3d} B={row['batch']} "
            f"T={row['seq_length']:3d} {row['dtype']}: {row['chars_per_sec']:7,d} chars/s "
            f"({row['chars_per_cpu_sec']:,d} per CPU s), {row['gflops']:5.1f} GFLOP/s = "
            f"{row['share_of_square_matmul']:.0%} of 1024^3 @, "
            f"{row['share_of_step_matmul']:.0%} of a step's @ "
            f"(per CPU s: {row['share_of_square_matmul_cpu']:.0%} of 1024^3 @); "
            f"Adam {row['adam_ms']:.2f} ms, {row['chars_per_sec_with_adam']:,d} chars/s with it",
            flush=True,
        )
    torch_rows = [torch_row(c, ids, K, args.seconds) for c in CONFIGS if c[-1] == "float32"]
    if torch_rows[0] is None:
        print("PyTorch: not installed (make torch adds it)")
    for ours, theirs in zip([r for r in rows if r["dtype"] == "float32"], torch_rows):
        if theirs is not None:
            print(
                f"PyTorch {theirs['torch']} {theirs['name']:9s}, one thread, Adam and clipping: "
                f"{theirs['chars_per_sec']:7,d} chars/s ({theirs['chars_per_cpu_sec']:,d} per "
                f"CPU s), {theirs['gflops']:.1f} GFLOP/s; this package "
                f"{ours['chars_per_sec_with_adam'] / theirs['chars_per_sec']:.2f}x it",
                flush=True,
            )
    out = {
        "load_average": os.getloadavg()[0],
        "matmul": rates,
        "stack": rows,
        "torch": torch_rows,
    }
    write_atomic(args.json, json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
