"""Section VI's analyses on small synthetic texts, each against an independent computation."""

import html
import math
import re
from collections import Counter

import numpy as np
import pytest

import rnn
from rnn.engine.model import log_softmax, sequence_losses, step_forward
from rnn.report.analysis import gradflow, ngram, show, surprisal, units

# --- n-grams ----------------------------------------------------------------------------------


def kneser_ney_by_dicts(train: list, K: int, order: int):
    """Interpolated Kneser-Ney over tuples and dicts, the textbook way: P(w | context)."""
    grams = [
        Counter(tuple(train[i - j + 1 : i + 1]) for i in range(j - 1, len(train)))
        for j in range(order + 1)
    ]
    cont = [Counter() for _ in range(order + 1)]  # distinct characters before each j-gram
    for j in range(1, order):
        for g in grams[j + 1]:
            cont[j][g[1:]] += 1

    def discount(counts):
        n1 = sum(1 for c in counts.values() if c == 1)
        n2 = sum(1 for c in counts.values() if c == 2)
        return float(np.clip(n1 / (n1 + 2 * n2) if n1 + n2 else 0.5, *ngram.D_RANGE))

    def prob(w, context):
        p = 1.0 / K
        for j in range(1, order + 1):
            counts = grams[j] if j == order else cont[j]
            D = discount(counts)
            h = tuple(context[len(context) - (j - 1) :]) if j > 1 else ()
            followers = {g[-1]: c for g, c in counts.items() if g[:-1] == h and c > 0}
            total = sum(followers.values())
            if total > 0:
                c = followers.get(w, 0)
                p = (max(c - D, 0.0) + D * len(followers) * p) / total
        return p

    return prob


