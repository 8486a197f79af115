from pathlib import Path

import numpy as np
import pytest

from rnn.cli.commands import main
from rnn.errors import RNNError
from rnn.runs import checkpoint

CORPUS = Path(__file__).parent / "data" / "macbeth-act1.txt"


class Killed(Exception):
    pass


def test_train_killed_then_continued_then_sample(tmp_path, capsys, monkeypatch):
    args = [
        "train",
        "--data",
        str(CORPUS),
        "--out",
        str(tmp_path),
        "--m",
        "16",
        "--eval_every",
        "100",
        "--checkpoint_every",
        "100",
        "--quiet",
        "--n_updates",
        "300",
    ]
    save = checkpoint.save

    def save_then_die(path, state, **kwargs):
        save(path, state, **kwargs)
        if state.step == 200:
            raise Killed  # the process dies right after its checkpoint at update 200

    monkeypatch.setattr(checkpoint, "save", save_then_die)
    with pytest.raises(Killed):
        main(args)
    monkeypatch.setattr(checkpoint, "save", save)
    assert not (tmp_path / "checkpoint.npz").exists()
    assert checkpoint.load(tmp_path / "checkpoint.partial.npz")[0].step == 200

    assert main(args) == 0  # the same command again continues
    out = capsys.readouterr().out
    assert "continued from update 200 of an interrupted run" in out and "300 updates" in out
    state, meta = checkpoint.load(tmp_path / "checkpoint.npz")
    assert state.step == 300 and meta["config"]["m"] == 16
    assert [(s["from"], s["to"]) for s in meta["sessions"]] == [(0, 200), (200, 300)]
    assert not (tmp_path / "checkpoint.partial.npz").exists()

    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(tmp_path / "checkpoint.npz"),
                "--length",
                "60",
                "--prime",
                "MACBETH",
                "--temperature",
                "0.5",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert text.startswith("MACBETH") and len(text) == len("MACBETH") + 60 + 1


