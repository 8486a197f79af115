"""The command line: python -m rnn (or `rnn`) report | bonus | pdf | sweep | race | train |
sample | gradcheck | parameters. Options take the notebook's parameter names (--n_updates, or
--n-updates).

python -m rnn report --data data/shakespeare.txt --out reports -p eta 0.05
python -m rnn bonus --data data/shakespeare.txt --out reports/bonus -p assignment adam
python -m rnn pdf --out reports
python -m rnn sweep sweeps/example.yaml
python -m rnn race --config configs/ten-minutes.yaml --budget 600
python -m rnn train --data data/shakespeare.txt --out runs/default --n_updates 100000
python -m rnn sample --checkpoint runs/default/checkpoint.npz --temperature 0.8 --prime "ROMEO"
python -m rnn gradcheck --data data/shakespeare.txt --m 5

Exit status, the same for every command (`run_command`): 0 done; 1 a result that failed
(training that did not learn, a gradient check above its threshold, a notebook cell that
raised, a sweep point that failed); 2 bad input (one line naming the file or parameter);
130 interrupted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from rnn.errors import BuildError, Cancelled, Interrupted, RNNError
from rnn.runs import checkpoint, driver, lock
from rnn.runs import values as param_values
from rnn.runs.config import (
    RUN,
    TEXT_MAX,
    TRAINING,
    Config,
    check_float,
    check_int,
    markdown_table,
    notebook_parameters_source,
    type_of,
    write_generated,
)
from rnn.runs.paths import DEFAULT_CONFIG, DEFAULT_DATA, REPORTS

OK, FAILED, BAD_INPUT, INTERRUPTED = 0, 1, 2, 130
OUT_OF_MEMORY = "error: out of memory; lower m, n_updates or the lengths of what is sampled"
ACCEPT = "--accept-failure keeps it as a result"
ACCEPT_MAKE = "make ... ACCEPT_FAILURE=1 keeps it as a result"  # rnn.cli.make sets RNN_MAKE


# --- the one mapping from what went wrong to a line and an exit status ----------------------


def run_command(args) -> int:
    """Run the chosen command; every error becomes one line on stderr and an exit status."""
    driver.terminate_like_interrupt()
    try:
        return args.run(args)
    except RNNError as err:
        print(f"error: {err}", file=sys.stderr)
        return BAD_INPUT
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        if err.notebook:
            print(f"the partly executed notebook is {err.notebook}", file=sys.stderr)
        return FAILED
    except Interrupted as stop:
        print(interrupted_line(stop), file=sys.stderr)
        return INTERRUPTED
    except Cancelled as stop:  # before anything was trained or written: it says so
        print(stop, file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:
        print(args.interrupted, file=sys.stderr)
        return INTERRUPTED
    except MemoryError:
        print(OUT_OF_MEMORY, file=sys.stderr)
        return BAD_INPUT


def interrupted_line(stop: Interrupted) -> str:
    at = stop.checkpoint_step
    kept = f"checkpoint at update {at:,}" if at is not None else "no checkpoint was written"
    return f"interrupted at update {stop.step:,}; {kept}; run the same command again to continue"


def say(line: str) -> None:
    """A line on stdout that leaves a progress bar on the terminal whole (tqdm's write clears
    the bar, prints, and redraws it)."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)


def failed(message: str, accept: bool) -> int:
    """A result that is not what was asked for: one line, and FAILED unless accepted."""
    if accept:
        print(f"warning: {message}", file=sys.stderr)
        return OK
    accept = ACCEPT_MAKE if os.environ.get("RNN_MAKE") else ACCEPT
    print(f"error: {message}; {accept}", file=sys.stderr)
    return FAILED


# --- report, pdf, sweep --------------------------------------------------------------------