@pytest.fixture
def coded():
    rng = np.random.default_rng(1)
    K = 7  # characters 5 and 6 never occur in training
    train = rng.choice(5, size=400, p=[0.4, 0.3, 0.15, 0.1, 0.05]).astype(np.uint8)
    return train, K


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_each_order_sums_to_one_for_every_context(coded, order):
    train, K = coded
    counts = ngram.fit(train, K, 4)
    rng = np.random.default_rng(2)
    contexts = [rng.integers(0, K, 3) for _ in range(20)]  # many unseen, some with 5 and 6
    contexts += [train[10:13], np.array([6, 6, 6]), np.array([-1, -1, 0])]
    for ctx in contexts:
        p = ngram.distribution(counts, order, ctx)
        assert p.shape == (K,) and np.all(p > 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_kneser_ney_matches_a_dict_implementation(coded):
    train, K = coded
    counts = ngram.fit(train, K, 4)
    rng = np.random.default_rng(3)
    for order in (2, 3, 4):
        reference = kneser_ney_by_dicts([int(c) for c in train], K, order)
        for _ in range(30):
            ctx, w = rng.integers(0, K, 3), int(rng.integers(0, K))
            ours = 2.0 ** ngram.log2_prob(counts, order, ctx[None], [w])[0]
            assert ours == pytest.approx(reference(w, [int(c) for c in ctx]), rel=1e-12)


def test_unigram_bits_by_hand():
    vocab = rnn.Vocab("abcdr")
    train, val = vocab.encode("abracadabra"), vocab.encode("rcab")
    # training counts a 5, b 2, c 1, d 1, r 2 (N = 11, K = 5); val[1:] = "cab" is scored
    p = {"a": 6 / 16, "b": 3 / 16, "c": 2 / 16}
    by_hand = -(math.log2(p["c"]) + math.log2(p["a"]) + math.log2(p["b"])) / 3
    counts = ngram.fit(train, len(vocab), 1)
    assert ngram.bits_per_char(counts, 1, val[:1], val[1:]) == pytest.approx(by_hand, rel=1e-12)
    rows = ngram.baselines(train, val, len(vocab), 1)
    assert rows[0][1] == pytest.approx(math.log2(5)) and rows[1][1] == pytest.approx(by_hand)


def test_a_training_text_shorter_than_the_order():
    counts = ngram.fit(np.array([1, 2], dtype=np.uint8), 4, 5)
    for order in range(1, 6):
        assert ngram.distribution(counts, order, [1, 2, 3, 0]).sum() == pytest.approx(1.0)


def test_large_vocabulary_does_not_overflow():
    rng = np.random.default_rng(4)
    K = 5000
    train = rng.integers(0, K, 3000).astype(np.uint16)
    counts = ngram.fit(train, K, 5)
    for ctx in (train[100:104], rng.integers(0, K, 4)):
        assert ngram.distribution(counts, 5, ctx).sum() == pytest.approx(1.0, abs=1e-10)
    bits = ngram.bits_per_char(counts, 5, train[:10], train[10:200])  # seen text: well below
    assert 0 < bits < math.log2(K)


# --- reading, surprisal -----------------------------------------------------------------------


def test_reading_matches_the_validation_loss(ids):
    params = rnn.init_params(int(ids.max()) + 1, 6, 0.3, seed=5)
    h0 = 0.2 * np.ones(6)
    reading = surprisal.read(params, ids.astype(np.uint8), h0)
    assert math.isnan(reading.bits[0]) and reading.h.shape == (len(ids), 6)
    nats = rnn.mean_loss(params, ids, backend="reference", h0=h0)
    assert reading.mean_bits == pytest.approx(nats / math.log(2), rel=1e-12)


def test_position_kinds():
    kinds = surprisal.position_kinds("Ab, c\nd\n\n")
    names = [surprisal.KINDS[k][0] for k in kinds]
    assert names == [
        "word start", "inside a word", "punctuation", "space", "word start",
        "line break", "line start", "line break", "line start",
    ]  # fmt: skip


# --- units ------------------------------------------------------------------------------------


def quote_tracker(vocab, m=5, seed=6):
    """Random small weights, except unit 2: it turns on at an opening quote and off at a
    closing one, and holds its value in between."""
    params = rnn.init_params(len(vocab), m, 0.3, seed=seed)
    params.W[2, :], params.U[2, :], params.b[2] = 0.0, 0.0, 0.0
    params.W[2, 2] = 5.0
    params.U[2, vocab.chars.index("\u201c")] = 10.0
    params.U[2, vocab.chars.index("\u201d")] = -10.0
    h0 = np.zeros(m)
    h0[2] = -1.0
    return params, h0


def test_unit_finder_names_the_quote_unit():
    rng = np.random.default_rng(7)
    words = ["ab", "ba", "a", "bb", "\u201cab", "ba\u201d", "\u201ca\u201d"]
    text = " ".join(rng.choice(words, 400))
    vocab = rnn.Vocab.from_text(text)
    params, h0 = quote_tracker(vocab)
    reading = surprisal.read(params, vocab.encode(text), h0)
    inside = units.PROPERTIES["inside quotation marks"][1](text)
    assert 0.2 < inside.mean() < 0.8
    found = {mt.name: mt for mt in units.find_units(reading.h, text)}
    quote = found["inside quotation marks"]
    assert quote.unit == 2 and quote.r > 0.99 and not quote.weak
    assert found["inside brackets"].unit is None  # no brackets: skipped, not matched
    assert "never holds" in found["inside brackets"].note


def test_constant_units_and_properties_are_skipped():
    text = "aaaa\n" * 20
    h = np.random.default_rng(8).standard_normal((len(text), 4))
    h[:, 1] = 0.5  # a constant unit: its r is undefined, never chosen
    r = units.correlations(h, units.PROPERTIES["after a line break"][1](text))
    assert np.isnan(r[0, 1]) and np.all(np.isfinite(np.delete(r[0], 1)))
    found = {mt.name: mt for mt in units.find_units(h, text)}
    assert found["uppercase letter"].unit is None and found["uppercase letter"].weak
    assert found["after a line break"].unit != 1


# --- gradient flow ----------------------------------------------------------------------------


def numerical_grad(f, x, step=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = step
        g.flat[i] = (f(x + e) - f(x - e)) / (2 * step)
    return g


def test_gradient_norms_match_finite_differences():
    rng = np.random.default_rng(9)
    K, m, t, max_k, warmup = 8, 6, 20, 4, 5
    params = rnn.init_params(K, m, 0.6, seed=10)
    ids = rng.integers(0, K, 30).astype(np.uint8)
    norms = gradflow.norms_at(params, ids, t, max_k=max_k, warmup=warmup)
    h = np.zeros((m, 1))  # the same reading: from zero before ids[t - max_k - warmup]
    for x in ids[t - max_k - warmup : t - 1]:
        h, _, _ = step_forward(params, int(x), h)
    x, y = int(ids[t]), int(ids[t + 1])
    h_t, _, _ = step_forward(params, int(ids[t - 1]), h)
    h_t, _, _ = step_forward(params, x, h_t)
    h_t1, _, _ = step_forward(params, int(ids[t - 1]), h)  # h_{t-1}

    def loss_from_h_t(v):
        return -log_softmax(params.V @ v + params.c)[y, 0]

    def loss_from_h_t1(v):
        return sequence_losses(params, [x], [y], v)[0]

    for k, f, v in ((0, loss_from_h_t, h_t), (1, loss_from_h_t1, h_t1)):
        expected = np.linalg.norm(numerical_grad(f, v))
        assert norms[k] == pytest.approx(expected, rel=1e-7)


def test_steps_to_fall():
    assert gradflow.steps_to_fall(np.array([1.0, 0.1, 0.01, 1e-3, 1e-4])) == 3
    assert gradflow.steps_to_fall(np.array([1.0, 0.5, 0.2])) is None


def test_gradient_norms_shapes_and_positions():
    ids = np.random.default_rng(11).integers(0, 5, 60)
    params = rnn.init_params(5, 4, 0.5, seed=0)
    where = gradflow.Stretches(max_k=10, n_positions=7, per_stretch=3, spacing=4, warmup=3)
    positions, norms = gradflow.gradient_norms(params, ids, where=where)
    assert norms.shape == (7, 11) and len(positions) == 7
    assert positions.min() >= 13 and positions.max() <= 58
    for i, (t, row) in enumerate(zip(positions, norms)):  # a stretch's shared reading is the
        warmup = 3 + (i % 3) * 4  # reading from its start, a longer warm-up for later positions
        alone = gradflow.norms_at(params, ids, int(t), max_k=10, warmup=warmup)
        assert np.allclose(row, alone, rtol=1e-12)
    fig, alt = show.gradflow_figure({"model": norms}, seq_length=5)
    assert "steps" in alt and fig.axes[0].get_yscale() == "log"


# --- what is shown is escaped -----------------------------------------------------------------

MARKUP = "<b>&amp; x\n"


def test_everything_shown_is_escaped():
    text = MARKUP * 3
    bits = np.linspace(0, 8, len(text))
    bits[0] = np.nan
    h = np.tanh(np.random.default_rng(12).standard_normal((len(text), 3)))
    match = units.Match("<i>name</i>", "def", 1, 0.5)
    kinds = surprisal.position_kinds(text)
    parts = [
        show.shaded_text(text, [None] * len(text)),
        show.surprisal_html(text, bits, 70),
        show.unit_html(text, h[:, 1], match),
        show.units_table(units.find_units(h, text) + [match]),
        show.kinds_table(surprisal.by_kind(bits, kinds), surprisal.by_kind(bits, kinds)),
        show.baselines_html([("<u>uniform</u>", 6.0), ("add-one unigram", 4.0)], 3.0),
        *show.units_blocks(units.find_units(h, text), text, h, n_show=2),
    ]
    for part in parts:
        assert "<b>" not in part and "<i>name" not in part and "<u>" not in part
    shown = text.replace("\n", "\u21b5\n")  # line breaks kept, and marked
    for part in parts[:2]:
        assert html.unescape(re.sub("<[^>]*>", "", part.split("</div></div>")[-1])) == shown
    assert (
        html.unescape(re.sub("<[^>]*>", "", parts[2])) == "<i>name</i>: unit 1, r = +0.50" + shown
    )


def test_placement_sentence():
    rows = [("uniform (log2 K)", 6.0), ("add-one unigram", 4.5), ("Kneser-Ney, order 2", 3.5)]
    sentence = show.placement(rows, 4.0)
    assert "beats the add-one unigram model (4.500) and is beaten by the Kneser-Ney" in sentence
    assert "beats every" in show.placement(rows, 3.0)
    assert "worse than every n-gram model here, even the add-one" in show.placement(rows, 5.0)
    assert "is level with the Kneser-Ney, order 2 model (3.500: within 0.01" in show.placement(
        rows, 3.495
    )


def test_coloured_elements_print_their_colours():
    text = "ab\nc"
    bits = np.array([np.nan, 1.0, 2.0, 3.0])
    for part in (
        show.surprisal_html(text, bits, 4),
        show.unit_html(text, np.zeros(4), units.Match("p", "d", 0, 0.9)),
        show.units_legend(),
    ):
        assert "print-color-adjust: exact" in part and "-webkit-print-color-adjust: exact" in part
        assert "<script" not in part
