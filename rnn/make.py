"""What `make` hands on: its variables, character for character, turned into a command line.

make expands `$` in the variables given on its command line before a recipe runs, and a
shell pasting them into a command would expand them again. The Makefile instead exports what
was typed (`$(value VAR)`, which expands nothing) as RNN_DATA, RNN_OUT, RNN_PARAMS, RNN_PAPER,
RNN_SWEEP and RNN_SCHEDULER; this module reads them from the environment, refuses in one line
what cannot be meant (an empty OUT, unbalanced quotes in PARAMS), and calls the command:

    python -m rnn.make report [--retrain] | pdf | sweep

PARAMS is split as a POSIX shell splits words (quotes and backslashes), with nothing
expanded. A -p value is handed on as data (YAML), so that a value beginning with '-' is a
value, not an option, and a text parameter keeps exactly what was typed ("007", "1e400").
"""

from __future__ import annotations

import json
import os
import shlex
import sys

from .errors import RNNError

COMMANDS = ("report", "pdf", "sweep")
PAPERS = ("a4", "letter")


def variable(name: str, *, required: bool = True) -> str:
    """make's variable `name` as typed (from RNN_<name>); an empty one is refused."""
    value = os.environ.get(f"RNN_{name}", "")
    if required and not value:
        raise RNNError(f"{name} is empty: give it a value ({name}=...) or leave it out")
    return value


def parameters_arguments(params: str) -> list[str]:
    """PARAMS as the build's arguments: each -p/-r pair as a one-entry YAML mapping."""
    from .build import typed_value

    try:
        words = shlex.split(params)
    except ValueError as err:
        raise RNNError(f"PARAMS: {err} in {params!r}") from None
    args, i = [], 0
    pairs = {"-p": typed_value, "--parameters": typed_value}
    pairs |= {"-r": lambda _, raw: raw, "--parameters_raw": lambda _, raw: raw}
    singles = {"-f": "--parameters_file", "--parameters_file": "--parameters_file"}
    singles |= {"-y": "--parameters_yaml", "--parameters_yaml": "--parameters_yaml"}
    while i < len(words):
        word = words[i]
        if word in pairs:
            if i + 2 >= len(words):
                raise RNNError(f"PARAMS: {word} needs a name and a value ({params!r})")
            name, raw = words[i + 1], words[i + 2]
            value = pairs[word](name, raw)
            args.append("--parameters_yaml=" + json.dumps({name: value}, ensure_ascii=False))
            i += 3
        elif word in singles:
            if i + 1 >= len(words):
                raise RNNError(f"PARAMS: {word} needs a value ({params!r})")
            args.append(f"{singles[word]}={words[i + 1]}")
            i += 2
        else:
            raise RNNError(
                f"PARAMS: unexpected {word!r}; give -p NAME VALUE, -r NAME VALUE, -f FILE "
                f"or -y YAML"
            )
    return args


def arguments(command: str, retrain: bool = False) -> list[str]:
    """The command line of `command` from make's variables; RNNError if one is unusable."""
    if command == "report":
        data, out = variable("DATA"), variable("OUT")
        args = [f"--data={data}", f"--out={out}"] + (["--retrain"] if retrain else [])
        return args + parameters_arguments(variable("PARAMS", required=False))
    if command == "pdf":
        paper = variable("PAPER")
        if paper not in PAPERS:
            raise RNNError(f"PAPER must be one of {', '.join(PAPERS)}, got {paper!r}")
        return ["--pdf-only", f"--out={variable('OUT')}", f"--paper={paper}"]
    scheduler = variable("SCHEDULER", required=False)
    return ([f"--scheduler={scheduler}"] if scheduler else []) + ["--", variable("SWEEP")]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS or set(argv[1:]) - {"--retrain"}:
        print(f"usage: python -m rnn.make {{{','.join(COMMANDS)}}} [--retrain]", file=sys.stderr)
        return 2
    try:
        args = arguments(argv[0], "--retrain" in argv[1:])
    except RNNError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if argv[0] == "sweep":
        from .sweep import main as command
    else:
        from .build import main as command
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
