"""Text in, integer sequences out: reading a corpus and mapping characters to indices."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError


def load_text(path) -> str:
    """Read a UTF-8 text file; every way it can fail raises DataError naming the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a text file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror})") from None
    if not raw:
        raise DataError(f"{path}: file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (invalid byte at offset {err.start})") from None
    if "\x00" in text:
        raise DataError(f"{path}: not a text file (contains NUL bytes)")
    return text.removeprefix("\ufeff")  # a byte-order mark is encoding, not text


@dataclass(frozen=True)
class Vocab:
    """The corpus's characters in sorted order; index i stands for chars[i]. K = len(vocab)."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        if not text:
            raise DataError("cannot build a vocabulary from empty text")
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Characters -> int64 indices of shape (len(text),)."""
        codes = _code_points(text)
        table = _code_points(self.chars)  # sorted, since chars is
        ids = np.searchsorted(table, codes)
        unknown = (ids == len(table)) | (table[np.minimum(ids, len(table) - 1)] != codes)
        if unknown.any():
            ch = text[int(np.argmax(unknown))]
            raise DataError(f"character {ch!r} is not in the vocabulary")
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """Indices -> characters."""
        return "".join(self.chars[i] for i in np.asarray(ids, dtype=np.int64).ravel())


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def split_train_val(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the last `val_fraction` of the corpus: (train_ids, val_ids).

    The split is a suffix, not a random sample, so no held-out character was ever
    seen inside a training sequence.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(len(ids) * val_fraction))
    if n_val == 0:
        return ids, ids[:0]
    return ids[:-n_val], ids[-n_val:]
