"""numpy's own OpenBLAS SGEMM, callable from compiled loops (rnn.engine.kernels.steps32).

With it, the stack's recurrence in single precision runs a layer's T steps in one compiled
call instead of returning to Python for each step's products: a forward step of
configs/ten-minutes.yaml's GRU layers took 210 us through numpy, of which the two products are
about 123 and the elementwise work about 20; the rest was the calls between them.

The library is the one numpy itself loaded, found through threadpoolctl, so a thread limit
set with threadpoolctl (the bench's, the race's) holds for these products too. Its CBLAS
entry is registered under a name of our own for numba's linker, which keeps compiled callers
cacheable. Where numpy's BLAS is not OpenBLAS (Accelerate, MKL) there is nothing to register:
`SGEMM` is None and the stack keeps its numpy loops.
"""

from __future__ import annotations

import ctypes

# (symbol, width of its integers): numpy's wheels ship scipy-openblas with 64-bit integers;
# an OpenBLAS of a distribution or of conda exports the plain CBLAS names with 32-bit ones
_CANDIDATES = (
    ("scipy_cblas_sgemm64_", 64),
    ("cblas_sgemm64_", 64),
    ("scipy_cblas_sgemm", 32),
    ("cblas_sgemm", 32),
)

ROW_MAJOR, NO_TRANS = 101, 111  # CBLAS's enum values


def _find():
    """(address of SGEMM, integer width) in the OpenBLAS numpy loaded, or (None, 0)."""
    try:
        import numpy  # noqa: F401  (loads the library threadpoolctl then finds)
        from threadpoolctl import threadpool_info
    except ImportError:
        return None, 0
    found = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
    found.sort(key=lambda info: "numpy" not in info["filepath"])  # numpy's before another's
    for info in found:
        try:
            lib = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for name, bits in _CANDIDATES:
            fn = getattr(lib, name, None)
            if fn is not None:
                return ctypes.cast(fn, ctypes.c_void_p).value, bits
    return None, 0


def _register():
    """The numba external function for SGEMM, or None."""
    address, bits = _find()
    if address is None:
        return None
    try:
        import llvmlite.binding as llvm
        from numba import types
    except ImportError:
        return None
    symbol = f"rnn_cblas_sgemm_i{bits}"
    llvm.add_symbol(symbol, address)
    i = types.int64 if bits == 64 else types.int32
    e, f, p = types.int32, types.float32, types.voidptr
    return types.ExternalFunction(symbol, types.void(e, e, e, i, i, i, f, p, i, p, i, f, p, i))


SGEMM = _register()
