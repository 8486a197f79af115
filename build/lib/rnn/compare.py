"""The sampling comparison: one model, one priming text, several sampling settings, each
drawn with the same random numbers, and how likely the model finds its own sample."""

from __future__ import annotations

import numpy as np

from .model import Params
from .sample import sample_primed, warm
from .train import mean_loss


def settings(temperatures, top_p: float) -> list[tuple[str, float, float]]:
    """(label, temperature, top_p) for each temperature at full mass, then nucleus sampling
    at temperature 1."""
    out = [(f"temperature {t:g}", float(t), 1.0) for t in temperatures]
    out.append((f"nucleus, top_p = {top_p:g}", 1.0, float(top_p)))
    return out


def sampling_comparison(
    params: Params,
    vocab,
    prime_ids,
    n: int,
    *,
    temperatures,
    top_p: float,
    seed: int,
    h0: np.ndarray | None = None,
) -> list[tuple[str, str, float]]:
    """(label, text, mean ln p per character) for each setting of `settings`.

    Every setting draws from a generator seeded with `seed`, so the settings differ only in
    how they turn the same uniform numbers into characters. The text is the priming text
    followed by n sampled characters; the log-probability is the model's mean ln p of the n
    sampled characters, read after the priming text from h0 (zero when None)."""
    prime_ids = np.asarray(prime_ids)
    h_primed = warm(params, prime_ids, None if h0 is None else np.reshape(h0, (-1, 1)))
    rows = []
    for label, temperature, p in settings(temperatures, top_p):
        rng = np.random.default_rng(seed)
        drawn = sample_primed(params, prime_ids, n, rng, temperature, p, h0=h0)
        logp = -mean_loss(params, np.concatenate([prime_ids[-1:], drawn]), h0=h_primed)
        rows.append((label, vocab.decode(prime_ids) + vocab.decode(drawn), logp))
    return rows
