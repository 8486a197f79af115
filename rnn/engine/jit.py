"""numba compilation on a function's first call, so that importing a module of compiled
loops (rnn.engine.stack, rnn.engine.optim) loads no numba: the build's own process and the
report's kernel import them and never train (rnn.engine.kernels' `jit`, with its options and
on-disk cache)."""

from __future__ import annotations

import functools


def jit(fn):
    compiled = None

    @functools.wraps(fn)
    def call(*args):
        nonlocal compiled
        if compiled is None:
            from rnn.engine.kernels.blocks import jit as compile_

            compiled = compile_(fn)
        return compiled(*args)

    return call
