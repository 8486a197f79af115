"""Which sequences each update trains on: the training order and the batch of parallel streams.

Three orders (`order`), each read by B = `batch_size` parallel streams, every update training
on B sequences of L characters, one per stream, each stream's state carried from its previous
sequence unless the update resets it (to zero):

- `sequential`: the training text cut into B equal stretches, stream b reading stretch b from
  its start to its end, again and again; the state reset at each epoch's start. With B = 1
  this is the original loop exactly: update s starts at L (s mod E), E = (N - 1) // L.
- `chunks`: the text cut into `n_chunks` equal chunks; each epoch shuffles their order and
  deals them to the streams (stream b reads the shuffled chunks b, b + B, b + 2B, ...; the
  n_chunks mod B left over sit that epoch out), the state reset at each chunk's start.
- `random`: every sequence from a position drawn uniformly at random, the state reset each
  update.

Every draw comes from a Generator seeded by (seed, ORDER_STREAM, epoch) for a shuffle, or
(seed, ORDER_STREAM, block) for a block of BLOCK updates' random positions, never the global
generator: the order is a pure function of the seed and the update's number, so a run
continued from a checkpoint reads exactly the sequences the uninterrupted run would have,
with no generator state to save, and the weights' and the samples' generators are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn.errors import DataError

ORDERS = ("sequential", "chunks", "random")
ORDER_STREAM = 0x0DE5  # keeps the order's draws apart from any other use of `seed`
BLOCK = 4096  # random positions are drawn this many updates at a time


@dataclass(frozen=True)
class Order:
    """How a run reads its training text (rnn.runs.config's order, n_chunks and batch_size)."""

    order: str = "sequential"
    n_chunks: int = 20
    batch_size: int = 1

    @classmethod
    def from_config(cls, cfg) -> Order:
        return cls(cfg.order, cfg.n_chunks, cfg.batch_size)


@dataclass(frozen=True)
class Schedule:
    """The order laid over a training text of n_ids characters: `window` says, for a run of
    consecutive updates, where each stream's sequence starts and whether its state resets."""

    order: str
    n_ids: int
    L: int
    B: int
    seed: int
    starts: np.ndarray  # (n_pieces,) first character of each stretch or chunk
    per_piece: int  # sequences read from each stretch or chunk

    @property
    def per_epoch(self) -> int:
        """Updates per pass over the text (for `random`, the updates that read as many
        characters as the text holds)."""
        if self.order == "random":
            return max(1, (self.n_ids - 1) // (self.L * self.B))
        return self.per_piece * (len(self.starts) // self.B)

    def window(self, step0: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(starts (n, B) int64, resets (n, B) bool) for updates step0 .. step0 + n - 1: the
        first character of each stream's input sequence (its targets are the L characters
        after it), and whether the stream's state is zeroed before that update."""
        steps = np.arange(step0, step0 + n, dtype=np.int64)
        if self.order == "random":
            return self._random(step0, n), np.ones((n, self.B), dtype=bool)
        j = steps % self.per_epoch  # update within its epoch
        slot, at = j // self.per_piece, j % self.per_piece  # which piece of a stream, where in it
        if self.order == "sequential":
            piece = np.broadcast_to(np.arange(self.B), (n, self.B))
        else:
            piece = np.empty((n, self.B), dtype=np.int64)
            epochs = steps // self.per_epoch
            for e in np.unique(epochs):
                dealt = self._shuffle(int(e))[: (len(self.starts) // self.B) * self.B]
                rows = epochs == e
                piece[rows] = dealt.reshape(-1, self.B)[slot[rows]]
        first = self.starts[piece] + (at * self.L)[:, None]
        resets = np.broadcast_to((at == 0)[:, None], (n, self.B)).copy()
        return first.astype(np.int64), resets

    def _shuffle(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, ORDER_STREAM, epoch]).permutation(len(self.starts))

    def _random(self, step0: int, n: int) -> np.ndarray:
        out = np.empty((n, self.B), dtype=np.int64)
        for block in range(step0 // BLOCK, (step0 + n - 1) // BLOCK + 1 if n else 0):
            rng = np.random.default_rng([self.seed, ORDER_STREAM, block])
            drawn = rng.integers(0, self.n_ids - self.L, size=(BLOCK, self.B))
            lo, hi = max(step0, block * BLOCK), min(step0 + n, (block + 1) * BLOCK)
            out[lo - step0 : hi - step0] = drawn[lo - block * BLOCK : hi - block * BLOCK]
        return out


def schedule(order: Order, n_ids: int, L: int, seed: int) -> Schedule:
    """The Schedule of `order` on n_ids training characters; DataError when a stretch or chunk
    is too short for one sequence of L characters (and its L targets)."""
    B = order.batch_size
    if order.order not in ORDERS:
        raise DataError(f"order must be one of {', '.join(ORDERS)}, got {order.order!r}")
    pieces = {"sequential": B, "chunks": order.n_chunks, "random": 1}[order.order]
    if order.order == "chunks" and pieces < B:
        raise DataError(
            f"order chunks deals n_chunks={pieces} chunks to batch_size={B} streams: "
            f"give at least as many chunks as streams"
        )
    bounds = np.linspace(0, n_ids, pieces + 1).astype(np.int64)  # lengths differ by at most 1
    shortest = int(np.diff(bounds).min())
    if shortest < L + 1:
        what = {"sequential": "stretch per stream", "chunks": "chunk", "random": "text"}
        raise DataError(
            f"the training text has {n_ids:,} characters: one {what[order.order]} of "
            f"{shortest:,} is too short for seq_length={L} (needs {L + 1}); lower "
            f"{'batch_size' if order.order == 'sequential' else 'n_chunks'} or seq_length"
        )
    return Schedule(order.order, n_ids, L, B, seed, bounds[:-1], (shortest - 1) // L)
