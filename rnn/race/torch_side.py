"""The race's other side: char-rnn's configuration in PyTorch, trained for a wall-clock budget.

char-rnn (Karpathy, 2015) trains, by default, a two-layer LSTM of 128 units on one-hot
characters, 50 sequences of 50 characters an update, with the state carried from batch to
batch. Here, as the race (rnn.race.contest) asks: Adam at 2e-3, the gradient's norm clipped at 5,
float32, one thread, the weights drawn from U(-0.08, 0.08) and the first layer's forget-gate
bias set to 1 (char-rnn's initialisation). The text is read as this package reads a batch
(rnn.engine.order, `sequential`): the training split cut into B stretches, stream b reading stretch
b from start to end, the states zeroed at each epoch's start and detached between updates.
Validation is the package's: the mean -ln p per character of the same held-out suffix
(rnn.runs.data.split_train_val), read as one stream from the state the first stream carries.

Imported only when torch is installed (rnn.race.contest checks first).

Evaluation is excluded from the budget: `budget` is seconds of training (the updates' own
wall time), as on the package's side of the race; the curve's seconds are the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from rnn.engine.order import Order, schedule
from rnn.race.contest import CHAR_RNN_LENGTH, CHAR_RNN_STREAMS

EVAL_CHUNK = 10_000  # validation characters per forward call (bounds its memory)


@dataclass(frozen=True)
class CharRNN:
    """char-rnn's configuration, as the race trains it."""

    layers: int = 2
    m: int = 128
    batch_size: int = CHAR_RNN_STREAMS
    seq_length: int = CHAR_RNN_LENGTH
    eta: float = 2e-3  # Adam, betas (0.9, 0.999), eps 1e-8 (torch's defaults)
    clip_norm: float = 5.0  # the whole gradient's 2-norm
    init_range: float = 0.08  # every weight and bias from U(-0.08, 0.08)
    forget_bias: float = 1.0  # the first layer's input-side forget-gate bias
    dtype: str = "float32"
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"PyTorch {torch.__version__}: a {self.layers}-layer LSTM of {self.m} units "
            f"(torch.nn.LSTM) on one-hot characters, a linear output layer, {self.batch_size} "
            f"sequences of {self.seq_length} characters an update, the mean cross-entropy per "
            f"character, Adam at {self.eta:g}, the gradient's norm clipped at "
            f"{self.clip_norm:g}, {self.dtype}, one thread; weights from "
            f"U(-{self.init_range:g}, {self.init_range:g}), the first layer's forget-gate bias "
            f"{self.forget_bias:g}; the state carried between updates (detached) and zeroed "
            f"at each epoch's start"
        )


class Net(torch.nn.Module):
    """one-hot x -> LSTM (layers of m) -> o = V h + c."""

    def __init__(self, K: int, cfg: CharRNN):
        super().__init__()
        self.K = K
        self.lstm = torch.nn.LSTM(K, cfg.m, num_layers=cfg.layers)
        self.out = torch.nn.Linear(cfg.m, K)
        for p in self.parameters():
            torch.nn.init.uniform_(p, -cfg.init_range, cfg.init_range)
        with torch.no_grad():  # torch's gate order is i, f, g, o: the f block is [m, 2m)
            self.lstm.bias_ih_l0[cfg.m : 2 * cfg.m] = cfg.forget_bias

    def forward(self, X: torch.Tensor, state):
        """X (T, B) int64 -> logits (T, B, K), state ((layers, B, m), (layers, B, m))."""
        x = torch.nn.functional.one_hot(X, self.K).to(self.out.weight.dtype)
        H, state = self.lstm(x, state)
        return self.out(H), state


