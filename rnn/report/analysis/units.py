"""Hidden units that track simple properties of the text.

Each property is a number for every position t of a text, a function of the characters up
to t (and, for "next ...", of character t+1): the state h_t just after reading character t
is what the model knows there. The unit finder correlates every property with every unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

WEAK = 0.3  # |r| below this is reported as weak
CONSTANT = 1e-6  # a unit or property whose standard deviation is below this is constant

OPENERS, CLOSERS = "([{", ")]}"


def _inside_quotes(text: str) -> np.ndarray:
    out, inside = np.zeros(len(text)), False
    for t, ch in enumerate(text):
        if ch == "\u201c":
            inside = True
        elif ch == "\u201d":
            inside = False
        elif ch == '"':
            inside = not inside
        out[t] = inside
    return out


def _inside_brackets(text: str) -> np.ndarray:
    out, depth = np.zeros(len(text)), 0
    for t, ch in enumerate(text):
        if ch in OPENERS:
            depth += 1
        elif ch in CLOSERS:
            depth = max(depth - 1, 0)
        out[t] = depth > 0
    return out


def _position_in_word(text: str) -> np.ndarray:
    out, n = np.zeros(len(text)), 0
    for t, ch in enumerate(text):
        n = n + 1 if ch.isalnum() else 0
        out[t] = n
    return out


def _position_in_line(text: str) -> np.ndarray:
    out, n = np.zeros(len(text)), 0
    for t, ch in enumerate(text):
        n = 0 if ch == "\n" else n + 1
        out[t] = n
    return out


def _line_in_capitals(text: str) -> np.ndarray:
    out, letters, lower = np.zeros(len(text)), False, False
    for t, ch in enumerate(text):
        if ch == "\n":
            letters = lower = False
        elif ch.isalpha():
            letters, lower = True, lower or ch.islower()
        out[t] = letters and not lower
    return out


def _sentence_ended(text: str) -> np.ndarray:
    out, last = np.zeros(len(text)), ""
    for t, ch in enumerate(text):
        if not ch.isspace():
            last = ch
        out[t] = last in (".", "!", "?")
    return out


def _next_is(ch: str):
    def prop(text: str) -> np.ndarray:
        return np.array([c == ch for c in text[1:]] + [False], dtype=float)

    return prop


# name -> (definition, function of the text returning one float per position)
PROPERTIES = {
    "inside quotation marks": (
        'an opening quote (\u201c, or an odd-numbered ") has been read and its closing one '
        '(\u201d, or the next ") not yet; the opening quote counts as inside',
        _inside_quotes,
    ),
    "inside brackets": (
        "more of ( [ { than of ) ] } read so far (the depth never going below 0); the opening "
        "bracket counts as inside, the closing one as outside",
        _inside_brackets,
    ),
    "position in word": (
        "letters and digits read since the last other character (0 outside a word)",
        _position_in_word,
    ),
    "position in line": (
        "characters read since the last line break (0 at the line break)",
        _position_in_line,
    ),
    "next is a space": ("the next character is ' '", _next_is(" ")),
    "next is a line break": ("the next character is '\\n'", _next_is("\n")),
    "after a line break": (
        "the character just read is '\\n' (the next one starts a line)",
        lambda text: np.array([c == "\n" for c in text], dtype=float),
    ),
    "uppercase letter": (
        "the character just read is an uppercase letter",
        lambda text: np.array([c.isupper() for c in text], dtype=float),
    ),
    "vowel": (
        "the character just read is one of a e i o u (either case)",
        lambda text: np.array([c in "aeiouAEIOU" for c in text], dtype=float),
    ),
    "line in capitals so far": (
        "the line so far has a letter and no lowercase letter (a speaker's name, in plays)",
        _line_in_capitals,
    ),
    "sentence just ended": (
        "the last non-whitespace character read is . ! or ?",
        _sentence_ended,
    ),
}


def properties(text: str) -> dict[str, np.ndarray]:
    """Every property of PROPERTIES at every position of text: name -> (len(text),) float."""
    return {name: fn(text) for name, (_, fn) in PROPERTIES.items()}


@dataclass
class Match:
    """The unit whose activation correlates most strongly (Pearson, absolute) with a property.

    unit is None and r NaN when the property is constant in the text (note says so).
    """

    name: str
    definition: str
    unit: int | None
    r: float
    note: str = ""

    @property
    def weak(self) -> bool:
        return not abs(self.r) >= WEAK


def correlations(h: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Pearson r of each property with each unit: values (T, P), h (T, m) -> r (P, m).

    NaN where the unit or the property is constant. Only the properties are centred:
    sum_t (v_t - mean v) h_t is the same with h centred or not, so h is never copied
    centred, nor made float64 but a block of rows at a time."""
    h = np.asarray(h)
    v = np.asarray(values, dtype=np.float64).reshape(len(h), -1)
    sd_h = column_sd(h)
    vc = v - v.mean(axis=0)
    sd_v = np.sqrt((vc * vc).mean(axis=0))
    hv = np.zeros((h.shape[1], v.shape[1]))
    for start in range(0, len(h), ROWS):  # float64 a block of rows at a time, not all of h
        # h^T vc, not vc^T h: the latter took 1.1 s against 16 ms here (OpenBLAS, T = 55k)
        block = slice(start, start + ROWS)
        hv += h[block].astype(np.float64).T @ vc[block]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = hv.T / (len(h) * np.outer(sd_v, sd_h))
    r[:, sd_h < CONSTANT] = np.nan
    r[sd_v < CONSTANT, :] = np.nan
    return np.clip(r, -1.0, 1.0)


