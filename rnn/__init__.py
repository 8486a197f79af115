"""A character-level RNN in numpy (vanilla, LSTM or GRU cell), trained by backpropagation
through time and AdaGrad, Adam or RMSProp.

state_t, h_t = cell(state_{t-1}, x_t),  o = V h + c,  p = softmax(o),  loss = sum -ln p[y]
(or its mean over the sequence)
"""

import sys as _sys

if _sys.argv[:1] == ["-m"]:  # python -m rnn... is starting: see quiet_interrupt_while_starting
    from rnn.errors import quiet_interrupt_while_starting

    quiet_interrupt_while_starting()

from rnn.engine.gradcheck import ParamCheck, gradient_check, numerical_grads, rel_error
from rnn.engine.model import CELLS, Params, init_params, loss_and_grads, sequence_losses, zero_state
from rnn.engine.optim import AdaGrad, Adam, RMSProp, clip
from rnn.engine.sample import Sampling, sample, sample_primed, warm
from rnn.engine.spec import TrainSpec
from rnn.engine.train import Controls, TrainResult, TrainState, mean_loss, train
from rnn.errors import (
    BuildError,
    CheckpointError,
    ConfigError,
    DataError,
    Interrupted,
    RNNError,
    TrainingDiverged,
)
from rnn.runs.config import Config
from rnn.runs.data import Vocab, load_text, split_train_val
from rnn.runs.outcome import Verdict, verdict

__version__ = "1.1.0"

__all__ = [
    "CELLS",
    "AdaGrad",
    "Adam",
    "BuildError",
    "CheckpointError",
    "Config",
    "Controls",
    "ConfigError",
    "DataError",
    "Interrupted",
    "ParamCheck",
    "Params",
    "RMSProp",
    "RNNError",
    "Sampling",
    "TrainResult",
    "TrainSpec",
    "TrainState",
    "TrainingDiverged",
    "Verdict",
    "Vocab",
    "clip",
    "gradient_check",
    "init_params",
    "load_text",
    "loss_and_grads",
    "mean_loss",
    "numerical_grads",
    "rel_error",
    "sample",
    "sample_primed",
    "sequence_losses",
    "split_train_val",
    "train",
    "verdict",
    "warm",
    "zero_state",
]
