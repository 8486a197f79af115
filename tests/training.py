"""`fit`: rnn.train with the training parameters as keywords, for tests that vary a few."""

import rnn

CONTROLS = ("backend", "progress", "checkpoint", "checkpoint_every", "should_stop")


def fit(params, ids, *, val_ids=None, resume=None, **given):
    """rnn.train(params, ids, spec) with spec = TrainSpec(cell and m of params, **given),
    the keywords named in CONTROLS going to its Controls instead."""
    controls = rnn.Controls(**{k: given.pop(k) for k in CONTROLS if k in given})
    spec = rnn.TrainSpec(cell=params.cell, m=params.m, **given)
    return rnn.train(params, ids, spec, val_ids=val_ids, resume=resume, controls=controls)
