"""The run parameters: one list, each with its default, type, domain and help text.

Everything else follows from `Config`: the notebook's `parameters` cell
(`notebook_parameters_source`), the command line's options, the sweep's checks, the README's
table (`markdown_table`), and the rule for when a trained model may be reused
(`training_key`). Tests fail when any of them drifts from this list.

One parameter, `assignment`, is a preset: it names an edition of the assignment and sets the
defaults of the parameters in PRESETS (optimizer, eta, loss, init, clip). Those default to
None, "the preset's"; a value given explicitly (not None) wins. Config resolves them once, in
__post_init__: its fields hold the resolved values, `preset_set` names the ones the preset
supplied, `given()` is the parameters as they were given (None where the preset decided).

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

from rnn.engine.cells import CELLS
from rnn.engine.model import INITS, LOSSES
from rnn.engine.optim import OPTIMIZERS, anneal_start
from rnn.engine.order import ORDERS
from rnn.errors import ConfigError
from rnn.runs.paths import ROOT

TRAINING, REPORT, RUN = "training", "report", "run"
DTYPES = ("float64", "float32")
TEXT_MAX = 1_000_000  # characters of any one text the report shows

# The editions of the assignment, and the values each gives the parameters it governs.
PRESETS = {
    "adagrad": {"optimizer": "adagrad", "eta": 0.1, "loss": "sum", "init": "sigma", "clip": 5.0},
    "adam": {"optimizer": "adam", "eta": 0.001, "loss": "mean", "init": "scaled", "clip": 0.0},
}
EDITIONS = {"adagrad": "the earlier edition", "adam": "the current edition"}


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
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:  # bytes that are not UTF-8, as Python reads them from argv
        raise ConfigError(
            f"parameter {name} is not UTF-8 text (character {err.start} of it)"
        ) from None
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


def _preset_param(name: str, help: str, **rule):
    """A TRAINING field the preset decides unless it is given: default None, "the preset's"."""
    each = ", ".join(
        f"{values[name]:g} for {preset}"
        if isinstance(values[name], float)
        else f"{values[name]} for {preset}"
        for preset, values in PRESETS.items()
    )
    return _param(
        None,
        TRAINING,
        f"{help} (None: the preset's: {each})",
        **rule,
    )


@dataclass(frozen=True)
class Config:
    """Every parameter of a run, with the original report's defaults."""

    # The network and its training
    cell: str = _param("vanilla", TRAINING, "recurrent cell: vanilla, lstm or gru", choices=CELLS)
    assignment: str = _param(
        "adagrad",
        TRAINING,
        "edition of the assignment: adagrad (the earlier) or adam (the current); sets the "
        "defaults of optimizer, eta, loss, init and clip",
        choices=tuple(PRESETS),
    )
    n_updates: int = _param(100_000, TRAINING, "updates, one sequence each", minimum=0)
    m: int = _param(100, TRAINING, "hidden units", minimum=1)
    optimizer: str | None = _preset_param(
        "optimizer", "optimizer: adagrad, adam or rmsprop", choices=OPTIMIZERS
    )
    eta: float | None = _preset_param("eta", "learning rate", low=0.0, low_open=True)
    beta1: float = _param(
        0.9,
        TRAINING,
        "Adam's decay of the gradient's moving average",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    beta2: float = _param(
        0.999,
        TRAINING,
        "Adam's decay of the squared gradient's moving average",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    # The compiled AdaGrad takes its square root in single precision's range (rnn.engine.kernels).
    epsilon: float = _param(
        1e-8, TRAINING, "the optimizers' epsilon (keeps the step finite)", low=1e-30, high=1.0
    )
    gamma: float = _param(
        0.9,
        TRAINING,
        "RMSProp's decay of the squared gradient's moving average",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    loss: str | None = _preset_param(
        "loss",
        "a sequence's loss: sum or mean of its characters' cross-entropies",
        choices=LOSSES,
    )
    seq_length: int = _param(25, TRAINING, "characters per sequence (BPTT length)", minimum=1)
    init: str | None = _preset_param(
        "init",
        "initial weights: sigma (N(0, sigma^2)), scaled (by each layer's inputs) or "
        "uniform (U(-1/sqrt(m), 1/sqrt(m)), the biases too, as PyTorch's layers)",
        choices=INITS,
    )
    sigma: float = _param(
        0.01,
        TRAINING,
        "standard deviation of the initial weights (init sigma)",
        low=0.0,
        low_open=True,
    )
    clip: float | None = _preset_param(
        "clip", "gradient entries clipped to [-clip, clip] (0 turns it off)", low=0.0
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
    layers: int = _param(
        1, TRAINING, "recurrent layers, each one's h the next one's input", minimum=1, maximum=4
    )
    dropout: float = _param(
        0.0,
        TRAINING,
        "probability of dropping each layer's output while training (inverted dropout)",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    dtype: str = _param(
        "float64",
        TRAINING,
        "precision of training and sampling: float64 or float32 (the gradient check: float64)",
        choices=DTYPES,
    )
    time_budget: float = _param(
        0.0,
        TRAINING,
        "seconds of training, after which it stops and keeps the best model (0: no limit)",
        low=0.0,
    )
    lr_decay: float = _param(
        1.0,
        TRAINING,
        "factor eta is multiplied by at each epoch's end (1: no decay)",
        low=0.0,
        high=1.0,
        low_open=True,
    )
    lr_decay_after: int = _param(
        10,
        TRAINING,
        "epochs before lr_decay starts acting",
        minimum=0,
    )
    lr_anneal: float = _param(
        0.0,
        TRAINING,
        "share of n_updates, at the end, over which eta falls linearly towards 0 (0: off)",
        low=0.0,
        high=1.0,
    )
    checkpoint_every: int = _param(10_000, RUN, "updates between checkpoints", minimum=1)
    # What the report draws from the finished model
    title: str = _param("", REPORT, "the report's title (empty: one naming the cell)")
    author: str = _param("", REPORT, "the report's author (empty: none shown)")
    layout: str = _param(
        "full",
        REPORT,
        "full: every part; assignment: parts I-IV only, in at most 3 A4 pages",
        choices=("full", "assignment"),
    )
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
        preset = PRESETS[check_str("assignment", self.assignment, tuple(PRESETS))]
        set_by_preset = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in preset:  # not given: the preset's
                value = preset[f.name]
                set_by_preset.append(f.name)
            # frozen: the checked value (a natural spelling made the field's type) set once
            object.__setattr__(self, f.name, _check_field(f, value))
        object.__setattr__(self, "_preset_set", tuple(set_by_preset))
        if self.order == "chunks" and self.n_chunks < self.batch_size:
            raise ConfigError(
                f"parameter n_chunks must be >= batch_size ({self.batch_size}) for order "
                f"chunks, got {self.n_chunks}"
            )
        if self.lr_anneal > 0 and self.n_updates and anneal_start(self) == self.n_updates:
            raise ConfigError(
                f"parameter lr_anneal: {self.lr_anneal:g} of n_updates={self.n_updates:,} is no "
                f"whole update; use 0 (off) or at least {1 / self.n_updates:.2g}"
            )
        self.temperature_list()

    @property
    def preset_set(self) -> dict:
        """The values the preset (assignment) supplied, those not given explicitly."""
        return {name: getattr(self, name) for name in self._preset_set}

    def preset_description(self) -> str:
        """The preset and every value it set, for the report's run table, e.g. "adam (the
        current edition): set optimizer adam, eta 0.001, loss mean, init scaled, clip 0 (off)"."""
        values = ", ".join(
            f"{name} {_plain(v)}" + (" (off)" if name == "clip" and not v else "")
            for name, v in self.preset_set.items()
        )
        what = f"set {values}" if values else "every value it governs given explicitly"
        return f"{self.assignment} ({EDITIONS[self.assignment]}): {what}"

    def given(self) -> dict:
        """The parameters as given: None for those the preset supplied. Config.from_dict of
        it is this Config again, preset_set included (to_dict gives the resolved values)."""
        return {name: None if name in self._preset_set else v for name, v in asdict(self).items()}

    def train_spec(self):
        """The training parameters, resolved: what rnn.train receives
        (rnn.engine.spec.TrainSpec)."""
        from rnn.engine.spec import TrainSpec

        return TrainSpec.from_config(self)

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
        optimizer = {"adagrad": "AdaGrad", "adam": "Adam", "rmsprop": "RMSProp"}[self.optimizer]
        return f"A character-level {name}, trained by BPTT and {optimizer}"

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
        """The parameters a trained model depends on, resolved: two runs may share a
        checkpoint only if these (and the corpus) agree. The preset's name is not among them:
        the values it resolves to are (two spellings of one run share it)."""
        return {name: getattr(self, name) for name in names(TRAINING) if name != "assignment"}


def _check_field(f, value):
    """The value, checked against the field's type and domain. Two natural spellings are
    read as meant: a number for a text parameter (`-p title 1984`, `-p temperatures 0.7`)
    and a text that is a number for a number (YAML reads `1e-2` as text)."""
    rule, kind = f.metadata["rule"], type_of(f)
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


def type_of(f) -> type:
    """The field's type, without the `| None` of those the preset decides."""
    name = f.type if isinstance(f.type, str) else f.type.__name__
    return {"int": int, "float": float, "str": str, "bool": bool}[name.removesuffix(" | None")]


def names(kind: str | None = None) -> list[str]:
    """The parameters' names in order, all or those of one kind."""
    return [f.name for f in fields(Config) if kind is None or f.metadata["kind"] == kind]


def describe() -> list[dict]:
    """Each parameter as name, type, default, kind and help: what the notebook's parameters
    cell, the command line and the README show."""
    return [
        {
            "name": f.name,
            "type": type_of(f),
            "default": f.default,
            "kind": f.metadata["kind"],
            "help": f.metadata["help"],
        }
        for f in fields(Config)
        if f.default is not MISSING
    ]


# The notebook's own parameters, beside Config's: which run it shows, and where things are.
# `make report` sets them; opened in Jupyter, the notebook reads the run `make report` made.
PATH_PARAMETERS = (
    {
        "name": "run_dir",
        "type": str,
        "default": "../reports",
        "help": "folder of the finished run to show (make report's, from notebooks/)",
    },
    {
        "name": "run_checkpoint",
        "type": str,
        "default": "",
        "help": "its checkpoint file (empty: the finished run's, checkpoint.npz)",
    },
    {
        "name": "data_path",
        "type": str,
        "default": "",
        "help": "the run's corpus (empty: the file the run records)",
    },
    {
        "name": "out_dir",
        "type": str,
        "default": "",
        "help": "folder for metrics.json (empty: not written)",
    },
    {
        "name": "build_id",
        "type": str,
        "default": "",
        "help": "set by make report, which trains before it renders",
    },
    {
        "name": "train_if_missing",
        "type": bool,
        "default": False,
        "help": "without a finished run in run_dir, train it here (on data_path)",
    },
)


def _plain(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _literal(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def notebook_parameters_source() -> str:
    """The report notebook's `parameters` cell: one typed, commented literal per line,
    which is what `papermill --help-notebook` reads."""
    lines = [
        "# Parameters: papermill replaces this cell; `papermill --help-notebook` lists them.",
        "# Generated from rnn/runs/config.py (python -m rnn parameters --write): edit there.",
    ]
    for p in PATH_PARAMETERS + tuple(describe()):
        lines.append(f"{p['name']}: {p['type'].__name__} = {_literal(p['default'])}  # {p['help']}")
    return "\n".join(lines)


def write_generated(root=None, cells: dict | None = None) -> list:
    """Rewrite, in a source tree, the texts generated from this list: the report notebook's
    parameters cell and the README's table, and the parameters cell of each other notebook
    in `cells` (its name in notebooks/ -> the cell's source; the command line passes the
    bonus notebook's, from rnn.report.bonus.BonusConfig). Returns the files written."""
    import json
    import re
    from pathlib import Path

    root = Path(root) if root else ROOT
    notebook, readme = root / "notebooks" / "report.ipynb", root / "README.md"
    others = [(root / "notebooks" / name, source) for name, source in (cells or {}).items()]
    for path, source in [(notebook, notebook_parameters_source()), *others]:
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
    return [notebook, readme, *(path for path, _ in others)]


def markdown_table() -> str:
    """The README's table of parameters."""
    rows = ["| parameter | default | kind | meaning |", "|---|---|---|---|"]
    for p in describe():
        default = _literal(p["default"]) if isinstance(p["default"], str) else repr(p["default"])
        rows.append(f"| `{p['name']}` | `{default}` | {p['kind']} | {p['help']} |")
    return "\n".join(rows)
