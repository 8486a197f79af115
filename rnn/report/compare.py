"""The sampling comparison: one model, one priming text, several sampling settings, each
drawn with the same random numbers, and how likely the model finds its own sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn.engine.model import Params
from rnn.engine.sample import Sampling, sample_primed, warm
from rnn.engine.train import mean_loss


def settings(temperatures, top_p: float) -> list[tuple[str, float, float]]:
    """(label, temperature, top_p) for each temperature at full mass, then nucleus sampling
    at temperature 1."""
    out = [(f"temperature {t:g}", float(t), 1.0) for t in temperatures]
    out.append((f"nucleus, top_p = {top_p:g}", 1.0, float(top_p)))
    return out


@dataclass(frozen=True)
class Draws:
    """What each setting of a comparison draws: n characters continuing the priming text
    prime_ids (at least one index), read from state h0 (S, 1) (zero when None), from a
    generator seeded with `seed`, so that the settings differ only in how they turn the
    same uniform numbers into characters."""

    prime_ids: np.ndarray
    n: int
    seed: int
    h0: np.ndarray | None = None

    def drawn(self, params: Params, how: Sampling) -> np.ndarray:
        """The n indices drawn at this setting."""
        rng = np.random.default_rng(self.seed)
        return sample_primed(params, self.prime_ids, self.n, rng, how, h0=self.h0)

    def mean_logp(self, params: Params, drawn: np.ndarray) -> float:
        """The model's own mean ln p per character of what it drew, read after the priming
        text from h0."""
        prime_ids = np.asarray(self.prime_ids)
        h0 = None if self.h0 is None else np.reshape(self.h0, (-1, 1))
        ids = np.concatenate([prime_ids[-1:], drawn])
        # numpy's loop: a sample is short, and the report's kernel then never loads numba
        # (about 100 MB of its memory)
        return -mean_loss(params, ids, "reference", h0=warm(params, prime_ids, h0))


def sampling_comparison(
    params: Params, vocab, draws: Draws, *, temperatures, top_p: float
) -> list[tuple[str, str, float]]:
    """(label, text, mean ln p per character) for each setting of `settings`: the text is
    the priming text followed by the sampled characters (see Draws)."""
    rows = []
    for label, temperature, p in settings(temperatures, top_p):
        drawn = draws.drawn(params, Sampling(temperature, p))
        text = vocab.decode(np.asarray(draws.prime_ids)) + vocab.decode(drawn)
        rows.append((label, text, draws.mean_logp(params, drawn)))
    return rows
