"""How good a sample is, measured by things that did not generate it: temperature and nucleus
sampling at a low, a medium and a high setting, each sample scored three ways.

- bits per character under a Kneser-Ney character n-gram model of the training text
  (rnn.report.analysis.ngram): high when the sample strays from the corpus's spelling, low when it
  keeps to its most common paths;
- the share of the sample's words found among the training text's words (a word: a run of
  letters, with apostrophes inside, compared in lower case), the words cut off at the
  sample's two ends left out;
- repetition: distinct n-grams over all n-grams of the sample (1 when nothing repeats, small
  when the sample loops).

The same numbers for a stretch of held-out text of the same length give the scale each is
read against: a sample that matches the corpus scores as the corpus itself does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rnn.engine.model import Params
from rnn.engine.sample import Sampling
from rnn.report.analysis.ngram import bits_per_char, fit
from rnn.report.compare import Draws

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # letters, apostrophes only inside a word
SETTINGS = ("low", "medium", "high")


@dataclass(frozen=True)
class Measures:
    """One text's scores (see the module's docstring)."""

    ngram_bits: float  # bits per character under the n-gram model
    known_words: float  # share of its words found in the corpus (NaN if it has none)
    n_words: int
    distinct: float  # distinct n-grams / all n-grams (NaN if shorter than n)


def words(text: str) -> list[str]:
    """The words of a text in lower case, in order."""
    return [w.lower() for w in WORD.findall(text)]


def known_share(text: str, vocabulary: set[str]) -> tuple[float, int]:
    """(share of the text's whole words found in vocabulary, how many were counted). The
    first and last word are left out when the text could cut them (a letter at its edge)."""
    found = list(WORD.finditer(text))
    if found and found[0].start() == 0:
        found = found[1:]
    if found and found[-1].end() == len(text):
        found = found[:-1]
    counted = [m.group().lower() for m in found]
    if not counted:
        return float("nan"), 0
    return sum(w in vocabulary for w in counted) / len(counted), len(counted)


def distinct_ngrams(ids, n: int = 4) -> float:
    """Distinct n-grams over all n-grams of the sequence ids; NaN if it has fewer than n."""
    ids = np.asarray(ids).astype(np.int64)
    if len(ids) < n:
        return float("nan")
    grams = np.lib.stride_tricks.sliding_window_view(ids, n)
    return len(np.unique(grams, axis=0)) / len(grams)


class Scorer:
    """The measures of texts against one training text: its n-gram model and its words."""

    def __init__(self, train_ids, vocab, order: int = 5, n: int = 4):
        self.vocab, self.order, self.n = vocab, order, n
        self.counts = fit(train_ids, len(vocab), order)
        self.vocabulary = set(words(vocab.decode(train_ids)))

    def score(self, ids, history=()) -> Measures:
        """Measures of the text ids, read by the n-gram model after `history` (the priming
        text it continues)."""
        text = self.vocab.decode(ids)
        share, n_words = known_share(text, self.vocabulary)
        bits = bits_per_char(self.counts, self.order, np.asarray(history, dtype=np.int64), ids)
        return Measures(bits, share, n_words, distinct_ngrams(ids, self.n))


def sampling_settings(temperatures, top_ps) -> list[tuple[str, float, float]]:
    """(label, temperature, top_p): each temperature at full mass, then each nucleus at
    temperature 1; three of each, named low, medium and high."""
    out = [(f"temperature {t:g} ({w})", float(t), 1.0) for w, t in zip(SETTINGS, temperatures)]
    out += [(f"nucleus p = {p:g} ({w})", 1.0, float(p)) for w, p in zip(SETTINGS, top_ps)]
    return out


def measure_samples(params: Params, draws: Draws, scorer: Scorer, *, settings) -> list[dict]:
    """A row per setting (label, temperature, top_p, text, the model's own mean ln p per
    character of it, and its Measures), each sample drawn as `draws` says (every setting
    turns the same uniform numbers into characters)."""
    rows = []
    for label, temperature, top_p in settings:
        drawn = draws.drawn(params, Sampling(temperature, top_p))
        m = scorer.score(drawn, history=draws.prime_ids)
        rows.append(
            dict(
                setting=label,
                temperature=temperature,
                top_p=top_p,
                text=scorer.vocab.decode(drawn),
                model_logp=draws.mean_logp(params, drawn),  # as rnn.report.compare reports it
                **m.__dict__,
            )
        )
    return rows


def reading(rows: list[dict], reference: Measures, n: int = 4) -> list[str]:
    """Sentences that say what the measures show, computed from them: how each measure moves
    from the low to the high setting of each kind, against held-out text's own scores."""

    out = []
    for kind, knob in (("temperature", "temperature"), ("nucleus", "top_p")):
        sel = [r for r in rows if r["setting"].startswith(kind)]
        if len(sel) < 2:
            continue
        lo, hi = sel[0], sel[-1]
        b0, b1 = lo["ngram_bits"], hi["ngram_bits"]
        w0, w1 = lo["known_words"], hi["known_words"]
        d0, d1 = lo["distinct"], hi["distinct"]
        out.append(
            f"From {knob} {lo[knob]:g} to {hi[knob]:g}, the samples' n-gram bits per character "
            f"go from {b0:.2f} to {b1:.2f} (held-out text: {reference.ngram_bits:.2f}), the "
            f"share of corpus words from {w0:.0%} to {w1:.0%} (held-out text: "
            f"{reference.known_words:.0%}) and distinct {n}-grams from {d0:.0%} "
            f"to {d1:.0%} (held-out text: {reference.distinct:.0%})."
        )
    closest = min(rows, key=lambda r: abs(r["ngram_bits"] - reference.ngram_bits))
    out.append(
        f"The setting whose n-gram bits per character come closest to held-out text's is "
        f"{closest['setting']} ({closest['ngram_bits']:.2f} against "
        f"{reference.ngram_bits:.2f}); lower means more predictable than the corpus, higher "
        f"stranger than it."
    )
    varied = min(rows, key=lambda r: abs(r["distinct"] - reference.distinct))
    out.append(
        f"The setting whose share of distinct {n}-grams comes closest to held-out text's is "
        f"{varied['setting']} ({varied['distinct']:.0%} against {reference.distinct:.0%}, "
        f"with {varied['known_words']:.0%} of its words in the corpus); below it a sample "
        f"repeats itself more than the corpus does, above it less."
    )
    return out
