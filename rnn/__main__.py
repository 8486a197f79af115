"""Command line: python -m rnn train | sample | gradcheck (the notebooks' parameter names).

python -m rnn train --data data/shakespeare.txt --out runs/default --n_updates 100000
python -m rnn sample --checkpoint runs/default/checkpoint.npz --temperature 0.8 --prime "ROMEO"
python -m rnn gradcheck --data data/shakespeare.txt --m 5
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

from . import checkpoint
from .config import Config
from .data import Vocab, load_text, split_train_val
from .errors import RNNError
from .gradcheck import REL_FLOOR, STEP, gradient_check
from .model import Params, init_params
from .sample import sample_primed
from .train import train


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One --name option for every Config field, typed and defaulted as in Config."""
    for f in fields(Config):
        kind = {"int": int, "float": float, "str": str}[
            f.type if isinstance(f.type, str) else f.type.__name__
        ]
        parser.add_argument(
            f"--{f.name}", type=kind, default=f.default, help=f"(default: {f.default!r})"
        )


def cmd_train(args) -> int:
    cfg = Config.from_dict({f.name: getattr(args, f.name) for f in fields(Config)})
    text = load_text(args.data)
    vocab = Vocab.from_text(text)
    train_ids, val_ids = split_train_val(vocab.encode(text), cfg.val_fraction)
    path = Path(args.out) / "checkpoint.npz"
    resume = None
    if args.resume and path.exists():
        resume, meta = checkpoint.load(path)
        checkpoint.check_compatible(meta, path, vocab_chars=vocab.chars, m=cfg.m)
        print(f"resuming {path} at update {resume.step:,}")
    saver = checkpoint.Checkpointer(
        path,
        vocab_chars=vocab.chars,
        m=cfg.m,
        config=cfg.to_dict(),
        corpus_sha256=checkpoint.corpus_digest(text),
    )
    result = train(
        init_params(len(vocab), m=cfg.m, sigma=cfg.sigma, seed=cfg.seed),
        train_ids,
        n_updates=cfg.n_updates,
        seq_length=cfg.seq_length,
        eta=cfg.eta,
        sample_every=cfg.sample_every,
        sample_length=cfg.sample_length,
        seed=cfg.seed,
        progress=not args.quiet,
        val_ids=val_ids if len(val_ids) > 1 else None,
        eval_every=cfg.eval_every,
        checkpoint=saver,
        checkpoint_every=cfg.checkpoint_every,
        resume=resume,
        backend=args.backend,
    )
    print(
        f"{cfg.n_updates:,} updates ({result.epochs:.2f} epochs) in {result.seconds:.1f} s; "
        f"smooth loss final {result.smooth_loss[-1]:.3f}, best {result.best_smooth_loss:.3f}"
        if len(result.loss)
        else "no updates made"
    )
    if len(result.val_steps):
        best = float(np.min(result.val_loss))
        print(
            f"validation: best {best / math.log(2):.3f} bits per character "
            f"(perplexity {math.exp(best):.2f}) at update {result.best_step:,}"
        )
    print(f"checkpoint: {path}")
    return 0


def cmd_sample(args) -> int:
    state, meta = checkpoint.load(args.checkpoint)
    vocab, m, K = Vocab(meta["vocab"]), meta["m"], meta["K"]
    if args.final:
        theta, h = state.theta, state.h
    elif state.best_val_theta is not None:
        theta, h = state.best_val_theta, state.best_val_h
    else:
        theta, h = state.best_smooth_theta, state.best_smooth_h
    params = Params.unflatten(theta, m, K)
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
    text = load_text(args.data)
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text[: args.seq_length + 1])
    if len(ids) < args.seq_length + 1:
        raise RNNError(
            f"{args.data}: shorter than seq_length + 1 = {args.seq_length + 1} characters"
        )
    params = init_params(len(vocab), m=args.m, sigma=args.sigma, seed=args.seed)
    errors = gradient_check(params, ids[:-1], ids[1:], np.zeros((args.m, 1)))
    print(
        f"m = {args.m}, K = {len(vocab)}, {args.seq_length} characters; centered differences, "
        f"h = {STEP:g}; relative error |ga - gn| / max({REL_FLOOR:g}, |ga| + |gn|), largest:"
    )
    for name, err in errors.items():
        print(f"  {name}: {err:.2e}")
    return 0 if max(errors.values()) < 1e-6 else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnn", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train, writing OUT/checkpoint.npz")
    p.add_argument("--data", type=Path, required=True, help="UTF-8 text to train on")
    p.add_argument("--out", type=Path, default=Path("runs"), help="folder for the checkpoint")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
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
    p.add_argument("--m", type=int, default=5)
    p.add_argument("--seq_length", type=int, default=25)
    p.add_argument("--sigma", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_gradcheck)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except RNNError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