def test_another_run_into_a_finished_folder_is_refused_without_force(tmp_path, capsys):
    base = ["train", "--data", str(CORPUS), "--out", str(tmp_path), "--n_updates", "20", "--quiet"]
    assert main(base + ["--m", "8"]) == 0
    before = (tmp_path / "checkpoint.npz").read_bytes()
    assert main(base + ["--m", "9", "--resume"]) == 2
    assert (
        "no checkpoint of this run to continue from (it differs: m: 8 -> 9)"
        in capsys.readouterr().err
    )
    assert main(base + ["--m", "9"]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run of other parameters (m: 8 -> 9); use --force" in err
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert main(base + ["--m", "9", "--force"]) == 0
    assert checkpoint.load(tmp_path / "checkpoint.npz")[1]["m"] == 9
    assert main(base + ["--m", "9", "--seq_length", "7"]) == 2
    assert "seq_length: 25 -> 7" in capsys.readouterr().err
    different = tmp_path / "other.txt"
    different.write_text(CORPUS.read_text() + "more")
    assert main(["train", "--data", str(different)] + base[3:] + ["--m", "9"]) == 2
    assert "the corpus (another file or other contents)" in capsys.readouterr().err


def test_gradcheck_command(capsys):
    assert main(["gradcheck", "--data", str(CORPUS), "--m", "4", "--seq_length", "10"]) == 0
    out = capsys.readouterr().out
    errors = [float(line.split(":")[1]) for line in out.splitlines() if line.startswith("  ")]
    assert len(errors) == 5 and max(errors) < 1e-6


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "missing.txt"], "missing.txt: no such file"),
        (["train", "--data", str(CORPUS), "--eta", "-1"], "parameter eta must be > 0.0"),
        (["sample", "--checkpoint", "nope.npz"], "nope.npz: no such checkpoint"),
        (["train", "--data", str(CORPUS), "--print-every", "0"], "print_every must be >= 1"),
    ],
)
def test_errors_are_one_line(tmp_path, capsys, args, message):
    assert main(args + (["--out", str(tmp_path)] if args[0] == "train" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_a_checkpoint_of_another_cell_is_refused_in_one_line(tmp_path, capsys):
    base = [
        "train",
        "--data",
        str(CORPUS),
        "--out",
        str(tmp_path),
        "--n_updates",
        "20",
        "--m",
        "6",
        "--quiet",
    ]
    assert main(base + ["--cell", "lstm"]) == 0
    assert main(base + ["--cell", "gru", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "cell: 'lstm' -> 'gru'" in err
    sample = ["sample", "--checkpoint", str(tmp_path / "checkpoint.npz"), "--length", "30"]
    assert main(sample) == 0  # the checkpoint's own cell is used to read it
    assert len(capsys.readouterr().out) == 1 + 30 + 1


# --- the command line's shape -------------------------------------------------------------


def subparsers():
    import argparse

    from rnn.cli.commands import make_parser

    parser = make_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_one_command_line_holds_every_command():
    assert set(subparsers()) == {
        "report",
        "bonus",
        "pdf",
        "sweep",
        "race",
        "train",
        "sample",
        "gradcheck",
        "parameters",
    }


def test_every_option_of_every_command_has_help_and_shows_its_default():
    import argparse

    for name, parser in subparsers().items():
        assert parser.description, name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"{name} {action.option_strings or action.dest}"
            assert action.help and action.help.strip(), f"{where}: no help"
            if not any(action.default is nothing for nothing in (None, False, argparse.SUPPRESS)):
                assert "%(default)" in action.help, f"{where}: default not shown"
        parser.format_help()  # every help string formats (no stray %)


def test_options_take_kebab_case_and_closed_sets_are_choices(capsys):
    from rnn.cli.commands import make_parser

    parser = make_parser()
    base = ["train", "--data", "x.txt"]
    snake = parser.parse_args(base + ["--n_updates", "7", "--seq_length", "9"])
    kebab = parser.parse_args(base + ["--n-updates", "7", "--seq-length", "9"])
    assert (snake.n_updates, snake.seq_length) == (kebab.n_updates, kebab.seq_length) == (7, 9)
    assert parser.parse_args(base + ["--accept-failure"]).accept_failure
    for args in (base + ["--cell", "lsmt"], ["gradcheck", "--data", "x", "--cell", "rnn"]):
        with pytest.raises(SystemExit) as stop:
            parser.parse_args(args)
        assert stop.value.code == 2
        assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # no abbreviations: a typo is never another option
        parser.parse_args(base + ["--n_upd", "7"])


# --- verdicts and exit status --------------------------------------------------------------


def test_gradcheck_says_pass_or_fail_and_exits_accordingly(capsys, monkeypatch):
    import rnn.engine.gradcheck

    args = ["gradcheck", "--data", str(CORPUS), "--m", "3", "--seq-length", "8", "--cell", "gru"]
    assert main(args) == 0
    assert "passed: every error is below 1e-06" in capsys.readouterr().out
    # A threshold below the largest error the check finds: the same check now fails.
    monkeypatch.setattr(rnn.engine.gradcheck, "PASS_BELOW", 1e-30)
    assert main(args) == 1
    assert "failed: the error of" in capsys.readouterr().out


def train_args(out, *extra):
    return ["train", "--data", str(CORPUS), "--out", str(out), "--m", "16", "--quiet", *extra]


@pytest.mark.parametrize(
    "eta, message",
    [
        ("5", "the smooth loss rose from"),  # diverges, but stays under train's hard limit
        ("1e-9", "the smooth loss did not fall"),  # learns nothing
    ],
)
def test_a_run_that_did_not_learn_says_so_and_exits_1(tmp_path, capsys, eta, message):
    args = train_args(tmp_path, "--eta", eta, "--n_updates", "2000")
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: training failed: ") and message in err and "\n" not in err
    assert "the validation loss never fell below its value before training" in err
    assert "--accept-failure" in err
    assert (tmp_path / "checkpoint.npz").exists()  # kept, to look at
    assert main(args + ["--accept-failure"]) == 0  # the same run, accepted
    assert capsys.readouterr().err.startswith("warning: training failed: ")


def test_a_run_that_learned_exits_0_and_speaks_for_itself(tmp_path, capsys):
    assert main(train_args(tmp_path, "--n_updates", "2000")) == 0
    out = capsys.readouterr().out
    assert "trained in" in out and "this build" not in out and "rendered" not in out
    assert main(train_args(tmp_path, "--n_updates", "2000")) == 0
    out = capsys.readouterr().out
    assert "already holds this finished run" in out and "nothing to train" in out


# --- extending a finished run --------------------------------------------------------------


def test_extending_a_finished_run_equals_the_longer_run_bit_for_bit(tmp_path, capsys):
    same = ["--eval_every", "500", "--sample_every", "300", "--checkpoint_every", "700"]
    assert main(train_args(tmp_path / "ext", *same, "--n_updates", "1000")) == 0
    assert main(train_args(tmp_path / "ext", *same, "--n-updates", "2000")) == 0
    assert "extended the finished run of 1,000 updates" in capsys.readouterr().out
    assert main(train_args(tmp_path / "long", *same, "--n_updates", "2000")) == 0
    a, meta_a = checkpoint.load(tmp_path / "ext" / "checkpoint.npz")
    b, meta_b = checkpoint.load(tmp_path / "long" / "checkpoint.npz")
    assert a.step == b.step == 2000
    for name in ("theta", "h", "loss", "smooth_loss", "best_smooth_theta", "best_val_theta"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in a.opt:  # the optimizer's state (AdaGrad's G)
        assert np.array_equal(a.opt[name], b.opt[name]), name
    assert (a.smooth, a.best_smooth_step, a.best_val_step) == (
        b.smooth,
        b.best_smooth_step,
        b.best_val_step,
    )
    assert a.val_steps == b.val_steps and a.val_loss == b.val_loss
    assert a.samples.keys() == b.samples.keys()
    assert all(np.array_equal(a.samples[k], b.samples[k]) for k in a.samples)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
    assert meta_a["config"] == meta_b["config"]
    assert [(s["from"], s["to"]) for s in meta_a["sessions"]] == [(0, 1000), (1000, 2000)]


def test_a_run_that_cannot_be_extended_exactly_is_refused_with_the_reason(tmp_path, capsys):
    # Its closing validation at update 1,000 is not one a 2,000-update run makes at 300.
    short = train_args(tmp_path, "--eval_every", "300", "--n_updates", "1000")
    assert main(short) == 0
    before = (tmp_path / "checkpoint.npz").read_bytes()
    assert main(short[:-1] + ["2000"]) == 2
    err = capsys.readouterr().err
    assert "cannot be extended to 2,000 exactly" in err and "eval_every 300" in err
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert main(short[:-1] + ["500"]) == 2  # fewer updates: another run, as before
    assert "holds a finished run of other parameters (n_updates: 1000 -> 500)" in (
        capsys.readouterr().err
    )


def test_an_annealed_run_is_never_extended(tmp_path, capsys):
    short = train_args(tmp_path, "--lr_anneal", "0.5", "--n_updates", "1000")
    assert main(short) == 0
    assert main(short[:-1] + ["2000"]) == 2
    err = capsys.readouterr().err
    assert "cannot be extended to 2,000 exactly" in err and "lr_anneal 0.5" in err


# --- progress ------------------------------------------------------------------------------


def test_progress_in_a_log_is_plain_lines_without_carriage_returns(tmp_path):
    import subprocess
    import sys

    args = [sys.executable, "-m", "rnn"] + train_args(tmp_path, "--n_updates", "1000")
    args.remove("--quiet")
    done = subprocess.run(args + ["--print-samples", "--sample_every", "500"], capture_output=True)
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    assert "\r" not in err and "\r" not in done.stdout.decode()
    lines = [line for line in err.splitlines() if line.startswith("update ")]
    assert lines[0].startswith("update 50 of 1,000: loss ") and ", smooth " in lines[0]
    assert len(lines) == 20 and lines[-1].startswith("update 1,000 of 1,000")
    assert "sample before update 500:" in err


def test_print_every_sets_the_lines(tmp_path, capsys):
    args = train_args(tmp_path, "--n_updates", "600", "--print-every", "200")
    args.remove("--quiet")
    assert main(args) == 0
    err = capsys.readouterr().err
    assert [line.split(":")[0] for line in err.splitlines() if line.startswith("update")] == [
        "update 200 of 600",
        "update 400 of 600",
        "update 600 of 600",
    ]


# --- parameter values ----------------------------------------------------------------------


def test_parameter_values_follow_papermill_but_text_stays_as_typed():
    from papermill.cli import _resolve_type

    from rnn.report import execution
    from rnn.runs import values as param_values

    argv = ["report", "-p", "title", "-draft", "-p", "m", "8", "--retrain", "-r", "author", "9"]
    pairs, rest = param_values.take_pairs(argv)
    assert rest == ["report", "--retrain"]
    given = ["-p", "title", "007", "-p", "author", "1e400", "-p", "m", "8", "-p", "eta", "1e-2"]
    given += ["-p", "analysis", "False", "-p", "prime", "None", "-p", "title", "-draft"]
    pairs, _ = param_values.take_pairs(given)
    values = param_values.collect(execution.NOTEBOOK, pairs["parameters"])
    assert values == {
        "title": "-draft",
        "author": "1e400",
        "m": 8,
        "eta": 0.01,
        "analysis": False,
        "prime": "None",
    }
    for name, raw in pairs["parameters"]:
        if name in ("m", "eta", "analysis"):  # not text: exactly papermill's reading
            assert values[name] == _resolve_type(raw)
    with pytest.raises(RNNError, match="-p needs a name and a value"):
        param_values.take_pairs(["report", "-p", "m"])


@pytest.mark.parametrize("name", ["report.ipynb", "bonus.ipynb", "sweep.ipynb", "explore.ipynb"])
def test_a_notebooks_defaults_are_what_papermill_reads_there(name):
    import ast

    import papermill as pm

    from rnn.report.execution import notebook_defaults
    from rnn.runs.paths import notebook_path

    ours = notebook_defaults(notebook_path(name))
    theirs = pm.inspect_notebook(str(notebook_path(name)))
    assert ours and set(ours) == set(theirs)
    for parameter, value in ours.items():  # papermill gives each default as its source text
        assert ast.literal_eval(theirs[parameter]["default"]) == value, parameter


@pytest.mark.slow
def test_a_report_of_a_run_that_did_not_learn_is_written_and_exits_1(tmp_path, capsys):
    tiny = {"n_updates": 2000, "m": 16, "eta": 5, "passage_length": 50, "compare_length": 30}
    tiny |= {"analysis": False, "check_m": 0, "sample_length": 30}
    args = ["report", "--data", str(CORPUS), "--out", str(tmp_path)]
    for name, value in tiny.items():
        args += ["-p", name, str(value)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "the smooth loss rose from" in captured.err and "the report says so" in captured.err
    assert (tmp_path / "report.html").exists() and (tmp_path / "checkpoint.npz").exists()
    for stage in ("executing the notebook", "executed the notebook in", "rendered HTML in"):
        assert stage in captured.out
    assert main(args + ["--accept-failure"]) == 0  # rendered again from the same run
    assert "warning: training failed" in capsys.readouterr().err


def test_a_first_compile_is_announced_and_a_warm_cache_says_nothing(tmp_path, capsys, monkeypatch):
    import importlib

    from rnn.engine import progress

    train_module = importlib.import_module("rnn.engine.train")  # rnn.train is the function

    args = train_args(tmp_path, "--n_updates", "100", "--print-every", "100")
    args.remove("--quiet")
    assert main(args) == 0  # compiles the kernels if this machine has not yet
    capsys.readouterr()
    assert not progress.cold_cache()
    assert main(args + ["--seed", "1", "--force"]) == 0
    assert "compil" not in capsys.readouterr().err
    monkeypatch.setattr(train_module, "cold_cache", lambda: True)
    assert main(args + ["--seed", "2", "--force"]) == 0
    err = capsys.readouterr().err
    assert "compiling the kernels (first run only, about 30 s)" in err
    assert "compiled the kernels in" in err


def test_a_long_stage_keeps_saying_it_is_still_at_it():
    import time

    from rnn.report import build

    lines = []
    with build.still("executing the notebook", lines.append, every=0.05):
        time.sleep(0.22)
    assert len(lines) >= 2 and lines[0].startswith("  still executing the notebook (")
    time.sleep(0.15)
    assert len(lines) <= 5  # and it stops with the stage
