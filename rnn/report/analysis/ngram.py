"""Character n-gram baselines: the add-one unigram and interpolated Kneser-Ney of order 2 and up.

A j-gram is j consecutive characters. Every j-gram seen in training gets an integer id, order
by order: the id of a j-gram is the index of the pair (id of its first j-1 characters, last
character) among the sorted keys  parent_id * K + last_char  of all such pairs. Keys stay below
(number of (j-1)-grams) * K, so nothing overflows whatever K and the order (K^order would).

Interpolated Kneser-Ney (Chen and Goodman, 1998, with one discount D per order), for a
context h of j-1 characters and its shortening h' (the last j-2 of them):

    P_j(w | h) = (max(c(h w) - D_j, 0) + D_j N1+(h .) P_{j-1}(w | h')) / c(h .)   if c(h .) > 0
    P_j(w | h) = P_{j-1}(w | h')                                                   otherwise

c is the occurrence count at the model's own order and the continuation count (the number of
distinct characters seen before the j-gram) at the orders below it; N1+(h .) is the number of
distinct characters with c(h w) > 0, and c(h .) the sum of c(h w) over w. The recursion ends
in the uniform distribution 1/K, so every character of the vocabulary, seen or not, gets a
probability above zero, and each P_j sums to 1 over the vocabulary for every context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

D_RANGE = (0.05, 0.95)  # each discount n1 / (n1 + 2 n2) is clipped into this range
# Counting takes about 60 bytes per training character at order 5, scoring as much per scored
# character: on a large corpus the models are counted on the training split's last
# MAX_TRAIN characters (those just before the validation split) and score it SCORE_CHUNK
# characters at a time, so that their memory and time stay bounded whatever the corpus.
MAX_TRAIN = 1 << 20  # 1,048,576: more than the default corpus's training split (1,039,575)
SCORE_CHUNK = 1 << 18


@dataclass(frozen=True)
class Level:
    """The j-grams seen in training, for one j >= 1, and the totals of their contexts.

    Arrays over j-grams have length n_j; arrays over contexts are indexed by the id of a
    (j-1)-gram (length n_{j-1}; a single context, id 0, for j = 1).
    """

    keys: np.ndarray  # (n_j,) sorted int64 parent_id * K + last char; for j = 1 the chars
    parent: np.ndarray  # (n_j,) id of the context (the first j-1 characters)
    raw: np.ndarray  # (n_j,) occurrences in training
    cont: np.ndarray  # (n_j,) distinct characters seen just before it (unused at the top)
    raw_total: np.ndarray  # per context: c(h .) with occurrence counts
    raw_types: np.ndarray  # per context: N1+(h .) with occurrence counts
    cont_total: np.ndarray  # per context, with continuation counts
    cont_types: np.ndarray
    D_raw: float
    D_cont: float


@dataclass(frozen=True)
class NGramCounts:
    """Counts of a training text up to order max_order; `score` turns them into models."""

    K: int
    max_order: int
    n_train: int
    levels: list  # levels[j - 1] is the Level of the j-grams


def fit(ids, K: int, max_order: int) -> NGramCounts:
    """Count the j-grams of `ids` (integer characters in [0, K)) for j = 1 .. max_order."""
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1, got {max_order}")
    x = np.asarray(ids).astype(np.int64)  # uint8 * K would wrap
    if len(x) and (x.min() < 0 or x.max() >= K):
        raise ValueError(f"character ids must lie in [0, {K})")
    n = len(x)
    # 1. ids of the j-gram ending at each position (-1 where it would start before the text)
    ends = [x]
    keys_by_level, firsts = [np.arange(K, dtype=np.int64)], [None]
    for j in range(2, max_order + 1):
        prev = ends[-1]
        if len(keys_by_level[-1]) * K >= 2**62:
            raise ValueError(f"too many distinct {j - 1}-grams to index with K = {K}")
        g = np.full(n, -1, dtype=np.int32)  # ids of j-grams: fewer than the text's length
        ok = np.flatnonzero(prev[:-1] >= 0) + 1  # positions i whose (j-1)-gram at i-1 exists
        key = prev[ok - 1].astype(np.int64) * K + x[ok]  # int32 * K could overflow
        keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        g[ok] = inverse
        ends.append(g)
        keys_by_level.append(keys)
        firsts.append(ok[first])  # a position where each j-gram ends
    # 2. counts per j-gram, and per context
    levels = []
    for j in range(1, max_order + 1):
        keys = keys_by_level[j - 1]
        parent = np.zeros(K, dtype=np.int64) if j == 1 else keys // K
        n_ctx = 1 if j == 1 else len(keys_by_level[j - 2])
        g = ends[j - 1]
        raw = np.bincount(g[g >= 0], minlength=len(keys))
        if j < max_order:  # continuation: the (j+1)-grams whose last j characters are this one
            suffix = ends[j - 1][firsts[j]]
            cont = np.bincount(suffix, minlength=len(keys))
        else:
            cont = np.zeros(len(keys), dtype=np.int64)
        levels.append(
            Level(
                keys=keys,
                parent=parent,
                raw=raw,
                cont=cont,
                raw_total=np.bincount(parent, weights=raw, minlength=n_ctx),
                raw_types=np.bincount(parent[raw > 0], minlength=n_ctx),
                cont_total=np.bincount(parent, weights=cont, minlength=n_ctx),
                cont_types=np.bincount(parent[cont > 0], minlength=n_ctx),
                D_raw=_discount(raw),
                D_cont=_discount(cont),
            )
        )
    return NGramCounts(K=K, max_order=max_order, n_train=n, levels=levels)


def _discount(counts: np.ndarray) -> float:
    """n1 / (n1 + 2 n2) from the numbers of j-grams seen once and twice, clipped to D_RANGE."""
    n1, n2 = int(np.sum(counts == 1)), int(np.sum(counts == 2))
    D = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
    return float(np.clip(D, *D_RANGE))


def _lookup(level: Level, K: int, parent_ids: np.ndarray, chars: np.ndarray) -> np.ndarray:
    """Ids of the j-grams (parent, char) at this level; -1 where unseen or the parent is -1."""
    if len(level.keys) == 0:  # a training text shorter than j
        return np.full(len(chars), -1, dtype=np.int64)
    key = parent_ids * K + chars
    pos = np.minimum(np.searchsorted(level.keys, key), len(level.keys) - 1)
    found = (parent_ids >= 0) & (chars >= 0) & (level.keys[pos] == key)
    return np.where(found, pos, -1)


def _at(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """values[ids] as floats, 0 where an id is -1 (unseen)."""
    out = np.zeros(len(ids))
    seen = ids >= 0
    out[seen] = values[ids[seen]]
    return out


def _context_id(counts: NGramCounts, ctx: np.ndarray) -> np.ndarray:
    """Id of the (j-1)-gram in each row of ctx (P, j-1); -1 where unseen or a char is -1."""
    ids = ctx[:, 0].copy()
    for col in range(1, ctx.shape[1]):
        ids = _lookup(counts.levels[col], counts.K, ids, ctx[:, col])
    return ids


def log2_prob(counts: NGramCounts, order: int, contexts, targets) -> np.ndarray:
    """log2 P(target | context) under the order-`order` model, shape (P,).

    contexts: int array (P, c) with c >= order - 1, oldest character first; only the last
    order - 1 columns are read, and -1 marks a character before the start of the text.
    Order 1 is the add-one unigram (c(w) + 1) / (N + K); orders 2 and up are interpolated
    Kneser-Ney as in the module's docstring.
    """
    if not 1 <= order <= counts.max_order:
        raise ValueError(f"order must be in 1..{counts.max_order}, got {order}")
    K = counts.K
    w = np.asarray(targets).astype(np.int64)
    ctx = np.asarray(contexts).astype(np.int64).reshape(len(w), -1)
    if order == 1:
        raw = counts.levels[0].raw
        return np.log2((raw[w] + 1.0) / (counts.n_train + K))
    one = counts.levels[0]
    total = one.cont_total[0]
    if total > 0:
        p = (np.maximum(one.cont[w] - one.D_cont, 0.0) + one.D_cont * one.cont_types[0] / K) / total
    else:
        p = np.full(len(w), 1.0 / K)
    for j in range(2, order + 1):
        lv = counts.levels[j - 1]
        top = j == order
        c, tot, typ, D = (
            (lv.raw, lv.raw_total, lv.raw_types, lv.D_raw)
            if top
            else (lv.cont, lv.cont_total, lv.cont_types, lv.D_cont)
        )
        h = _context_id(counts, ctx[:, ctx.shape[1] - (j - 1) :])
        g = _lookup(lv, K, h, w)
        c_hw, t, n1 = _at(c, g), _at(tot, h), _at(typ, h)
        with np.errstate(divide="ignore", invalid="ignore"):
            mixed = (np.maximum(c_hw - D, 0.0) + D * n1 * p) / t
        p = np.where(t > 0, mixed, p)
    return np.log2(p)


def distribution(counts: NGramCounts, order: int, context) -> np.ndarray:
    """P(w | context) for every w of the vocabulary, shape (K,): one context (c,) of ids."""
    ctx = np.asarray(context, dtype=np.int64).reshape(1, -1)
    K = counts.K
    return np.exp2(log2_prob(counts, order, np.repeat(ctx, K, axis=0), np.arange(K)))


def bits_per_char(counts: NGramCounts, order: int, history, ids) -> float:
    """Mean -log2 P of each character of `ids` given the characters before it: the end of
    `history` and then `ids` itself (the model reads its last order - 1 of them)."""
    ids = np.asarray(ids)
    c = max(order - 1, 0)
    hist = np.asarray(history)[len(history) - c :].astype(np.int64) if c else np.empty(0, int)
    total = 0.0
    for start in range(0, len(ids), SCORE_CHUNK):  # bounded memory on a long text
        part = ids[start : start + SCORE_CHUNK].astype(np.int64)
        padded = np.concatenate([np.full(c - len(hist), -1), hist, part])
        if c:
            contexts = np.lib.stride_tricks.sliding_window_view(padded, c)[: len(part)]
        else:
            contexts = np.empty((len(part), 0), dtype=np.int64)
        total += float(-log2_prob(counts, order, contexts, part).sum())
        hist = padded[len(padded) - c :] if c else hist
    return total / len(ids) if len(ids) else math.nan


def baselines(train_ids, val_ids, K: int, max_order: int) -> list[tuple[str, float]]:
    """(model, bits per character) on val_ids[1:], the characters the RNN's validation loss
    scores: the uniform model, the add-one unigram, and Kneser-Ney of orders 2..max_order,
    all fitted on train_ids (its last MAX_TRAIN characters: see `counted`). Their contexts are
    the characters before each one in the corpus (the end of the training split, then the
    validation split)."""
    counts = fit(np.asarray(train_ids)[-MAX_TRAIN:], K, max_order)
    tail = np.asarray(train_ids)[max(len(train_ids) - max_order, 0) :]
    history = np.concatenate([tail.astype(np.int64), np.asarray(val_ids[:1]).astype(np.int64)])
    rows = [("uniform (log2 K)", math.log2(K))]
    for order in range(1, max_order + 1):
        name = "add-one unigram" if order == 1 else f"Kneser-Ney, order {order}"
        rows.append((name, bits_per_char(counts, order, history, val_ids[1:])))
    return rows


def counted(n_train: int) -> str:
    """What the baselines were counted on, for the report: empty when it is the whole
    training split, else a sentence saying which part."""
    if n_train <= MAX_TRAIN:
        return ""
    return (
        f"The n-gram models are counted on the last {MAX_TRAIN:,} characters of the training "
        f"split (of {n_train:,}), the ones just before the validation split, which keeps "
        f"their memory and time bounded on a large corpus."
    )
