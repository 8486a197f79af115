"""What training receives: one frozen record of the training parameters, resolved.

`Config.train_spec()` builds it, in one place, from the run's parameters (the preset
already resolved); `rnn.engine.train`, the driver and the command line pass it along whole. Its
defaults are Config's under the default preset, read from Config itself, and every value is
checked by Config's own rule for the parameter of that name. Two differ: sample_every and
eval_every may be None here (no sampling, no validation), which a report never asks for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from rnn.engine import optim
from rnn.engine.model import Params, init_network
from rnn.errors import ConfigError
from rnn.runs import config as _config


def _default(name: str):
    """Config's default for the parameter, the default preset's where it decides."""
    config_fields = {f.name: f for f in fields(_config.Config)}
    preset = _config.PRESETS[config_fields["assignment"].default]
    return preset.get(name, config_fields[name].default)


def _spec_field(name: str):
    return field(default=_default(name))


@dataclass(frozen=True)
class TrainSpec:
    """The training parameters (see rnn.runs.config for each one's meaning and domain)."""

    cell: str = _spec_field("cell")
    m: int = _spec_field("m")
    n_updates: int = _spec_field("n_updates")
    seq_length: int = _spec_field("seq_length")
    optimizer: str = _spec_field("optimizer")
    eta: float = _spec_field("eta")
    beta1: float = _spec_field("beta1")
    beta2: float = _spec_field("beta2")
    epsilon: float = _spec_field("epsilon")
    gamma: float = _spec_field("gamma")
    loss: str = _spec_field("loss")
    init: str = _spec_field("init")
    sigma: float = _spec_field("sigma")
    clip: float = _spec_field("clip")
    seed: int = _spec_field("seed")
    sample_every: int | None = _spec_field("sample_every")
    sample_length: int = _spec_field("sample_length")
    eval_every: int | None = _spec_field("eval_every")
    order: str = _spec_field("order")
    n_chunks: int = _spec_field("n_chunks")
    batch_size: int = _spec_field("batch_size")
    layers: int = _spec_field("layers")
    dropout: float = _spec_field("dropout")
    dtype: str = _spec_field("dtype")
    time_budget: float = _spec_field("time_budget")
    lr_decay: float = _spec_field("lr_decay")
    lr_decay_after: int = _spec_field("lr_decay_after")
    lr_anneal: float = _spec_field("lr_anneal")

    def __post_init__(self):
        rules = {f.name: f for f in fields(_config.Config)}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in ("sample_every", "eval_every"):
                continue  # turned off
            object.__setattr__(self, f.name, _config._check_field(rules[f.name], value))

    @classmethod
    def from_config(cls, cfg) -> TrainSpec:
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})

    def replace(self, **changes) -> TrainSpec:
        """A copy with some values changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def init_params(self, K: int) -> Params:
        """The network training starts from, for a vocabulary of K characters."""
        return init_network(K, self)

    @property
    def stacked(self) -> bool:
        """Whether training takes the stack's path (train.stack_gradients): more than one
        layer, dropout or float32; one float64 layer without dropout keeps the single layer's
        paths, number for number."""
        return self.layers > 1 or self.dropout > 0 or self.dtype != "float64"

    def describe(self) -> str:
        """How this spec trains, in words and the notation (the report's paragraph on
        training)."""
        loss = (
            "the sum of its characters' cross-entropies −ln pₜ[yₜ], in nats"
            if self.loss == "sum"
            else f"the mean of its {self.seq_length} characters' cross-entropies −ln pₜ[yₜ], "
            f"in nats per character"
        )
        if self.init == "scaled":
            init = "U ~ N(0, 1/(2K)), W ~ N(0, 1/(2m)), V ~ N(0, 1/m) (each gate's block alike)"
            if self.layers > 1:
                init += ", an upper layer's W and U ~ N(0, 1/(2m))"
        elif self.init == "uniform":
            init = f"U(−1/√m, 1/√m) = U(−{1 / self.m**0.5:.3g}, {1 / self.m**0.5:.3g})"
        else:
            init = f"W, U and V ~ N(0, {self.sigma:g}²)"
        clipping = (
            f"Each gradient entry is clipped to [−{self.clip:g}, {self.clip:g}]."
            if self.clip > 0
            else "Gradients are not clipped."
        )
        biases = "zero (the LSTM's forget gate's from 1)" if self.cell == "lstm" else "zero"
        if self.init == "uniform":
            biases = "the same uniform law"
        return (
            f"{self.reading()} A sequence's loss is {loss}"
            + (
                f"; an update's, the mean over its {self.batch_size} sequences"
                if self.batch_size > 1
                else ""
            )
            + f". The weights start from {init}, the biases from {biases}. {clipping} "
            f"{optim.from_spec(self).describe()}."
            + "".join(f" {sentence}" for sentence in self.extras())
        )

    def network(self) -> str:
        """The network's depth and precision in words, e.g. "2 layers, float32"; empty for one
        float64 layer."""
        parts = [f"{self.layers} layers"] if self.layers > 1 else []
        return ", ".join(parts + ([self.dtype] if self.dtype != "float64" else []))

    def extras(self) -> list[str]:
        """A sentence for each of layers, dropout, dtype, time budget and lr decay that is not
        its default (none for the assignment's network)."""
        said = []
        if self.layers > 1:
            said.append(
                f"The network stacks {self.layers} layers of {self.m} units, each layer's h the "
                f"next one's input (Uˡ hˡ⁻¹ in place of U x), the top one's read by V."
            )
        if self.dropout > 0:
            said.append(
                f"While training, each layer's output h is dropped with probability "
                f"{self.dropout:g} (inverted dropout: kept entries times 1/{1 - self.dropout:g}; "
                f"the carried state keeps h whole), and not at evaluation or sampling."
            )
        if self.dtype != "float64":
            said.append(
                f"Training and sampling compute in {self.dtype} (the gradient check in float64)."
            )
        if self.time_budget > 0:
            said.append(
                f"Training stops at the first update past {self.time_budget:g} s of training "
                f"(or after {self.n_updates:,} updates, whichever comes first), keeping the "
                f"best model by validation."
            )
        if self.lr_decay != 1.0:
            said.append(
                f"The learning rate is multiplied by {self.lr_decay:g} at the end of each epoch "
                f"from epoch {max(self.lr_decay_after, 1)} on."
            )
        start = optim.anneal_start(self)
        if start < self.n_updates:  # an anneal of at least one update
            over = (
                f"over all {self.n_updates:,} updates"
                if start == 0
                else f"over the last {self.n_updates - start:,} of the {self.n_updates:,} updates"
            )
            said.append(
                f"The learning rate falls linearly towards 0 {over}, in at most "
                f"{optim.ANNEAL_STEPS} equal steps."
            )
        return said

    def reading(self) -> str:
        """How training reads the text (the order and the batch), in sentences."""
        L, B = self.seq_length, self.batch_size
        text = "The corpus, less its validation suffix,"
        if self.order == "sequential":
            how = (
                f"{text} is read in consecutive sequences of {L} characters"
                + (
                    ", one update per sequence"
                    if B == 1
                    else f" by {B} parallel streams, each "
                    f"through its own stretch of the text, one sequence of each an update"
                )
                + ", with gradients by backpropagation through time. The hidden state is "
                "carried from one sequence to the next and reset to zero at the start of each "
                "epoch."
            )
        elif self.order == "chunks":
            how = (
                f"{text} is cut into {self.n_chunks} chunks read in an order shuffled anew each "
                f"epoch, in consecutive sequences of {L} characters"
                + ("" if B == 1 else f", {B} chunks at a time by parallel streams")
                + ", with gradients by backpropagation through time. The hidden state is "
                "carried from one sequence to the next and reset to zero at each chunk's start."
            )
        else:
            how = (
                f"{text} is read in sequences of {L} characters from positions drawn at random"
                + ("" if B == 1 else f", {B} an update")
                + ", with gradients by backpropagation through time, each from a zero state."
            )
        if B > 1:
            how += " Samples and validation read from the first stream's state."
        return how

    def check_fits(self, params: Params) -> None:
        """ConfigError unless params are a network of this spec's cell and size."""
        if params.cell != self.cell or params.m != self.m or params.layers != self.layers:
            raise ConfigError(
                f"the network is a {params.cell} cell with m={params.m} and "
                f"{params.layers} layer(s); the training parameters say cell {self.cell}, "
                f"m={self.m}, layers={self.layers}"
            )
        if params.dtype != self.dtype:
            raise ConfigError(
                f"the network is {params.dtype}; the training parameters say dtype {self.dtype}"
            )