def zero_state(cfg: CharRNN, B: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (cfg.layers, B, cfg.m)
    return torch.zeros(shape, dtype=dtype), torch.zeros(shape, dtype=dtype)


def mean_loss(net: Net, val_ids: np.ndarray, state) -> float:
    """Mean -ln p per character of val_ids[1:] given val_ids[:-1], one stream, from `state`
    (the first stream's), in nats."""
    ids = torch.from_numpy(np.asarray(val_ids, dtype=np.int64))
    total, n = 0.0, len(ids) - 1
    with torch.no_grad():
        for t0 in range(0, n, EVAL_CHUNK):
            t1 = min(n, t0 + EVAL_CHUNK)
            logits, state = net(ids[t0:t1, None], state)
            logp = torch.log_softmax(logits[:, 0].double(), dim=1)
            total -= float(logp.gather(1, ids[t0 + 1 : t1 + 1, None]).sum())
    return total / n


def _warm_up(net: Net, seq: torch.Tensor, state, val_ids) -> None:
    """One forward and backward pass and a short validation, the model unchanged: torch's
    first calls set up kernels and memory (seconds), which is not training, as the package's
    side compiles its kernels before its clock starts."""
    logits, _ = net(seq[:-1], state)
    torch.nn.functional.cross_entropy(logits.reshape(-1, net.K), seq[1:].reshape(-1)).backward()
    net.zero_grad(set_to_none=True)
    mean_loss(net, val_ids[: min(len(val_ids), 1000)], state)


def train_for(
    train_ids: np.ndarray,
    val_ids: np.ndarray,
    K: int,
    budget: float,
    eval_period: float,
    report: Callable[[str, dict], None],
) -> dict:
    """Train char-rnn's configuration on train_ids for `budget` seconds of training,
    evaluating on val_ids before the first update, every `eval_period` seconds of training
    and at the end. report(kind, payload) gets "progress" and "point" events as it goes.
    Returns the side's record (rnn.race.contest.side_record's fields)."""
    cfg = CharRNN()
    torch.manual_seed(cfg.seed)
    dtype = getattr(torch, cfg.dtype)
    torch.set_default_dtype(dtype)
    net = Net(K, cfg).to(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.eta)
    L, B = cfg.seq_length, cfg.batch_size
    sched = schedule(Order("sequential", 1, B), len(train_ids), L, cfg.seed)
    ids = torch.from_numpy(np.asarray(train_ids, dtype=np.int64))
    offsets = torch.arange(L + 1)[:, None]  # (L + 1, 1): a sequence and its targets
    h, c = zero_state(cfg, B, dtype)
    points, trained, evals, step = [], 0.0, 0.0, 0
    wall0 = time.perf_counter()

    def evaluate():
        nonlocal evals
        t = time.perf_counter()
        net.eval()
        v = mean_loss(net, val_ids, (h[:, :1].contiguous(), c[:, :1].contiguous()))
        net.train()
        evals += time.perf_counter() - t
        point = [trained, step, step * B * L, v / math.log(2)]
        points.append(point)
        report("point", {"point": point})

    _warm_up(net, ids[: L + 1, None], zero_state(cfg, 1, dtype), val_ids)
    evaluate()
    next_eval, last_report = eval_period, time.perf_counter()
    while trained < budget:
        t = time.perf_counter()
        starts, resets = sched.window(step, 1)
        keep = torch.from_numpy(~resets[0]).to(dtype)[None, :, None]
        h, c = h * keep, c * keep  # zero the streams starting an epoch
        seq = ids[torch.from_numpy(starts[0])[None, :] + offsets]  # (L + 1, B)
        logits, (h, c) = net(seq[:-1], (h, c))
        loss = torch.nn.functional.cross_entropy(logits.reshape(L * B, K), seq[1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_norm)
        opt.step()
        h, c = h.detach(), c.detach()
        step += 1
        trained += time.perf_counter() - t
        value = loss.detach().item()
        if not math.isfinite(value):
            raise FloatingPointError(f"PyTorch's loss is {value} at update {step:,}")
        if trained >= next_eval and trained < budget:
            evaluate()
            next_eval += eval_period
        if time.perf_counter() - last_report >= 1.0:
            last_report = time.perf_counter()
            report("progress", {"seconds": trained, "updates": step, "loss": value})
    evaluate()  # the last model, after the budget
    return {
        "points": points,
        "updates": step,
        "characters": step * B * L,
        "train_seconds": trained,
        "eval_seconds": evals,
        "wall_seconds": time.perf_counter() - wall0,
        "epochs": step / sched.per_epoch,
        "configuration": cfg.as_dict(),
        "description": cfg.describe(),
        "versions": {"torch": torch.__version__, "threads": torch.get_num_threads()},
    }
