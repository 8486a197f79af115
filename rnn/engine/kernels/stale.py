"""numba's on-disk cache, keyed on the kernels' sources: a changed kernel never runs stale.

numba reuses a cached compiled function while the file that defines it is unchanged, even
when a function it calls, in another file, has changed (the compiled caller has the old
callee inlined). So the cache is keyed here on all of them: a digest of every source file
of rnn/engine/kernels, with numba's and Python's versions, is kept beside the cache, and when it no
longer matches at import the cached machine code is removed (it is compiled again, about
30-60 s, on first use).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = "sources.sha256"  # in the cache folder, beside numba's index (.nbi) and code (.nbc)


def sources_digest(folder: Path = HERE) -> str:
    """SHA-256 over the kernels' source files (names and bytes), numba's, numpy's and
    Python's versions: what the cached machine code was compiled from (numpy's version stands
    for its BLAS, whose SGEMM steps32's cached code calls by a symbol that names its integers'
    width)."""
    import numpy

    try:
        import numba

        version = numba.__version__
    except ImportError:
        version = "none"
    h = hashlib.sha256(f"numba {version}; numpy {numpy.__version__}; python {sys.version}".encode())
    for file in sorted(folder.glob("*.py")):
        h.update(file.name.encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


def cache_folders(folder: Path = HERE) -> list[Path]:
    """Where numba keeps the cache of these sources: the first of its own locations that
    it can use (__pycache__ beside them, else NUMBA_CACHE_DIR or the user's cache folder)."""
    try:
        from numba.core.caching import _CacheImpl

        for locator in _CacheImpl._locator_classes:
            found = locator.from_function(None, str(folder / "blocks.py"))
            if found is not None:
                return [Path(found.get_cache_path())]
    except Exception:  # numba's internals moved, or no numba: the usual place
        pass
    return [folder / "__pycache__"]


def clear_if_stale(folder: Path = HERE) -> list[Path]:
    """Remove the cached machine code compiled from other sources than these, and record
    these as the cache's; returns what was removed. A folder that cannot be written is left
    alone (numba then caches nothing there either)."""
    digest, removed = sources_digest(folder), []
    for cache in cache_folders(folder):
        stamp = cache / STAMP
        try:
            if stamp.read_text(encoding="ascii").strip() == digest:
                continue
        except OSError:
            pass  # no stamp: a fresh cache, or one made before the key existed
        try:
            cache.mkdir(parents=True, exist_ok=True)
            for file in cache.iterdir():
                if file.suffix in (".nbi", ".nbc"):
                    file.unlink(missing_ok=True)
                    removed.append(file)
            tmp = cache / f"{STAMP}.{os.getpid()}"
            tmp.write_text(digest + "\n", encoding="ascii")
            os.replace(tmp, stamp)  # atomic: a process importing at once reads one or the other
        except OSError:
            pass
    return removed
