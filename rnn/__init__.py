"""A character-level vanilla RNN in numpy, trained by backpropagation through time and AdaGrad.

a = W h + U x + b,  h = tanh(a),  o = V h + c,  p = softmax(o),  loss = sum -ln p[y]
"""

from .config import Config
from .data import Vocab, load_text, split_train_val
from .errors import CheckpointError, ConfigError, DataError, RNNError
from .gradcheck import gradient_check, numerical_grads, rel_error
from .model import Params, init_params, loss_and_grads, sequence_losses
from .optim import AdaGrad, clip
from .sample import sample, sample_primed, warm
from .train import TrainResult, TrainState, mean_loss, train

__version__ = "1.0.0"

__all__ = [
    "AdaGrad",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "Params",
    "RNNError",
    "TrainResult",
    "TrainState",
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
    "warm",
]
