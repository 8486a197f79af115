"""The package's exceptions: one family for bad input, so callers can catch it all at once."""


class RNNError(ValueError):
    """Bad input to the package: a file, a parameter or a checkpoint. The message names it."""


class DataError(RNNError):
    """A corpus file that cannot be used: missing, empty, not UTF-8, too short."""


class ConfigError(RNNError):
    """A hyperparameter outside its domain."""


class CheckpointError(RNNError):
    """A checkpoint that is unreadable, tampered with, or from another model."""


class TrainingDiverged(RNNError):
    """The loss became non-finite or rose far above its starting value; names the update and
    the parameter to lower."""


class BusyError(RNNError):
    """An output folder that another live run holds."""


class BuildError(Exception):
    """A result that failed to be made: training that stopped, a notebook cell that raised, a
    render that could not be written. notebook: the partly executed notebook kept, if any."""

    def __init__(self, message: str, notebook=None):
        super().__init__(message)
        self.notebook = notebook


class Interrupted(Exception):
    """Training stopped on request (Ctrl-C, SIGTERM) after saving what it could.

    step: updates made when it stopped; checkpoint_step: the update of the last checkpoint
    written (None if none was)."""

    def __init__(self, step: int, checkpoint_step: int | None):
        super().__init__(f"interrupted at update {step:,}")
        self.step = step
        self.checkpoint_step = checkpoint_step


class Cancelled(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) before anything was trained or written: the message says so."""


def quiet_interrupt_while_starting() -> None:
    """Started as a command (python -m rnn...): Ctrl-C while the package and its libraries
    load ends the process with one line rather than a traceback of the imports. Nothing has
    been written yet. rnn.runs.driver.terminate_like_interrupt, which every command's main calls
    first, hands Ctrl-C back to Python."""
    import os
    import signal
    import sys

    def stop(signum, frame):
        sys.stderr.write("interrupted while starting; nothing was done\n")
        os._exit(130)

    stop.starting = True  # rnn.runs.driver.terminate_like_interrupt recognises it by this
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when ignored
        signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
