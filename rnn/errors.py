"""The package's exceptions: one family, so callers can catch all bad input at once."""


class RNNError(ValueError):
    """Bad input to the package: a file, a parameter or a checkpoint. The message names it."""


class DataError(RNNError):
    """A corpus file that cannot be used: missing, empty, not UTF-8, too short."""


class ConfigError(RNNError):
    """A hyperparameter outside its domain."""


class CheckpointError(RNNError):
    """A checkpoint that is unreadable, tampered with, or from another model."""
