"""PyTorch's automatic differentiation as an independent check of our BPTT (optional).

Each cell's forward pass is written here in torch from the equations alone (the same ones as
rnn/engine/cells/*.py, float64), and autograd differentiates it. `autograd_check` compares those
gradients with ours entry by entry, with the gradient check's error |g_a - g_t| /
max(REL_FLOOR, |g_a| + |g_t|), over every entry of W, U, b, V, c: at the current
assignment's setting (m = CHECK_M = 10, 25 characters) it takes a fraction of a second, and
the two float64 computations agree to 7e-14 or better (measured on the default corpus, every
cell, loss sum and mean).

torch is an optional extra (`pip install '.[torch]'`, or `make torch` into .venv), imported
only when a function here needs it: the rest of the package works without it, and
`autograd_check` then returns a result that says the extra is missing rather than failing.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from rnn.engine.gradcheck import REL_FLOOR, rel_error
from rnn.engine.model import PARAM_NAMES, Params, init_params, loss_and_grads, zero_state
from rnn.engine.spec import TrainSpec
from rnn.errors import ConfigError, DataError

CHECK_M = 10  # hidden units of the network compared with autograd (the current assignment's)
LOSSES = ("sum", "mean")  # the loss over a sequence: sum or mean of -ln p_t[y_t]
INSTALL = "pip install '.[torch]' (or make torch)"


class TorchMissing(ImportError):
    """torch is not installed; the message says how to install the extra."""


def torch_module():
    """The torch module, imported now; TorchMissing (one line: how to install it) if absent."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise TorchMissing(f"PyTorch is not installed: {INSTALL}") from None


def torch_version() -> str | None:
    """torch's version, or None when it is not installed."""
    try:
        return torch_module().__version__
    except TorchMissing:
        return None