def find_units(h: np.ndarray, text: str) -> list[Match]:
    """For each property, the unit of h (T, m) that tracks it best over text (length T).

    Sorted by |r|, strongest first; properties constant in this text (or with every unit
    constant) come last, with unit None and a note.
    """
    if len(text) != len(h):
        raise ValueError(f"text has {len(text)} characters but h has {len(h)} rows")
    props = properties(text)
    r = correlations(h, np.stack(list(props.values()), axis=1))
    matches, skipped = [], []
    for (name, values), r_p in zip(props.items(), r):
        definition = PROPERTIES[name][0]
        if len(values) < 2 or values.std() < CONSTANT:
            what = "never holds" if not values.any() else "is constant"
            skipped.append(Match(name, definition, None, math.nan, f"{what} in this text"))
        elif np.all(np.isnan(r_p)):
            skipped.append(Match(name, definition, None, math.nan, "every unit is constant"))
        else:
            unit = int(np.nanargmax(np.abs(r_p)))
            matches.append(Match(name, definition, unit, float(r_p[unit])))
    matches.sort(key=lambda mt: -abs(mt.r))
    return matches + skipped


def strongest(matches: list[Match], n: int) -> list[Match]:
    """The n strongest matches with n different units (a unit that tracks two properties
    is shown once, for the stronger one)."""
    chosen, units = [], set()
    for mt in matches:
        if mt.unit is not None and mt.unit not in units:
            chosen.append(mt)
            units.add(mt.unit)
        if len(chosen) == n:
            break
    return chosen


def constant_units(h: np.ndarray) -> np.ndarray:
    """Indices of the units whose activation does not vary over the text."""
    return np.flatnonzero(column_sd(np.asarray(h)) < CONSTANT)


ROWS = 8192  # rows of h made float64 at a time


def column_sd(h: np.ndarray) -> np.ndarray:
    """Standard deviation of each column of h (T, m), in float64, a block of rows at a time
    (two passes: the mean, then the squared deviations), without a float64 copy of h."""
    T = len(h)
    mean = sum(h[i : i + ROWS].sum(axis=0, dtype=np.float64) for i in range(0, T, ROWS)) / T
    sq = sum(
        ((h[i : i + ROWS].astype(np.float64) - mean) ** 2).sum(axis=0) for i in range(0, T, ROWS)
    )
    return np.sqrt(sq / T)
