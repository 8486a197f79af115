"""Parameter values as given (the command line's, a parameters file's), read by papermill's
own rules: -f files, then -y YAML, then -p NAME VALUE, then -r NAME VALUE (raw text), each
over the ones before.

One difference, on purpose: a -p value for a text parameter (one the notebook declares `str`)
is kept exactly as typed, so `-p title 007` is "007" and `-p author 1e400` is text where
papermill would make 7 and inf of them. Everything else is papermill's (`_resolve_type`:
True, False, None, an int, a float, else the text). `take_pairs` takes the -p and -r pairs
out of the arguments before argparse sees them, so that a value may start with a dash
(`-p title -draft`).
"""

from __future__ import annotations

from pathlib import Path

from rnn.errors import RNNError

PAIR_FLAGS = {"-p": "parameters", "--parameters": "parameters"} | {
    "-r": "parameters_raw",
    "--parameters_raw": "parameters_raw",
    "--parameters-raw": "parameters_raw",
}


def take_pairs(argv: list[str]) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """The -p and -r pairs, verbatim and in order, and the other arguments."""
    pairs: dict[str, list[tuple[str, str]]] = {"parameters": [], "parameters_raw": []}
    rest, i = [], 0
    while i < len(argv):
        kind = PAIR_FLAGS.get(argv[i])
        if kind is None:
            rest.append(argv[i])
            i += 1
            continue
        if len(argv) - i < 3:
            raise RNNError(f"{argv[i]} needs a name and a value: {argv[i]} NAME VALUE")
        pairs[kind].append((argv[i + 1], argv[i + 2]))
        i += 3
    return pairs, rest


def text_parameters(notebook) -> set[str]:
    """The notebook's parameters declared `str`, as papermill.inspect_notebook reads them."""
    import papermill as pm

    found = pm.inspect_notebook(str(notebook))
    return {name for name, p in found.items() if p["inferred_type_name"] == "str"}


def parse_value(raw: str, text: bool = False):
    """A -p value: as typed for a text parameter, else as papermill's command line reads it."""
    from papermill.cli import _resolve_type

    return raw if text else _resolve_type(raw)


def collect(
    notebook,
    parameters=(),
    parameters_raw=(),
    files=(),
    yamls=(),
) -> dict:
    """The parameters given on the command line, merged as papermill merges them."""
    values: dict = {}
    for f in files or ():
        values |= _yaml_mapping(_read_text(f), f)
    for y in yamls or ():
        values |= _yaml_mapping(y, "-y")
    texts = text_parameters(notebook) if parameters else set()
    for name, raw in parameters or ():
        values[name] = parse_value(raw, text=name in texts)
    for name, raw in parameters_raw or ():
        values[name] = raw
    return values


def _read_text(f) -> str:
    if not Path(f).is_file():
        raise RNNError(f"{f}: no such parameters file")
    try:
        return Path(f).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise RNNError(f"{f}: not UTF-8 text (invalid byte at offset {err.start})") from None


def _yaml_mapping(text: str, where) -> dict:
    """A YAML mapping read as papermill reads one (dates stay text)."""
    import yaml
    from papermill.iorw import NoDatesSafeLoader

    try:
        loaded = yaml.load(text, Loader=NoDatesSafeLoader) or {}
    except yaml.YAMLError as err:
        raise RNNError(f"{where}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(loaded, dict):
        raise RNNError(f"{where}: parameters must map names to values")
    return loaded
