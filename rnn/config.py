"""Hyperparameters: one typed structure, validated once, with messages that name the parameter.

The notebooks' `parameters` cell, the command line and sweeps all feed `Config`, so a
nonsense value fails the same way wherever it comes from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from numbers import Integral, Real

from .errors import ConfigError


def check_int(name: str, value, minimum: int | None = None, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(f"parameter {name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"parameter {name} must be >= {minimum}, got {value}")
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


@dataclass(frozen=True)
class Config:
    """Every parameter of a run, with the original report's defaults."""

    n_updates: int = 100_000  # AdaGrad updates, one sequence each
    m: int = 100  # hidden units
    eta: float = 0.1  # AdaGrad learning rate
    seq_length: int = 25  # characters per sequence (BPTT length)
    sigma: float = 0.01  # std of the initial weights
    seed: int = 0  # seeds initialisation and sampling
    sample_every: int = 10_000  # updates between the synthesized-text samples
    sample_length: int = 200  # characters per sample during training
    passage_length: int = 1000  # characters of the final passage
    check_m: int = 5  # hidden units of the gradient-check network
    val_fraction: float = 0.05  # held-out suffix of the corpus (0 turns it off)
    eval_every: int = 10_000  # updates between validation passes
    checkpoint_every: int = 10_000  # updates between checkpoints
    temperatures: str = "0.5, 0.8, 1.0, 1.2"  # sampling temperatures to compare
    top_p: float = 0.9  # nucleus sampling's probability mass, compared too
    prime: str = ""  # text to warm the hidden state on ("" = first character)
    compare_length: int = 300  # characters per sample in the comparison

    def __post_init__(self):
        check_int("n_updates", self.n_updates, 0)
        check_int("m", self.m, 1)
        check_float("eta", self.eta, low=0.0, low_open=True)
        check_int("seq_length", self.seq_length, 1)
        check_float("sigma", self.sigma, low=0.0, low_open=True)
        check_int("seed", self.seed, 0)
        check_int("sample_every", self.sample_every, 1)
        check_int("sample_length", self.sample_length, 0)
        check_int("passage_length", self.passage_length, 0)
        check_int("check_m", self.check_m, 1)
        check_float("val_fraction", self.val_fraction, low=0.0, high=0.5)
        check_int("eval_every", self.eval_every, 1)
        check_int("checkpoint_every", self.checkpoint_every, 1)
        self.temperature_list()
        check_float("top_p", self.top_p, low=0.0, high=1.0, low_open=True)
        if not isinstance(self.prime, str):
            raise ConfigError(f"parameter prime must be a string, got {self.prime!r}")
        check_int("compare_length", self.compare_length, 0)

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

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """Strict: an unknown key is an error (a typo must not silently run the defaults)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown parameter {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)
