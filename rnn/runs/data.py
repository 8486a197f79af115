"""Text in, integer sequences out: reading a corpus and mapping characters to indices.

A corpus may be large (hundreds of megabytes): `load_corpus` reads it once, in chunks, hashing
the bytes it encodes, and keeps only the indices, in the smallest unsigned integer type that
holds K.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn.errors import DataError

CHUNK = 1 << 22  # bytes read at a time: each costs about 20 times its size while decoded
N_CODE_POINTS = 0x110000


def check_regular_file(path: Path) -> None:
    """Only a regular file is a corpus: a FIFO would block and /dev/zero never ends."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a directory, not a text file")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file (a device, FIFO or socket)")


def load_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file; every way it can fail raises DataError naming the file."""
    path = Path(path)
    check_regular_file(path)
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

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds every index."""
        return index_dtype(len(self))

    def encode(self, text: str) -> np.ndarray:
        """Characters -> indices of shape (len(text),), of type `self.dtype`."""
        codes = _code_points(text)
        table = _code_points(self.chars)  # sorted, since chars is
        ids = np.searchsorted(table, codes)
        unknown = (ids == len(table)) | (table[np.minimum(ids, len(table) - 1)] != codes)
        if unknown.any():
            ch = text[int(np.argmax(unknown))]
            raise DataError(f"character {ch!r} is not in the vocabulary")
        return ids.astype(self.dtype)

    def decode(self, ids) -> str:
        """Indices -> characters."""
        return "".join(self.chars[i] for i in np.asarray(ids, dtype=np.int64).ravel())


def index_dtype(K: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if K <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise DataError(f"a vocabulary of {K} characters is more than Unicode has")


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


@dataclass(frozen=True)
class Corpus:
    """A text file as the network reads it: its indices, vocabulary and checksum."""

    path: Path
    ids: np.ndarray  # (n_chars,) indices into vocab, of type vocab.dtype
    vocab: Vocab
    sha256: str  # of the file's bytes, as `sha256sum` prints it

    @property
    def n_chars(self) -> int:
        return len(self.ids)

    def text(self, start: int = 0, stop: int | None = None) -> str:
        return self.vocab.decode(self.ids[start:stop])


def _decoded_chunks(f, path: Path, digest):
    """The file's text, chunk by chunk, as arrays of code points, each chunk's bytes added to
    `digest` as they are read; DataError names the file and the byte offset of any invalid
    UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, first = 0, True
    while True:
        raw = f.read(CHUNK)
        digest.update(raw)
        try:
            text = decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as err:
            # err.start counts from the bytes the decoder still held from the last chunk
            pending = len(err.object) - len(raw)
            at = offset - pending + err.start
            raise DataError(f"{path}: not UTF-8 text (invalid byte at offset {at})") from None
        offset += len(raw)
        if first and text:
            text, first = text.removeprefix("\ufeff"), False  # a byte-order mark is not text
        if text:
            yield _code_points(text)
        if not raw:
            return


def check_name(path: Path) -> None:
    """A file name must be text: bytes that are not UTF-8 cannot be shown in the report."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError as err:
        shown = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise DataError(
            f"{shown}: the name is not UTF-8 (byte {err.start} of it); rename the file"
        ) from None


def load_corpus(path: str | os.PathLike) -> Corpus:
    """Read and encode a UTF-8 text file; every way it can fail raises DataError naming it.

    The file is read once: its SHA-256 is of the very bytes encoded, and a file whose size
    or modification time changes while it is read is refused (the indices would not be the
    file the checksum names). Indices are given in order of first appearance while reading
    (into a buffer of the file's size, in the smallest type that holds them so far), then
    renumbered in place into the sorted vocabulary's order: memory is about the file's size.
    """
    path = Path(path)
    check_name(path)
    check_regular_file(path)
    try:
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
            digest = hashlib.sha256()
            index = np.full(N_CODE_POINTS, -1, dtype=np.int32)  # code point -> first-seen order
            seen: list[np.ndarray] = []
            ids = np.empty(before.st_size, dtype=np.uint8)
            at = 0
            for codes in _decoded_chunks(f, path, digest):
                new = np.unique(codes[index[codes] < 0])
                index[new] = np.arange(len(new)) + sum(map(len, seen))
                seen.append(new)
                dtype = index_dtype(sum(map(len, seen)))
                if dtype != ids.dtype:
                    ids = ids.astype(dtype)
                if at + len(codes) > len(ids):
                    raise _changed(path)
                ids[at : at + len(codes)] = index[codes]
                at += len(codes)
            after, n_read = os.fstat(f.fileno()), f.tell()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror})") from None
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or (
        n_read != before.st_size
    ):
        raise _changed(path)
    if at == 0:
        raise DataError(f"{path}: file is empty")
    if index[0] >= 0:
        raise DataError(f"{path}: not a text file (contains NUL bytes)")
    first_seen = np.concatenate(seen)
    rank = np.empty(len(first_seen), dtype=np.int64)
    rank[np.argsort(first_seen)] = np.arange(len(first_seen))
    rank = rank.astype(ids.dtype)
    ids.resize(at, refcheck=False)  # the buffer was the size in bytes; characters may be fewer
    for start in range(0, at, CHUNK):  # in place, a chunk at a time
        ids[start : start + CHUNK] = rank[ids[start : start + CHUNK]]
    vocab = Vocab("".join(map(chr, np.sort(first_seen))))
    release_free_memory()
    return Corpus(path=path, ids=ids, vocab=vocab, sha256=digest.hexdigest())


def release_free_memory() -> None:
    """Hand memory freed by large temporary arrays back to the system (glibc keeps freed
    blocks of up to 32 MB for reuse, which on a large corpus is a hundred megabytes and more
    that no one uses). Elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _changed(path: Path) -> DataError:
    return DataError(
        f"{path}: the file changed while it was read; run again once nothing writes to it"
    )


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
