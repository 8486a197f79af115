"""The run parameters: one list, each with its default, type, domain and help text.

Everything else follows from `Config`: the notebook's `parameters` cell
(`notebook_parameters_source`), the command line's options, the sweep's checks, the README's
table (`markdown_table`), and the rule for when a trained model may be reused
(`training_key`). Tests fail when any of them drifts from this list.

Each parameter has a kind:
- TRAINING: changes the trained model (or what is recorded while it trains); a checkpoint is
  reused only when every TRAINING parameter and the corpus agree.
- REPORT: changes only what the report draws from the finished model; changing one
  re-renders the report without training again.
- RUN: how a run is carried out, not what it computes (checkpoint cadence).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from numbers import Integral, Real

from .cells import CELLS
from .errors import ConfigError
from .order import ORDERS

TRAINING, REPORT, RUN = "training", "report", "run"
TEXT_MAX = 1_000_000  # characters of any one text the report shows


def check_int(
    name: str,
    value,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    allow_none: bool = False,
):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(f"parameter {name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"parameter {name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"parameter {name} must be <= {maximum:,}, got {value:,}")
    return int(value)


def check_float(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
):
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ConfigError(f"parameter {name} must be a finite number, got {value!r}")
    value = float(value)
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(
            f"parameter {name} must be {'>' if low_open else '>='} {low}, got {value}"
        )
    if high is not None and (value >= high if high_open else value > high):
        raise ConfigError(
            f"parameter {name} must be {'<' if high_open else '<='} {high}, got {value}"
        )
    return value


def check_str(name: str, value, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"parameter {name} must be a string, got {value!r}")
    if choices is not None and value not in choices:
        raise ConfigError(f"parameter {name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"parameter {name} must be True or False, got {value!r}")
    return value


def _param(default, kind: str, help: str, **rule):
    """A Config field: its default, kind (TRAINING, REPORT, RUN), help text and domain
    (minimum= for integers; low=, high=, low_open= for numbers; choices= for strings)."""
    return field(default=default, metadata={"kind": kind, "help": help, "rule": rule})


@dataclass(frozen=True)
class Config:
    """Every parameter of a run, with the original report's defaults."""

    # The network and its training
    cell: str = _param("vanilla", TRAINING, "recurrent cell: vanilla, lstm or gru", choices=CELLS)
    n_updates: int = _param(100_000, TRAINING, "AdaGrad updates, one sequence each", minimum=0)
    m: int = _param(100, TRAINING, "hidden units", minimum=1)
    eta: float = _param(0.1, TRAINING, "AdaGrad learning rate", low=0.0, low_open=True)
    seq_length: int = _param(25, TRAINING, "characters per sequence (BPTT length)", minimum=1)
    sigma: float = _param(
        0.01, TRAINING, "standard deviation of the initial weights", low=0.0, low_open=True
    )
    seed: int = _param(0, TRAINING, "seeds the initial weights and the sampling", minimum=0)
    sample_every: int = _param(
        10_000, TRAINING, "updates between synthesized-text samples", minimum=1
    )
    sample_length: int = _param(
        200, TRAINING, "characters per sample during training", minimum=0, maximum=TEXT_MAX
    )
    val_fraction: float = _param(
        0.05,
        TRAINING,
        "held-out suffix of the corpus for validation (0 turns it off)",
        low=0.0,
        high=0.5,
    )
    eval_every: int = _param(
        10_000,
        TRAINING,
        "updates between validation passes (they choose the best model)",
        minimum=1,
    )
    order: str = _param(
        "sequential",
        TRAINING,
        "training order: sequential, chunks (shuffled each epoch) or random positions",
        choices=ORDERS,
    )
    n_chunks: int = _param(
        20, TRAINING, "chunks the training text is cut into for order chunks", minimum=1
    )
    batch_size: int = _param(
        1, TRAINING, "sequences per update, read as parallel streams", minimum=1, maximum=4096
    )
    checkpoint_every: int = _param(10_000, RUN, "updates between checkpoints", minimum=1)
    # What the report draws from the finished model
    title: str = _param("", REPORT, "the report's title (empty: one naming the cell)")
    author: str = _param("", REPORT, "the report's author (empty: none shown)")
    check_m: int = _param(
        5,
        REPORT,
        "hidden units of the gradient-check network (0 skips part I)",
        minimum=0,
        maximum=100,
    )
    passage_length: int = _param(
        1000,
        REPORT,
        "characters of the passage from the best model",
        minimum=0,
        maximum=TEXT_MAX,
    )
    temperatures: str = _param(
        "0.5, 0.8, 1.0, 1.2", REPORT, "sampling temperatures to compare, comma-separated"
    )
    top_p: float = _param(
        0.9,
        REPORT,
        "probability mass kept by nucleus sampling in the comparison",
        low=0.0,
        high=1.0,
        low_open=True,
    )
    prime: str = _param(
        "", REPORT, "text the compared samples continue (empty: the corpus's first character)"
    )
    compare_length: int = _param(
        300, REPORT, "characters per sample in the comparison", minimum=0, maximum=TEXT_MAX
    )
    analysis: bool = _param(True, REPORT, "include part VI, what the network learned")
    ngram_order: int = _param(
        5, REPORT, "highest order of the n-gram baselines in part VI", minimum=1, maximum=10
    )
    analysis_length: int = _param(
        1000,
        REPORT,
        "characters of the validation text shown in part VI",
        minimum=1,
        maximum=TEXT_MAX,
    )

    def __post_init__(self):
        for f in fields(self):
            # frozen: the checked value (a natural spelling made the field's type) set once
            object.__setattr__(self, f.name, _check_field(f, getattr(self, f.name)))
        if self.order == "chunks" and self.n_chunks < self.batch_size:
            raise ConfigError(
                f"parameter n_chunks must be >= batch_size ({self.batch_size}) for order "
                f"chunks, got {self.n_chunks}"
            )
        self.temperature_list()

    def temperature_list(self) -> list[float]:
        """temperatures as numbers; a comma-separated string so papermill passes it as is."""
        try:
            values = [float(t) for t in str(self.temperatures).split(",") if t.strip()]
        except ValueError:
            raise ConfigError(
                f"parameter temperatures must be numbers separated by commas, "
                f"got {self.temperatures!r}"
            ) from None
        for t in values:
            check_float("temperatures", t, low=0.0)
        return values

    @property
    def report_title(self) -> str:
        if self.title.strip():
            return self.title
        name = {"vanilla": "vanilla RNN", "lstm": "LSTM", "gru": "GRU"}[self.cell]
        return f"A character-level {name}, trained by BPTT and AdaGrad"

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """Strict: an unknown key is an error (a typo must not silently run the defaults)."""
        known = names()
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown parameter {unknown[0]!r}; known: {', '.join(known)}")
        return cls(**values)

    @classmethod
    def from_namespace(cls, namespace: dict) -> Config:
        """The Config of the parameters defined in a namespace (a notebook's globals())."""
        return cls(**{name: namespace[name] for name in names() if name in namespace})

    def to_dict(self) -> dict:
        return asdict(self)

    def training_key(self) -> dict:
        """The parameters a trained model depends on: two runs may share a checkpoint only
        if these (and the corpus) agree."""
        return {name: getattr(self, name) for name in names(TRAINING)}


