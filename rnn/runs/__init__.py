"""A run on disk: the parameters (their list, and values as given), where files are, the
corpus and its split, checkpoints, the driver that reuses, continues or trains a run,
training's own process, the verdict on a finished run, the notebook's guard, locks and
atomic writes."""
