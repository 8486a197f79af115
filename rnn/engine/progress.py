"""What a run shows while it trains: progress lines and bars, and the compiler's first run.

Kept apart from the training loop (rnn.engine.train): nothing here changes the trained
model. (rnn.runs.checkpoint's code digest still covers this file, as it covers every module
train.py imports: a change here makes finished runs other runs, to be safe.)
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rnn.engine.train import TrainState

COMPILE_SECONDS = 30  # about what the first compile of the kernels takes (rnn.engine.kernels)
STILL_EVERY = 5.0  # seconds between "still ..." lines: a user at a terminal sees one this often
LINES = 20  # loss lines in a run written to a log, when no interval is asked for


@dataclass(frozen=True)
class Progress:
    """How `train` shows its progress (progress=True is Progress()).

    On a terminal, a bar sized to it; elsewhere (a CI log, papermill's log, a notebook) a
    plain line every `every` updates, "update 10,000 of 100,000: loss 52.1, smooth 55.3",
    LINES lines in all when `every` is None. With `every` on a terminal, the lines print above
    the bar. decode: print each sample training draws, decoded by it (ids -> text). emit:
    where lines go (default: the stream); stream: the bar's (default: sys.stderr)."""

    every: int | None = None
    decode: Callable[[np.ndarray], str] | None = None
    stream: object = None
    emit: Callable[[str], None] | None = None


def cold_cache(kernel: str = "run_updates") -> bool:
    """True when a kernel (the update loop by default; "mean_loss_flat" is validation's) will
    be compiled rather than read from numba's on-disk cache: no index file of it in
    rnn/engine/kernels/__pycache__ (rnn.engine.kernels.stale removes them all when a kernel's
    source changes). A guess for saying so, never for deciding anything."""
    # Found, not imported: the kernels' import loads numba, which a build's parent never needs.
    source = Path(__file__).resolve().parent / "kernels" / "__init__.py"
    return not any((source.parent / "__pycache__").glob(f"{source.stem}.{kernel}-*.nbi"))


def progress_bar(progress, total: int, initial: int, compiling: bool = False):
    """The _Shown for `progress` (True or a Progress), or None when it is False."""
    if not progress:
        return None
    how = progress if isinstance(progress, Progress) else Progress()
    return _Shown(how, total, initial, compiling)


class _Shown:
    """A run's progress as it trains: start() after the kernels are compiled (it returns the
    interval train must stop at, for the lines), update(state) after each chunk."""

    def __init__(self, how: Progress, total: int, initial: int, compiling: bool):
        self.how, self.total, self.done = how, total, initial
        self.stream = how.stream or sys.stderr
        self.emit = how.emit or (lambda line: print(line, file=self.stream, flush=True))
        self.tty = how.emit is None and _isatty(self.stream)
        self.shown_samples: set = set()
        self.bar = None
        self.t0 = time.perf_counter()
        self.compiling = compiling
        if compiling:
            self.emit(f"compiling the kernels (first run only, about {COMPILE_SECONDS} s)")
            self.compiled = threading.Event()
            threading.Thread(target=self._still_compiling, daemon=True).start()

    def _still_compiling(self) -> None:
        # The compiler says nothing for half a minute or more (minutes on a busy machine).
        while not self.compiled.wait(STILL_EVERY):
            self.emit(f"  still compiling ({time.perf_counter() - self.t0:.0f} s)")

    def start(self) -> int | None:
        if self.compiling:
            self.compiled.set()
            self.emit(f"compiled the kernels in {time.perf_counter() - self.t0:.1f} s")
        every = self.how.every
        if every is None and not self.tty:
            every = round_interval(self.total / LINES)
        self.every = every
        if self.tty:
            import shutil

            from tqdm import tqdm

            # A terminal that reports no width (a pty made by `script`, say) gets 80 columns.
            sized = shutil.get_terminal_size((0, 0)).columns >= 20
            self.bar = tqdm(
                total=self.total,
                initial=self.done,
                unit="upd",
                unit_scale=True,  # 20.0k/100k: room for the bar in a narrow terminal
                mininterval=0.5,
                ascii=True,
                dynamic_ncols=sized,  # sized to the terminal, and follows it when resized
                ncols=None if sized else 80,
                desc="training",
                file=self.stream,
            )
            bar, stream = self.bar, self.stream
            self.emit = lambda line: bar.write(line, file=stream)  # above the bar
        self.rate_from = (time.perf_counter(), self.done)
        return every

    def update(self, s: TrainState) -> None:
        if self.how.decode is not None:
            for step in sorted(set(s.samples) - self.shown_samples):
                self.emit(f"sample before update {step:,}:\n{self.how.decode(s.samples[step])}")
            self.shown_samples |= set(s.samples)
        if self.bar is not None:
            self.bar.update(s.step - self.done)
            self.bar.set_postfix(smooth=f"{s.smooth:.3f}", refresh=False)
        self.done = s.step
        if self.every and (s.step % self.every == 0 or s.step == self.total) and s.step:
            t, step0 = self.rate_from
            rate = (s.step - step0) / max(time.perf_counter() - t, 1e-9)
            self.emit(
                f"update {s.step:,} of {self.total:,}: loss {s.loss[s.step - 1]:.1f}, "
                f"smooth {s.smooth:.1f} ({rate:,.0f} updates/s)"
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def round_interval(x: float) -> int:
    """The round number (1, 2 or 5 times a power of ten) at or below x, at least 1."""
    if x < 1:
        return 1
    power = 10 ** math.floor(math.log10(x))
    return int(max(f * power for f in (1, 2, 5) if f * power <= x))