def _check_loss(loss: str) -> str:
    if loss not in LOSSES:
        raise ConfigError(f"parameter loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    return loss


# --- each cell's step in torch, from its equations (columns: h (m, 1), inp = U x_t + b) --------


def _vanilla(torch, P, inp, state):
    """a = W h + U x + b,  h = tanh(a)."""
    h = torch.tanh(P["W"] @ state + inp)
    return h, h


def _lstm(torch, P, inp, state):
    """z = W h + U x + b (gates i, f, o, g), s = f s + i g, h = o tanh(s); state [h; s]."""
    m = P["V"].shape[1]
    h_prev, s_prev = state[:m], state[m:]
    z = P["W"] @ h_prev + inp
    i, f, o = (torch.sigmoid(z[k * m : (k + 1) * m]) for k in range(3))
    g = torch.tanh(z[3 * m :])
    s = f * s_prev + i * g
    h = o * torch.tanh(s)
    return h, torch.cat([h, s])


def _gru(torch, P, inp, state):
    """z = σ(W_z h + U_z x + b_z), r = σ(W_r h + U_r x + b_r),
    n = tanh(W_n (r h) + U_n x + b_n), h = (1 - z) h + z n."""
    m = P["V"].shape[1]
    W = P["W"]
    z = torch.sigmoid(W[:m] @ state + inp[:m])
    r = torch.sigmoid(W[m : 2 * m] @ state + inp[m : 2 * m])
    n = torch.tanh(W[2 * m :] @ (r * state) + inp[2 * m :])
    h = (1.0 - z) * state + z * n
    return h, h


STEPS = {"vanilla": _vanilla, "lstm": _lstm, "gru": _gru}


def forward(P: dict, X: ArrayLike, Y: ArrayLike, state0, cell: str, loss: str = "sum"):
    """The sequence's loss in torch: P maps W, U, b, V, c to float64 tensors, state0 is a
    (S, 1) tensor. Returns (loss, state after X[-1]) as tensors, differentiable in P.

    x_t is one-hot, so U x_t is U's column X[t]: the input terms of the whole sequence are
    one indexing, and the output layer, which nothing recurrent feeds back into, one product
    over every step's h (as a PyTorch user would write it)."""
    torch = torch_module()
    X = torch.as_tensor(np.asarray(X, dtype=np.int64))
    Y = torch.as_tensor(np.asarray(Y, dtype=np.int64))
    step, T = STEPS[cell], len(X)
    inputs = P["U"][:, X] + P["b"]  # (G m, T): U x_t + b for every t
    state, hs = state0, []
    for t in range(T):
        h, state = step(torch, P, inputs[:, t : t + 1], state)
        hs.append(h)
    if not hs:
        return torch.zeros((), dtype=torch.float64), state
    logp = torch.log_softmax(P["V"] @ torch.cat(hs, dim=1) + P["c"], dim=0)  # (K, T): ln p_t
    total = -logp[Y, torch.arange(T)].sum()  # sum_t -ln p_t[y_t]
    if _check_loss(loss) == "mean":
        total = total / T
    return total, state


def autograd_grads(
    params: Params, X: ArrayLike, Y: ArrayLike, state0: np.ndarray, loss: str = "sum"
) -> tuple[float, Params, np.ndarray]:
    """(loss, grads, state) as rnn.loss_and_grads returns them, computed by torch's autograd
    through `forward`, in float64."""
    torch = torch_module()
    P = {
        name: torch.tensor(np.asarray(value, dtype=np.float64), requires_grad=True)
        for name, value in params.items()
    }
    state0_t = torch.tensor(np.asarray(state0, dtype=np.float64))
    total, state = forward(P, X, Y, state0_t, params.cell, loss)
    total.backward()
    grads = Params(**{name: P[name].grad.numpy().copy() for name in PARAM_NAMES})
    return float(total.detach()), grads, state.detach().numpy().copy()


def bptt_grads(
    params: Params, X: ArrayLike, Y: ArrayLike, state0: np.ndarray, loss: str = "sum"
) -> tuple[float, Params, np.ndarray]:
    """Our BPTT's (loss, grads, state) for the loss mode: rnn.loss_and_grads's own when it
    takes a loss mode (as it does beside the optimizers' family), else its summed loss's,
    divided by T for the mean."""
    if "loss" in inspect.signature(loss_and_grads).parameters:
        return loss_and_grads(params, X, Y, state0, loss=loss)
    total, grads, state = loss_and_grads(params, X, Y, state0)
    if _check_loss(loss) == "mean":
        T = max(1, len(X))
        return total / T, grads.map(lambda g: g / T), state
    return total, grads, state


@dataclass(frozen=True)
class AutogradCheck:
    """Our BPTT against autograd for one network: the largest error per parameter (empty when
    torch is missing), the network's size and the loss mode, and torch's version (None: not
    installed, and `missing` says how to install it)."""

    cell: str
    m: int
    seq_length: int
    loss: str
    torch_version: str | None
    errors: dict[str, float] = field(default_factory=dict)
    loss_difference: float = float("nan")  # |our loss - torch's loss|

    @property
    def available(self) -> bool:
        return self.torch_version is not None

    @property
    def missing(self) -> str:
        return "" if self.available else f"needs the optional extra: {INSTALL}"


def compare(
    params: Params,
    X: ArrayLike,
    Y: ArrayLike,
    state0: np.ndarray,
    loss: str = "sum",
    grad_fn=bptt_grads,
) -> AutogradCheck:
    """Largest error between grad_fn's gradients (our BPTT by default) and autograd's for each
    of W, U, b, V, c, over every entry (the gradient check's measure, REL_FLOOR its floor).
    grad_fn(params, X, Y, state0, loss) -> (loss, grads, state). Needs torch (TorchMissing
    otherwise)."""
    version = torch_module().__version__
    ours, g_a, _ = grad_fn(params, X, Y, state0, loss)
    theirs, g_t, _ = autograd_grads(params, X, Y, state0, loss)
    errors = {
        name: float(rel_error(getattr(g_a, name), getattr(g_t, name), REL_FLOOR).max())
        for name in PARAM_NAMES
    }
    return AutogradCheck(
        params.cell, params.m, len(X), loss, version, errors, abs(float(ours) - theirs)
    )


def autograd_check(spec: TrainSpec, ids: ArrayLike, K: int, m: int = CHECK_M) -> AutogradCheck:
    """Part I's second column: a network of the run's cell with m units, drawn as the run's
    are (its init, sigma and seed), on ids[:seq_length] predicting ids[1:seq_length + 1]
    (fewer when ids is shorter) from a zero state, with the run's loss mode: spec is the
    run's rnn.engine.spec.TrainSpec, checked when it was made. Without torch the result has no
    errors and says the extra is needed (it does not raise); bad input raises first, either
    way."""
    cell, seq_length, loss = spec.cell, spec.seq_length, spec.loss
    ids = np.asarray(ids)
    if len(ids) < 2:
        raise DataError(f"the check needs at least 2 characters, got {len(ids)}")
    if torch_version() is None:
        return AutogradCheck(cell, m, seq_length, loss, None)
    X, Y = ids[:seq_length], ids[1 : seq_length + 1]
    params = init_params(K, m=m, sigma=spec.sigma, seed=spec.seed, cell=cell, init=spec.init)
    return compare(params, X, Y, zero_state(params), loss)
