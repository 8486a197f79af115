"""What notebooks/explore.ipynb shows of a finished run, as HTML strings: a sample under any
sampling setting, any text shaded by the model's surprisal, a passage shaded by one hidden
unit. The notebook only wires widgets to these functions; every one of them is pure (same
run and arguments, same HTML) and says in one line what is wrong with a bad argument rather
than raising, since it runs on every move of a slider.

Everything reads the run's best model from the state it ran from when it was taken, as
parts IV to VI of the report do.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from rnn.engine.sample import Sampling, sample_primed
from rnn.errors import RNNError
from rnn.report.analysis import show, surprisal, units
from rnn.runs.config import TEXT_MAX
from rnn.runs.driver import FINAL, Run, resolve_path

MAX_LENGTH = 5000  # characters a slider may ask for: sampling takes about 26 ms per 1000
PASSAGE = 400  # characters of the validation split the unit picker shades by default


@dataclass(frozen=True)
class Explorer:
    """A finished run, with the best model's reading of the start of its validation split
    (the units found there label the picker)."""

    run: Run
    passage: str  # the start of the validation split (of the training text without one)
    matches: list  # units.Match for each property, strongest first

    @property
    def vocab(self):
        return self.run.data.vocab

    @property
    def model(self):
        return self.run.result.best_params

    @property
    def prime(self) -> str:
        """The priming text of the report's part V: its prime, else the corpus's first
        character."""
        return self.run.cfg.prime or self.vocab.decode(self.run.data.train_ids[:1])


def open_run(run_dir, data_path: str = "") -> Explorer:
    """The finished run in run_dir (rnn.runs.driver.Run.load), ready to explore; one line saying
    which command makes one when there is none."""
    run_dir = resolve_path(run_dir, "run_dir")
    if run_dir.is_dir() and not (run_dir / FINAL).exists():
        raise RNNError(
            f"no finished run in {run_dir}: `make report` makes one (or `python -m rnn train "
            f"--data ... --out {run_dir}`)"
        )
    run = Run.load(run_dir, corpus=data_path or None)
    data = run.data
    ids = data.val_ids if len(data.val_ids) > 1 else data.train_ids
    passage = data.vocab.decode(ids[:PASSAGE])
    reading = _read(run, passage)
    return Explorer(run, passage, units.find_units(reading.h, passage))


def _read(run: Run, text: str) -> surprisal.Reading:
    result = run.result
    return surprisal.read(result.best_params, run.data.vocab.encode(text), result.best_h)


def problem(ex: Explorer, text: str, what: str) -> str | None:
    """One line on why the model cannot read `text`, or None when it can."""
    if not text:
        return f"{what} is empty: type some text."
    if len(text) > TEXT_MAX:
        return f"{what} has {len(text):,} characters; at most {TEXT_MAX:,} are read."
    unknown = sorted(set(text) - set(ex.vocab.chars))
    if unknown:
        shown = ", ".join(repr(ch) for ch in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        return (
            f"{what}: {len(unknown)} character{'s' if len(unknown) > 1 else ''} the corpus "
            f"never uses ({shown}); the model cannot read {'them' if len(unknown) > 1 else 'it'}."
        )
    return None


def message(text: str) -> str:
    return f'<p class="rnn-explore-problem" style="color:#a00">{html.escape(text)}</p>'


def sample_html(
    ex: Explorer, prime: str, temperature: float, top_p: float, length: int, seed: int = 0
) -> str:
    """`length` characters from the best model continuing `prime` at this temperature and
    top-p, drawn with a generator seeded with `seed` (a setting moved, the same random
    numbers: the text changes only as the setting does). The priming text is set in bold."""
    bad = problem(ex, prime, "The priming text")
    if bad is None and not (isinstance(length, int | np.integer) and 0 <= length <= MAX_LENGTH):
        bad = f"The length must be a whole number from 0 to {MAX_LENGTH:,}, got {length!r}."
    if bad is None and not 0.0 <= temperature < float("inf"):
        bad = f"The temperature must be a number >= 0, got {temperature!r}."
    if bad is None and not 0.0 < top_p <= 1.0:
        bad = f"top-p must be in (0, 1], got {top_p!r}."
    if bad is not None:
        return message(bad)
    result = ex.run.result
    drawn = sample_primed(
        result.best_params,
        ex.vocab.encode(prime),
        int(length),
        np.random.default_rng(seed),
        Sampling(float(temperature), float(top_p)),
        h0=result.best_h,
    )
    text = ex.vocab.decode(drawn)
    return (
        f"<p>{len(text):,} characters at temperature {temperature:g}, top-p {top_p:g}, from "
        f"the best model (after {result.best_step:,} updates), seed {seed}.</p>"
        f'<div style="{show.TEXT_STYLE}"><b>{html.escape(prime)}</b>{html.escape(text)}</div>'
    )


def surprisal_html(ex: Explorer, text: str) -> str:
    """text shaded character by character by the best model's surprisal (part VI's shading),
    read from the state the best model ran from; the first character is only read."""
    bad = problem(ex, text, "The text")
    if bad is not None:
        return message(bad)
    reading = _read(ex.run, text)
    mean = (
        f"mean {reading.mean_bits:.3f} bits per character over the {len(text) - 1:,} after "
        f"the first"
        if len(text) > 1
        else "one character: it is only read"
    )
    return f"<p>{html.escape(mean)}.</p>" + show.surprisal_html(text, reading.bits, len(ex.vocab))


def unit_choices(ex: Explorer) -> list[tuple[str, int]]:
    """(label, unit) for the unit picker: first the unit that tracks each property best in
    the validation passage (distinct units), then every other unit in order."""
    m = ex.model.m
    tracked = units.strongest(ex.matches, m)
    first = [(f"unit {mt.unit}: {mt.name} (r = {mt.r:+.2f})", mt.unit) for mt in tracked]
    rest = [(f"unit {u}", u) for u in range(m) if u not in {mt.unit for mt in tracked}]
    return first + rest


def unit_html(ex: Explorer, unit: int, text: str | None = None) -> str:
    """text (default: the validation passage) shaded by one hidden unit's activation after
    each character, -1 blue, 0 white, +1 red, as part VI shades it."""
    text = ex.passage if text is None else text
    m = ex.model.m
    if not (isinstance(unit, int | np.integer) and 0 <= unit < m):
        return message(f"There is no unit {unit!r}: the model has units 0 to {m - 1}.")
    bad = problem(ex, text, "The text")
    if bad is not None:
        return message(bad)
    a = _read(ex.run, text).h[:, unit].astype(np.float64)
    titles = [f"{v:+.2f}" for v in a]
    shaded = show.shaded_text(text, show.colours(a, show.UNIT_CMAP, -1.0, 1.0), titles)
    return show.units_legend() + shaded
