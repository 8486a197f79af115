"""The sampling measures of the bonus report (rnn.report.analysis.sampling)."""

import math

import numpy as np
import pytest

import rnn
from rnn.report.analysis import ngram, sampling

from .training import fit


def test_words_and_the_share_found_in_the_corpus():
    assert sampling.words("The King's men, O'er 3 hills_and dales!") == [
        "the",
        "king's",
        "men",
        "o'er",
        "hills",
        "and",
        "dales",
    ]
    vocabulary = {"the", "king", "men"}
    # "he" and "mxn" are cut by the text's edges and not counted; "the", "king" counted
    share, n = sampling.known_share("he the king zzz mxn", vocabulary)
    assert (share, n) == (pytest.approx(2 / 3), 3)
    share, n = sampling.known_share(" the king zzz ", vocabulary)
    assert (share, n) == (pytest.approx(2 / 3), 3)
    assert math.isnan(sampling.known_share("abc", vocabulary)[0])


def test_distinct_ngrams():
    assert sampling.distinct_ngrams([0, 1, 0, 1, 0, 1, 0, 1], 4) == pytest.approx(2 / 5)
    assert sampling.distinct_ngrams(np.arange(8), 4) == 1.0
    assert math.isnan(sampling.distinct_ngrams([1, 2], 4))


def test_the_corpus_scores_as_the_corpus_and_noise_as_noise(macbeth):
    vocab, ids = macbeth
    cut = int(len(ids) * 0.8)
    scorer = sampling.Scorer(ids[:cut], vocab, order=4)
    held = scorer.score(ids[cut : cut + 1500], history=ids[cut - 3 : cut])
    noise_ids = np.random.default_rng(0).integers(0, len(vocab), 1500)
    noise = scorer.score(noise_ids)
    assert held.ngram_bits < 3.5 < math.log2(len(vocab)) < noise.ngram_bits
    assert held.known_words > 0.7 and noise.known_words < 0.2  # a small corpus: 77%
    assert noise.distinct > 0.99 > held.distinct > 0.7  # English repeats its 4-grams
    # the n-gram figure is the module's own bits per character of that text
    counts = ngram.fit(ids[:cut], len(vocab), 4)
    expect = ngram.bits_per_char(counts, 4, ids[cut - 3 : cut], ids[cut : cut + 1500])
    assert held.ngram_bits == pytest.approx(expect, rel=1e-12)


def test_low_settings_repeat_more_and_each_row_is_scored_as_its_own_text(macbeth):
    vocab, ids = macbeth
    params = fit(
        rnn.init_params(len(vocab), m=32, seed=0), ids, n_updates=1500, sample_every=None
    ).params
    scorer = sampling.Scorer(ids, vocab, order=4)
    settings = sampling.sampling_settings([0.3, 1.0, 1.6], [0.3, 0.9, 0.999])
    assert [s[0] for s in settings][::3] == ["temperature 0.3 (low)", "nucleus p = 0.3 (low)"]
    draws = sampling.Draws(ids[:1], 600, seed=0)
    rows = sampling.measure_samples(params, draws, scorer, settings=settings)
    by = {r["setting"]: r for r in rows}
    low, high = by["temperature 0.3 (low)"], by["temperature 1.6 (high)"]
    assert low["distinct"] < high["distinct"]
    assert low["ngram_bits"] < high["ngram_bits"]
    assert low["model_logp"] > high["model_logp"]  # the model finds its cautious text likelier
    for r in rows:
        again = scorer.score(vocab.encode(r["text"]), history=ids[:1])
        assert again.ngram_bits == pytest.approx(r["ngram_bits"], rel=1e-12)
        assert again.distinct == r["distinct"]
    ref = scorer.score(ids[1:601], history=ids[:1])
    sentences = sampling.reading(rows, ref)
    assert len(sentences) == 4
    assert f"{low['ngram_bits']:.2f} to {high['ngram_bits']:.2f}" in sentences[0]
    closest = min(rows, key=lambda r: abs(r["ngram_bits"] - ref.ngram_bits))
    assert closest["setting"] in sentences[2]
    varied = min(rows, key=lambda r: abs(r["distinct"] - ref.distinct))
    assert (
        f"is {varied['setting']} ({varied['distinct']:.0%} against {ref.distinct:.0%}"
        in (sentences[3])
    )
