"""A run on disk: the parameters, the corpus and its split, checkpoints, the driver that
reuses, continues or trains a run, training's own process, locks and atomic writes."""
