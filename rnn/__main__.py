"""Command line: python -m rnn train | sample | gradcheck (the notebooks' parameter names).

python -m rnn train --data data/shakespeare.txt --out runs/default --n_updates 100000
python -m rnn sample --checkpoint runs/default/checkpoint.npz --temperature 0.8 --prime "ROMEO"
python -m rnn gradcheck --data data/shakespeare.txt --m 5
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from . import checkpoint, lock
from . import run as driver
from .build import OUT_OF_MEMORY, interrupted_line
from .config import (
    RUN,
    TEXT_MAX,
    TRAINING,
    Config,
    check_float,
    check_int,
    describe,
    markdown_table,
    notebook_parameters_source,
    write_generated,
)
from .data import Vocab, load_corpus
from .errors import Interrupted, RNNError
from .gradcheck import DELTA, PASS_BELOW, REL_FLOOR, gradient_check
from .model import Params, init_params
from .sample import sample_primed


def add_config_arguments(parser: argparse.ArgumentParser, kinds=(TRAINING, RUN)) -> None:
    """One --name option for every Config parameter of these kinds, typed, defaulted and
    explained as in Config."""
    for p in describe():
        if p["kind"] in kinds:
            flag = argparse.BooleanOptionalAction if p["type"] is bool else None
            parser.add_argument(
                f"--{p['name']}",
                type=None if flag else p["type"],
                action=flag,
                default=p["default"],
                help=f"{p['help']} (default: {p['default']!r})",
            )


def cmd_train(args) -> int:
    cfg = Config.from_dict({name: getattr(args, name) for name in driver_names()})
    data = driver.prepare(cfg, args.data)
    with lock.hold(args.out, f"python -m rnn train into {args.out}"):
        p = driver.plan(args.out, cfg, data.corpus.sha256)
        if args.resume and p.action == "train":
            differs = f" (it differs: {'; '.join(p.other[:3])})" if p.other else ""
            raise RNNError(f"{args.out}: no checkpoint of this run to continue from{differs}")
        with driver.stop_requests() as should_stop:
            trained = driver.run(
                cfg,
                data,
                args.out,
                replace_other=args.force,
                progress=not args.quiet,
                should_stop=should_stop,
                backend=args.backend,
            )
    result = trained.result
    print(trained.provenance)
    if len(result.loss):
        print(
            f"{cfg.n_updates:,} updates ({result.epochs:.2f} epochs); smooth loss final "
            f"{result.smooth_loss[-1]:.3f}, best {result.best_smooth_loss:.3f}"
        )
    if len(result.val_steps):
        best = float(np.min(result.val_loss))
        print(
            f"validation: best {best / math.log(2):.3f} bits per character "
            f"(perplexity {math.exp(best):.2f}) at update {result.best_step:,}"
        )
    print(f"checkpoint: {trained.checkpoint}")
    return 0


def cmd_parameters(args) -> int:
    if args.form == "write":
        for path in write_generated():
            print(f"wrote {path}")
    else:
        print(notebook_parameters_source() if args.form == "notebook" else markdown_table())
    return 0


def driver_names() -> list[str]:
    return [p["name"] for p in describe() if p["kind"] in (TRAINING, RUN)]


def cmd_sample(args) -> int:
    check_int("length", args.length, 0, TEXT_MAX)
    check_float("temperature", args.temperature, low=0.0)
    check_float("top_p", args.top_p, low=0.0, high=1.0, low_open=True)
    check_int("seed", args.seed, 0)
    state, meta = checkpoint.load(args.checkpoint)
    vocab, m, K = Vocab(meta["vocab"]), meta["m"], meta["K"]
    if args.final:
        theta, h = state.theta, state.h
    elif state.best_val_theta is not None:
        theta, h = state.best_val_theta, state.best_val_h
    else:
        theta, h = state.best_smooth_theta, state.best_smooth_h
    params = Params.unflatten(theta, m, K, meta["config"]["cell"])
    prime = vocab.encode(args.prime) if args.prime else vocab.encode(vocab.chars[:1])
    ids = sample_primed(
        params,
        prime,
        args.length,
        np.random.default_rng(args.seed),
        args.temperature,
        args.top_p,
        h0=h,
    )
    sys.stdout.write(vocab.decode(prime) + vocab.decode(ids) + "\n")
    return 0


def cmd_gradcheck(args) -> int:
    check_int("m", args.m, 1, 100)
    Config(cell=args.cell, seq_length=args.seq_length, sigma=args.sigma, seed=args.seed)
    corpus = load_corpus(args.data)
    vocab, ids = corpus.vocab, corpus.ids[: args.seq_length + 1]
    if len(ids) < args.seq_length + 1:
        raise RNNError(
            f"{args.data}: shorter than seq_length + 1 = {args.seq_length + 1} characters"
        )
    params = init_params(len(vocab), m=args.m, sigma=args.sigma, seed=args.seed, cell=args.cell)
    errors = gradient_check(params, ids[:-1], ids[1:], np.zeros((params.state_size, 1)))
    print(
        f"{args.cell} cell, m = {args.m}, K = {len(vocab)}, {args.seq_length} characters; "
        f"fourth-order centered differences, delta = {DELTA:g}; error "
        f"|ga - gn| / max({REL_FLOOR:g}, |ga| + |gn|), largest of the entries checked:"
    )
    for name, err in errors.items():
        sampled = f" ({err.checked:,} of {err.size:,} entries, at random)" if err.sampled else ""
        print(f"  {name}: {err:.2e}{sampled}")
    return 0 if max(errors.values()) < PASS_BELOW else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnn", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train, writing OUT/checkpoint.npz")
    p.add_argument("--data", type=Path, required=True, help="UTF-8 text to train on")
    p.add_argument("--out", type=Path, default=Path("runs"), help="folder for the checkpoint")
    p.add_argument(
        "--resume",
        action="store_true",
        help="insist on continuing this run's checkpoint in OUT (by default a run "
        "continues one when there is one, and starts afresh otherwise)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace a finished run of other parameters in OUT"
    )
    p.add_argument("--backend", default="auto", choices=["auto", "numba", "reference"])
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_arguments(p)
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sample", help="sample text from a checkpoint's best model")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--length", type=int, default=500)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top_p", type=float, default=1.0)
    p.add_argument("--prime", default="", help="text to continue (default: the first character)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--final", action="store_true", help="the last model, not the best")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("gradcheck", help="BPTT against centered differences")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--cell", default="vanilla", help="vanilla, lstm or gru")
    p.add_argument("--m", type=int, default=5)
    p.add_argument("--seq_length", type=int, default=25)
    p.add_argument("--sigma", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_gradcheck)

    p = sub.add_parser(
        "parameters",
        help="print the parameter list as the notebook's "
        "parameters cell (--notebook) or the README's table (--markdown)",
    )
    form = p.add_mutually_exclusive_group(required=True)
    form.add_argument("--notebook", dest="form", action="store_const", const="notebook")
    form.add_argument("--markdown", dest="form", action="store_const", const="markdown")
    form.add_argument(
        "--write",
        dest="form",
        action="store_const",
        const="write",
        help="rewrite the notebook's parameters cell and the README's table",
    )
    p.set_defaults(run=cmd_parameters)

    args = parser.parse_args(argv)
    driver.terminate_like_interrupt()
    try:
        return args.run(args)
    except RNNError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(interrupted_line(stop), file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(OUT_OF_MEMORY, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
