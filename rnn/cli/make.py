"""What `make` hands on: its variables, character for character, turned into a command line.

make expands `$` in the variables given on its command line before a recipe runs, and a
shell pasting them into a command would expand them again. The Makefile instead exports what
was typed (`$(value VAR)`, which expands nothing) as RNN_DATA, RNN_OUT, RNN_PARAMS, RNN_PAPER,
RNN_SWEEP, RNN_SCHEDULER, RNN_CONFIG and RNN_BUDGET; this module reads them from the
environment, refuses in one line what cannot be meant (an empty OUT, unbalanced quotes in
PARAMS), and calls the command (CONFIG, a parameters file, comes before PARAMS' own):

    python -m rnn.cli.make report [--retrain] [--accept-failure] | bonus | pdf | sweep | race

PARAMS is split as a POSIX shell splits words (quotes and backslashes), with nothing
expanded, and handed on word for word: the command line takes each -p NAME VALUE as a pair
(a value beginning with '-' is a value) and keeps a text parameter's value as typed ("007",
"1e400").
"""

from __future__ import annotations

import os
import shlex
import sys

from rnn.errors import RNNError

COMMANDS = ("report", "bonus", "pdf", "sweep", "race")
PAPERS = ("a4", "letter")


def variable(name: str, *, required: bool = True) -> str:
    """make's variable `name` as typed (from RNN_<name>); an empty one is refused."""
    value = os.environ.get(f"RNN_{name}", "")
    if required and not value:
        raise RNNError(f"{name} is empty: give it a value ({name}=...) or leave it out")
    return value


def parameters_arguments(params: str) -> list[str]:
    """PARAMS as the command line's words, split as a shell splits them (nothing expanded),
    each -p/-r with its name and value and each -f/-y with its value; the command line
    (rnn.runs.values) reads the values, a text parameter's exactly as typed."""
    try:
        words = shlex.split(params)
    except ValueError as err:
        raise RNNError(f"PARAMS: {err} in {params!r}") from None
    takes = dict.fromkeys(("-p", "--parameters", "-r", "--parameters_raw"), 2)
    takes |= dict.fromkeys(("-f", "--parameters_file", "-y", "--parameters_yaml"), 1)
    i = 0
    while i < len(words):
        n = takes.get(words[i])
        if n is None:
            raise RNNError(
                f"PARAMS: unexpected {words[i]!r}; give -p NAME VALUE, -r NAME VALUE, -f FILE "
                f"or -y YAML"
            )
        if i + n >= len(words):
            what = "a name and a value" if n == 2 else "a value"
            raise RNNError(f"PARAMS: {words[i]} needs {what} ({params!r})")
        i += n + 1
    return words


def config_arguments() -> list[str]:
    """CONFIG=file.yaml as the report's first parameters file (PARAMS over it)."""
    config = variable("CONFIG", required=False)
    return ["-f", config] if config else []


def arguments(command: str, flags: set[str]) -> list[str]:
    """The command line (python -m rnn ...) of `command` from make's variables; RNNError if
    one is unusable."""
    if command == "report":
        data, out = variable("DATA"), variable("OUT")
        args = ["report", f"--data={data}", f"--out={out}"]
        args += ["--retrain"] * ("--retrain" in flags)
        args += ["--accept-failure"] * ("--accept-failure" in flags)
        return args + config_arguments() + parameters_arguments(variable("PARAMS", required=False))
    if command == "race":  # OUT left as make's default means the race's own folder
        out = "reports/race" if os.environ.get("RNN_OUT_ORIGIN") == "file" else variable("OUT")
        config = variable("CONFIG", required=False) or "configs/ten-minutes.yaml"
        args = ["race", f"--data={variable('DATA')}", f"--out={out}", f"--config={config}"]
        return args + [f"--budget={variable('BUDGET')}"]
    if command == "bonus":  # OUT left as make's default means the bonus report's own folder
        out = "reports/bonus" if os.environ.get("RNN_OUT_ORIGIN") == "file" else variable("OUT")
        args = ["bonus", f"--data={variable('DATA')}", f"--out={out}"]
        return args + parameters_arguments(variable("PARAMS", required=False))
    if command == "pdf":
        paper = variable("PAPER")
        if paper not in PAPERS:
            raise RNNError(f"PAPER must be one of {', '.join(PAPERS)}, got {paper!r}")
        return ["pdf", f"--out={variable('OUT')}", f"--paper={paper}"]
    scheduler = variable("SCHEDULER", required=False)
    return (
        ["sweep"] + ([f"--scheduler={scheduler}"] if scheduler else []) + ["--", variable("SWEEP")]
    )


FLAGS = {"--retrain", "--accept-failure"}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS or set(argv[1:]) - FLAGS:
        usage = (
            f"usage: python -m rnn.cli.make {{{','.join(COMMANDS)}}} [--retrain] [--accept-failure]"
        )
        print(usage, file=sys.stderr)
        return 2
    try:
        args = arguments(argv[0], set(argv[1:]))
    except RNNError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from rnn.cli.commands import main as rnn_main

    os.environ["RNN_MAKE"] = "1"  # its messages then name make's switches (ACCEPT_FAILURE=1)
    return rnn_main(args)


if __name__ == "__main__":
    sys.exit(main())
