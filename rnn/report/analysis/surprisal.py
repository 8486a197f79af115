"""The best model reading the validation split: its surprisal at each character, its hidden
states, and the mean surprisal by kind of position."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnn.engine.model import Params, step_forward

# Part VI reads at most this much of the validation split: the hidden states it keeps take
# 4 m bytes per character (float32), and reading is one Python step per character.
MAX_READ = 100_000
MAX_STATE_BYTES = 32 << 20


def read_length(n_val: int, m: int) -> int:
    """How many characters of a validation split of n_val part VI reads, for m hidden units."""
    return min(n_val, MAX_READ, max(1000, MAX_STATE_BYTES // (4 * m)))


@dataclass
class Reading:
    """A model's pass over a text.

    ids (T,): the characters read. h (T, m) float32: the hidden state just after reading
    ids[t] (the first m rows of the cell's state). bits (T,): -log2 p(ids[t]), the surprisal
    of ids[t] under the distribution the model gave after reading ids[:t]; bits[0] is NaN,
    since ids[0] is only read, as the validation loss reads it.
    """

    ids: np.ndarray
    h: np.ndarray
    bits: np.ndarray

    @property
    def mean_bits(self) -> float:
        """Mean surprisal of ids[1:], bits per character (the validation loss in bits)."""
        return float(np.mean(self.bits[1:])) if len(self.bits) > 1 else math.nan


def read(params: Params, ids, state0) -> Reading:
    """Run the model over ids from state0 (the state before ids[0]; a hidden vector of length
    m is taken as a column). Only step_forward's contract is used, so any cell reads. h is
    the top layer's (the one V reads; the only one of a 1-layer network)."""
    ids = np.asarray(ids).astype(np.int64)
    state = np.asarray(state0, dtype=np.float64).reshape(-1, 1)
    m, top = params.m, params.state_size - params.layer_state_size  # the top layer's rows
    h = np.empty((len(ids), m), dtype=np.float32)
    bits = np.full(len(ids), np.nan)
    logp = None
    for t, x in enumerate(ids):
        if logp is not None:
            bits[t] = -logp[x, 0] / math.log(2)
        state, logp, _ = step_forward(params, int(x), state)
        h[t] = state[top : top + m, 0]
    return Reading(ids=ids, h=h, bits=bits)


# --- kinds of position ----------------------------------------------------------------------

# Each character falls in exactly one kind, the first of this list whose rule it meets.
KINDS = (
    ("line start", "the first character of a line: the one after a line break, whatever it is"),
    ("line break", "a line break ('\\n') not at a line start"),
    ("space", "the space character ' '"),
    ("word start", "a letter or digit after a character that is neither"),
    ("inside a word", "a letter or digit after a letter or digit"),
    ("punctuation", "any other character that is not whitespace (. , ; ' - ! ? [ ] ...)"),
    ("other whitespace", "tabs and other whitespace"),
)


def position_kinds(text: str) -> np.ndarray:
    """Index into KINDS of each character of text, shape (len(text),) int."""
    kinds = np.empty(len(text), dtype=np.int64)
    prev = ""
    for t, ch in enumerate(text):
        if prev == "\n":
            k = 0
        elif ch == "\n":
            k = 1
        elif ch == " ":
            k = 2
        elif ch.isalnum():
            k = 4 if prev.isalnum() else 3
        elif not ch.isspace():
            k = 5
        else:
            k = 6
        kinds[t] = k
        prev = ch
    return kinds


def by_kind(bits: np.ndarray, kinds: np.ndarray) -> list[tuple[str, str, int, float]]:
    """(kind, rule, count, mean bits) for each kind present among the finite entries of bits."""
    ok = np.isfinite(bits)
    rows = []
    for k, (name, rule) in enumerate(KINDS):
        sel = ok & (kinds == k)
        if sel.any():
            rows.append((name, rule, int(sel.sum()), float(bits[sel].mean())))
    return rows