def cmd_report(args) -> int:
    from rnn.report import build, execution

    started = time.perf_counter()
    # Reading the notebook's parameters loads papermill: seconds before anything else shows.
    say(f"checking the parameters and the corpus for {args.out}")
    params = param_values.collect(
        execution.NOTEBOOK, args.parameters, args.parameters_raw, args.parameters_file, args.yaml
    )
    request = build.Request(args.data, args.out, params, args.retrain)
    built = build.build_report(request, log=say)
    print(f"wrote {built.html} ({time.perf_counter() - started:.1f} s in all)")
    problem = built.verdict.line
    return failed(f"{problem}; the report says so", args.accept_failure) if problem else OK


def cmd_pdf(args) -> int:
    from rnn.report import printing

    print("printing the PDF with headless Chromium (a few seconds)")
    started = time.perf_counter()
    for pdf in printing.print_pdfs(args.out, args.paper):
        print(f"wrote {pdf} in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
    return OK


def cmd_bonus(args) -> int:
    from rnn.report import bonus

    started = time.perf_counter()
    say(f"checking the parameters and the corpus for {args.out}")
    params = param_values.collect(
        bonus.notebook_path(), args.parameters, args.parameters_raw, args.parameters_file, args.yaml
    )
    html_file = bonus.build(args.data, args.out, params, log=say)
    print(f"wrote {html_file} ({time.perf_counter() - started:.1f} s in all)")
    return OK


def cmd_race(args) -> int:
    """Check, run both sides, print, write (under OUT's lock)."""
    from rnn.race import contest, result

    p = contest.plan(args.data, args.out, args.config, args.budget, args.sequential)
    if not p.torch:
        print(contest.TORCH_MISSING, file=sys.stderr)
    with lock.hold(p.out, f"python -m rnn race into {p.out}"):
        try:
            rec = contest.run(p)
        except contest.SideLost as err:
            print(f"error: {err}; nothing was written", file=sys.stderr)
            return FAILED
        print(result.summary(rec))
        paths = result.write(p.out, rec)
    print(f"wrote {paths[0]} and {paths[1]}")
    return OK


def cmd_sweep(args) -> int:
    from rnn.runs import corpus
    from rnn.sweep import comparison, execute, grid

    spec = grid.load_spec(args.sweep)
    if Path(spec["data"]) == DEFAULT_DATA.resolve() and not DEFAULT_DATA.exists():
        print(f"getting the default corpus into {DEFAULT_DATA}")
        try:
            corpus.fetch(DEFAULT_DATA)
        except RuntimeError as err:
            raise RNNError(str(err)) from None
    sweep_dir = (args.out / spec["name"]).resolve()
    t0 = time.perf_counter()
    records = execute.run_sweep(spec, sweep_dir, args.scheduler, args.workers)
    wall = time.perf_counter() - t0
    print("rendering the sweep's page (about 15 s)")
    page = comparison.render_report(sweep_dir)
    ran = [r for r in records if r["status"] == "done"]
    lost = [r for r in records if r["status"] == "failed"]
    if ran:
        total = sum(r["seconds"] for r in ran)
        print(
            f"{len(ran)} points ran in {wall:.1f} s of wall time; their own times add up to "
            f"{total:.1f} s (parallel speed-up {total / wall:.2f}x)"
        )
    print(f"wrote {page}" + (f"; {len(lost)} point(s) failed" if lost else ""))
    return FAILED if lost else OK


# --- train, sample, gradcheck, parameters --------------------------------------------------


def cmd_train(args) -> int:
    from rnn.engine.progress import Progress
    from rnn.runs.outcome import verdict

    cfg = Config.from_dict({name: getattr(args, name) for name in driver_names()})
    check_int("print_every", args.print_every, 1, allow_none=True)
    data = driver.prepare(cfg, args.data)
    with lock.hold(args.out, f"python -m rnn train into {args.out}"):
        p = driver.plan(args.out, cfg, data.corpus.sha256, extend=True)
        if p.action == "train" and not args.force:
            check_extension(args.out, cfg, p)
        if args.resume and p.action == "train":
            differs = f" (it differs: {'; '.join(p.other[:3])})" if p.other else ""
            raise RNNError(f"{args.out}: no checkpoint of this run to continue from{differs}")
        show = not args.quiet and Progress(
            every=args.print_every, decode=data.vocab.decode if args.print_samples else None
        )
        with driver.stop_requests() as should_stop:
            trained = driver.run(
                cfg,
                data,
                args.out,
                policy=driver.Policy(replace_other=args.force, extend=True),
                controls=driver.Controls(args.backend, show, should_stop=should_stop),
            )
    result = trained.result
    print(what_train_did(p, trained, args.out))
    if result.stopped_by_budget:
        print(driver.budget_line(result, cfg))
    if len(result.loss):
        print(
            f"{len(result.loss):,} updates ({result.epochs:.2f} epochs); smooth loss first "
            f"{result.smooth_loss[0]:.3f}, final {result.smooth_loss[-1]:.3f}, "
            f"best {result.best_smooth_loss:.3f}"
        )
    if len(result.val_steps):
        best = float(np.min(result.val_loss))
        print(
            f"validation: best {best / math.log(2):.3f} bits per character "
            f"(perplexity {math.exp(best):.2f}) at update {result.best_step:,}"
        )
    print(f"checkpoint: {trained.checkpoint}")
    problem = verdict(result).line
    return failed(problem, args.accept_failure) if problem else OK


def check_extension(out: Path, cfg: Config, p: driver.Plan) -> None:
    """A finished run that differs only in having fewer updates, and that cannot be extended
    exactly (rnn.runs.driver.extends), is refused with the reason rather than as another run."""
    if len(p.other) != 1 or not p.other[0].startswith("n_updates:"):
        return
    final = Path(out) / driver.FINAL
    n = checkpoint.load(final)[1]["config"]["n_updates"]
    if n >= cfg.n_updates:
        return
    why = (
        f"its learning rate was annealed to 0 over its own last updates "
        f"(lr_anneal {cfg.lr_anneal:g})"
        if cfg.lr_anneal > 0
        else f"its closing validation, at update {n:,}, is not one a {cfg.n_updates:,}-update "
        f"run makes (eval_every {cfg.eval_every:,})"
    )
    raise RNNError(
        f"{final}: its run of {n:,} updates cannot be extended to {cfg.n_updates:,} exactly: "
        f"{why}; use --force to train afresh"
    )


def what_train_did(p: driver.Plan, trained: driver.Run, out: Path) -> str:
    """One line in the command line's words: trained, continued, extended or reused."""
    sessions = trained.sessions
    total = sum(s["seconds"] for s in sessions)
    if p.action == "reuse":
        when = trained.finished_at.replace("T", " ")[:16]
        return (
            f"{out} already holds this finished run (of {when}, trained in {total:.1f} s): "
            f"nothing to train"
        )
    last = sessions[-1]
    if last["from"] == 0:
        return f"trained in {last['seconds']:.1f} s"
    what = (
        f"extended the finished run of {last['from']:,} updates"
        if p.path is not None and p.path.name == driver.FINAL
        else f"continued from update {last['from']:,} of an interrupted run"
    )
    return f"{what} ({last['seconds']:.1f} s now, {total:.1f} s in all)"


def driver_names() -> list[str]:
    return [f.name for f in fields(Config) if f.metadata["kind"] in (TRAINING, RUN)]


def cmd_sample(args) -> int:
    from rnn.engine.model import Params
    from rnn.engine.sample import Sampling, sample_primed
    from rnn.runs.data import Vocab

    check_int("length", args.length, 0, TEXT_MAX)
    check_float("temperature", args.temperature, low=0.0)
    check_float("top_p", args.top_p, low=0.0, high=1.0, low_open=True)
    check_int("seed", args.seed, 0)
    state, meta = checkpoint.load(args.checkpoint)
    vocab, m, K = Vocab(meta["vocab"]), meta["m"], meta["K"]
    if args.final:
        theta, h = state.theta, state.h[:, :1]  # the first stream's, as validation reads
    elif state.best_val_theta is not None:
        theta, h = state.best_val_theta, state.best_val_h
    else:
        theta, h = state.best_smooth_theta, state.best_smooth_h
    params = Params.unflatten(theta, m, K, meta["config"]["cell"])
    prime = vocab.encode(args.prime) if args.prime else vocab.encode(vocab.chars[:1])
    rng = np.random.default_rng(args.seed)
    how = Sampling(args.temperature, args.top_p)
    ids = sample_primed(params, prime, args.length, rng, how, h0=h)
    sys.stdout.write(vocab.decode(prime) + vocab.decode(ids) + "\n")
    return OK


def cmd_gradcheck(args) -> int:
    from rnn.engine.gradcheck import DELTA, PASS_BELOW, REL_FLOOR, check_network, gradient_check
    from rnn.runs.data import load_corpus

    check_int("m", args.m, 1, 100)
    given = Config(
        cell=args.cell, seq_length=args.seq_length, sigma=args.sigma, seed=args.seed,
        layers=args.layers,
    )  # fmt: skip
    corpus = load_corpus(args.data)
    vocab, ids = corpus.vocab, corpus.ids[: args.seq_length + 1]
    if len(ids) < args.seq_length + 1:
        raise RNNError(
            f"{args.data}: shorter than seq_length + 1 = {args.seq_length + 1} characters"
        )
    params = check_network(given.train_spec(), len(vocab), args.m)
    errors = gradient_check(params, ids[:-1], ids[1:], np.zeros((params.state_size, 1)))
    layers = f", {args.layers} layers" if args.layers > 1 else ""
    print(
        f"{args.cell} cell{layers}, m = {args.m}, K = {len(vocab)}, {args.seq_length} characters; "
        f"fourth-order centered differences, delta = {DELTA:g}; error "
        f"|ga - gn| / max({REL_FLOOR:g}, |ga| + |gn|), largest of the entries checked:"
    )
    for name, err in errors.items():
        sampled = f" ({err.checked:,} of {err.size:,} entries, at random)" if err.sampled else ""
        print(f"  {name}: {err:.2e}{sampled}")
    worst = max(errors, key=lambda name: errors[name])
    if errors[worst] < PASS_BELOW:
        print(f"passed: every error is below {PASS_BELOW:g} (largest {errors[worst]:.2e}, {worst})")
        return OK
    print(f"failed: the error of {worst}, {errors[worst]:.2e}, is not below {PASS_BELOW:g}")
    return FAILED


def cmd_parameters(args) -> int:
    if args.form == "write":
        from rnn.report.bonus import parameters_source as bonus_cell

        for path in write_generated(cells={"bonus.ipynb": bonus_cell()}):
            print(f"wrote {path}")
    else:
        print(notebook_parameters_source() if args.form == "notebook" else markdown_table())
    return OK


# --- the parsers ---------------------------------------------------------------------------


def option(parser, *flags, **kw):
    """add_argument, with each --snake_case flag also spelled --kebab-case, and the default
    shown in the help wherever there is one."""
    spelled = list(flags)
    for flag in flags:
        if flag.startswith("--") and "_" in flag:
            spelled.append(flag.replace("_", "-"))
    default = kw.get("default")
    shows = default is not None and default is not False  # 0 == False, and 0 is shown
    if shows and "%(default)" not in kw.get("help", ""):
        shown = "%(default)r" if isinstance(default, str) else "%(default)s"
        kw["help"] = f"{kw.get('help', '')} (default: {shown})"
    return parser.add_argument(*spelled, **kw)


def add_config_arguments(parser: argparse.ArgumentParser, kinds=(TRAINING, RUN)) -> None:
    """One --name option for every Config parameter of these kinds, typed, defaulted,
    limited to its choices and explained as in Config."""
    for f in fields(Config):
        if f.metadata["kind"] not in kinds:
            continue
        kind = type_of(f)
        flag = argparse.BooleanOptionalAction if kind is bool else None
        option(
            parser,
            f"--{f.name}",
            type=None if flag else kind,
            action=flag,
            default=f.default,
            choices=f.metadata["rule"].get("choices"),
            help=f.metadata["help"],
        )


def subcommand(sub, name: str, run, help: str, interrupted: str = "interrupted"):
    p = sub.add_parser(
        name,
        help=help,
        description=help,
        allow_abbrev=False,  # a mistyped option is an error, never another option
    )
    p.set_defaults(run=run, interrupted=interrupted)
    return p


def parameter_options(p) -> None:
    """The notebook parameters' options, -p, -r, -f and -y, as papermill spells them."""
    # -p and -r are taken out of the arguments before parsing (param_values.take_pairs), so
    # that a value may start with a dash; these two are for the help.
    option(
        p,
        "-p",
        "--parameters",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a notebook parameter; the value read as papermill reads it (a number, True, "
        "False, None), but kept as typed for a text parameter (-p title 007)",
    )
    option(
        p,
        "-r",
        "--parameters_raw",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a notebook parameter, its value kept as text",
    )
    option(
        p,
        "-f",
        "--parameters_file",
        action="append",
        metavar="YAML_FILE",
        help="a YAML file of parameters (-p and -r override it)",
    )
    option(
        p,
        "-y",
        "--parameters_yaml",
        dest="yaml",
        action="append",
        metavar="YAML",
        help="parameters as a YAML string",
    )


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rnn",
        description=__doc__.split("\n\n")[0],
        epilog="python -m rnn COMMAND --help explains each command's options",
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = subcommand(
        sub,
        "report",
        cmd_report,
        "train (or reuse the trained run) and render OUT/report.html",
        "interrupted while rendering; the trained run is kept in OUT; run the same command "
        "again to render the report",
    )
    option(p, "--data", type=Path, default=DEFAULT_DATA, help="UTF-8 text to train on")
    option(p, "--out", type=Path, default=REPORTS, help="folder of the report")
    parameter_options(p)
    option(p, "--retrain", action="store_true", help="train afresh even if OUT holds this run")
    option(
        p,
        "--accept_failure",
        action="store_true",
        help="exit 0 even when training failed (the report still says so)",
    )

    p = subcommand(
        sub,
        "bonus",
        cmd_bonus,
        "train the bonus exercises' variants (or reuse them) and render OUT/bonus.html",
        "interrupted; finished variants are kept in OUT/runs; run the same command again",
    )
    option(p, "--data", type=Path, default=DEFAULT_DATA, help="UTF-8 text to train on")
    option(p, "--out", type=Path, default=REPORTS / "bonus", help="folder of the report")
    parameter_options(p)

    p = subcommand(
        sub, "pdf", cmd_pdf, "print OUT's report.html, bonus.html or a sweep's index.html to PDF"
    )
    option(p, "--out", type=Path, default=REPORTS, help="folder of the report")
    option(p, "--paper", choices=("a4", "letter"), default="a4", help="page size")

    p = subcommand(
        sub,
        "sweep",
        cmd_sweep,
        "run a hyperparameter sweep on Dask and render its page",
        "interrupted; finished points are kept; run the same command again to run the others",
    )
    option(p, "sweep", type=Path, help="the sweep's YAML file (see sweeps/example.yaml)")
    option(
        p,
        "--scheduler",
        help="address of a running Dask scheduler, tcp://host:8786 (default: a local cluster)",
    )
    option(p, "--workers", type=int, help="local worker processes (default: one per core)")
    option(p, "--out", type=Path, default=REPORTS, help="parent of the sweep's folder")

    p = subcommand(
        sub,
        "race",
        cmd_race,
        "train a configuration file and PyTorch with char-rnn's configuration for the same "
        "seconds on one core each; write OUT/race.json and OUT/race.html",
        "interrupted; both sides were stopped and nothing was written",
    )
    option(p, "--data", type=Path, default=DEFAULT_DATA, help="UTF-8 text to train on")
    option(p, "--out", type=Path, default=REPORTS / "race", help="folder of the result")
    option(
        p,
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="the package's side: a parameters file, as make report PARAMS='-f FILE' reads it",
    )
    option(p, "--budget", default="600", help="seconds of training on each side")
    option(
        p,
        "--sequential",
        action="store_true",
        help="one side after the other, even with two cores or more",
    )

    p = subcommand(sub, "train", cmd_train, "train, writing OUT/checkpoint.npz")
    option(p, "--data", type=Path, required=True, help="UTF-8 text to train on")
    option(p, "--out", type=Path, default=Path("runs"), help="folder for the checkpoint")
    option(
        p,
        "--resume",
        action="store_true",
        help="insist on continuing this run's checkpoint in OUT: an interrupted run, or a "
        "finished one of fewer updates (by default a run continues one when there is one, "
        "and starts afresh otherwise)",
    )
    option(p, "--force", action="store_true", help="replace a finished run of other parameters")
    option(
        p,
        "--backend",
        default="auto",
        choices=["auto", "numba", "reference"],
        help="the compiled kernels (numba), the numpy reference loop, or numba when installed "
        "(for one layer in float64 without dropout: more layers, dropout or float32 always "
        "train through rnn.engine.stack)",
    )
    option(
        p,
        "--print_every",
        type=int,
        metavar="N",
        help="a loss line every N updates (default: none on a terminal, which shows a bar; "
        "20 lines in all in a log)",
    )
    option(
        p,
        "--print_samples",
        action="store_true",
        help="print each sample training draws (every --sample_every updates) as it is drawn",
    )
    option(p, "--quiet", action="store_true", help="no progress bar and no loss lines")
    option(
        p,
        "--accept_failure",
        action="store_true",
        help="exit 0 even when training failed to learn",
    )
    add_config_arguments(p)

    p = subcommand(sub, "sample", cmd_sample, "sample text from a checkpoint's best model")
    option(p, "--checkpoint", type=Path, required=True, help="a checkpoint.npz")
    option(p, "--length", type=int, default=500, help="characters to sample")
    option(p, "--temperature", type=float, default=1.0, help="softmax temperature")
    option(p, "--top_p", type=float, default=1.0, help="probability mass kept (nucleus sampling)")
    option(p, "--prime", default="", help="text to continue (empty: the first character)")
    option(p, "--seed", type=int, default=0, help="seeds the sampling")
    option(p, "--final", action="store_true", help="the last model, not the best")

    p = subcommand(sub, "gradcheck", cmd_gradcheck, "BPTT against centered differences")
    option(p, "--data", type=Path, required=True, help="UTF-8 text; its first characters are used")
    cells = next(f for f in fields(Config) if f.name == "cell").metadata["rule"]["choices"]
    option(p, "--cell", default="vanilla", choices=cells, help="recurrent cell")
    option(p, "--m", type=int, default=5, help="hidden units")
    option(p, "--seq_length", type=int, default=25, help="characters in the checked sequence")
    option(p, "--sigma", type=float, default=0.01, help="standard deviation of the weights")
    option(p, "--seed", type=int, default=0, help="seeds the weights")
    option(p, "--layers", type=int, default=1, help="recurrent layers (all checked)")

    p = subcommand(
        sub,
        "parameters",
        cmd_parameters,
        "print the parameter list as the notebook's parameters cell (--notebook) or the "
        "README's table (--markdown)",
    )
    form = p.add_mutually_exclusive_group(required=True)
    option(
        form,
        "--notebook",
        dest="form",
        action="store_const",
        const="notebook",
        help="as the notebook's parameters cell",
    )
    option(
        form,
        "--markdown",
        dest="form",
        action="store_const",
        const="markdown",
        help="as the README's table",
    )
    option(
        form,
        "--write",
        dest="form",
        action="store_const",
        const="write",
        help="rewrite the notebook's parameters cell and the README's table",
    )
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pairs: dict = {"parameters": [], "parameters_raw": []}
    if argv[:1] in (["report"], ["bonus"]):
        try:
            pairs, argv = param_values.take_pairs(argv)
        except RNNError as err:
            print(f"error: {err}", file=sys.stderr)
            return BAD_INPUT
    args = make_parser().parse_args(argv)
    if args.command in ("report", "bonus"):
        args.parameters, args.parameters_raw = pairs["parameters"], pairs["parameters_raw"]
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