def _check_field(f, value):
    """The value, checked against the field's type and domain. Two natural spellings are
    read as meant: a number for a text parameter (`-p title 1984`, `-p temperatures 0.7`)
    and a text that is a number for a number (YAML reads `1e-2` as text)."""
    rule, kind = f.metadata["rule"], _type_of(f)
    if kind is int:
        return check_int(f.name, value, rule.get("minimum"), rule.get("maximum"))
    if kind is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass  # refused below, with the value as given
        return check_float(f.name, value, **rule)
    if kind is bool:
        return check_bool(f.name, value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return check_str(f.name, value, rule.get("choices"))


def _type_of(f) -> type:
    return {"int": int, "float": float, "str": str, "bool": bool}[
        f.type if isinstance(f.type, str) else f.type.__name__
    ]


def names(kind: str | None = None) -> list[str]:
    """The parameters' names in order, all or those of one kind."""
    return [f.name for f in fields(Config) if kind is None or f.metadata["kind"] == kind]


def describe() -> list[dict]:
    """Each parameter as name, type, default, kind and help: what the notebook's parameters
    cell, the command line and the README show."""
    return [
        {
            "name": f.name,
            "type": _type_of(f),
            "default": f.default,
            "kind": f.metadata["kind"],
            "help": f.metadata["help"],
        }
        for f in fields(Config)
        if f.default is not MISSING
    ]


# The notebook's own parameters, beside Config's: where things are. `make report` sets them.
PATH_PARAMETERS = (
    {
        "name": "data_path",
        "type": str,
        "default": "../data/shakespeare.txt",
        "help": "UTF-8 text file to train on",
    },
    {
        "name": "out_dir",
        "type": str,
        "default": "../reports/notebook",
        "help": "folder for metrics.json, and for the run's checkpoints unless run_dir is given",
    },
    {
        "name": "run_dir",
        "type": str,
        "default": "",
        "help": "folder of the run's checkpoints (empty: out_dir)",
    },
    {
        "name": "build_id",
        "type": str,
        "default": "",
        "help": "set by make report, which trains before it renders",
    },
)


def _literal(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def notebook_parameters_source() -> str:
    """The report notebook's `parameters` cell: one typed, commented literal per line,
    which is what `papermill --help-notebook` reads."""
    lines = [
        "# Parameters: papermill replaces this cell; `papermill --help-notebook` lists them.",
        "# Generated from rnn/config.py (python -m rnn parameters --write): edit there.",
    ]
    for p in PATH_PARAMETERS + tuple(describe()):
        lines.append(f"{p['name']}: {p['type'].__name__} = {_literal(p['default'])}  # {p['help']}")
    return "\n".join(lines)


def write_generated(root=None) -> list:
    """Rewrite, in a source tree, the texts generated from this list: the report notebook's
    parameters cell, the README's table, and the bonus notebook's parameters cell (from
    rnn.bonus.BonusConfig). Returns the files written."""
    import json
    import re
    from pathlib import Path

    from .bonus import parameters_source as bonus_parameters_source

    root = Path(root) if root else Path(__file__).resolve().parent.parent
    notebook, readme = root / "notebooks" / "report.ipynb", root / "README.md"
    bonus = root / "notebooks" / "bonus.ipynb"
    for path, source in (
        (notebook, notebook_parameters_source()),
        (bonus, bonus_parameters_source()),
    ):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
        cell["source"] = source.splitlines(keepends=True)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    text = readme.read_text(encoding="utf-8")
    block = f"<!-- parameters -->\n{markdown_table()}\n<!-- /parameters -->"
    text = re.sub(
        r"<!-- parameters -->\n.*?\n<!-- /parameters -->", lambda _: block, text, flags=re.S
    )
    readme.write_text(text, encoding="utf-8")
    return [notebook, readme, bonus]


def markdown_table() -> str:
    """The README's table of parameters."""
    rows = ["| parameter | default | kind | meaning |", "|---|---|---|---|"]
    for p in describe():
        default = _literal(p["default"]) if isinstance(p["default"], str) else repr(p["default"])
        rows.append(f"| `{p['name']}` | `{default}` | {p['kind']} | {p['help']} |")
    return "\n".join(rows)
