"""The optimizers, a family with one interface and their state in plain sight, and the
gradient clipping that precedes them.

Each optimizer is a small frozen dataclass of its hyperparameters with two methods:

    state = opt.init(params)                        # a dict: Params of zeros (and Adam's t)
    next_params, next_state = opt.step(params, grads, state)   # pure: inputs untouched

as CS231n's `next_w, config = update(w, dw, config)`: the state is what a checkpoint saves
(`flat_state` / `unflat_state` turn it into flat float64 vectors in Params.flatten order and
back) and what one step can be tested on. The compiled path (rnn.engine.kernels) applies the same
rules entry by entry and is tested against these. Every rule works over all of a stacked
network's parameters (Params.names()) and keeps the state in the parameters' dtype (float32
stays float32: the scalars are Python floats, which do not widen an array).

- AdaGrad:  G <- G + g^2;                        theta <- theta - eta g / sqrt(G + eps)
- RMSProp:  G <- gamma G + (1 - gamma) g^2;      theta <- theta - eta g / sqrt(G + eps)
- Adam:     m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2;
            mhat = m / (1 - beta1^t);  vhat = v / (1 - beta2^t);
            theta <- theta - eta mhat / (sqrt(vhat) + eps),   t = 1, 2, ... counting updates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn.engine.jit import jit
from rnn.engine.model import Params

OPTIMIZERS = ("adagrad", "adam", "rmsprop")
EPS = 1e-8
CLIP = 5.0  # the earlier edition's bound; the current edition does not clip


@dataclass(frozen=True)
class AdaGrad:
    """AdaGrad: G += g^2; theta -= eta g / sqrt(G + eps). State: G, the running sums of
    squared gradients."""

    eta: float = 0.1
    eps: float = EPS

    def init(self, params: Params) -> dict:
        return {"G": params.map(np.zeros_like)}

    def step(self, params: Params, grads: Params, state: dict) -> tuple[Params, dict]:
        """(next_params, next_state); the inputs are left as they were."""
        G = _zip(lambda G, g: G + g**2, state["G"], grads)
        return _divided_step(params, grads, G, self.eta, self.eps), {"G": G}

    def describe(self) -> str:
        return (
            f"AdaGrad: G ← G + g², θ ← θ − η g / √(G + ε), with η = {self.eta:g}, ε = {self.eps:g}"
        )


@dataclass(frozen=True)
class RMSProp:
    """RMSProp: G = gamma G + (1 - gamma) g^2; theta -= eta g / sqrt(G + eps). State: G, the
    running average of squared gradients."""

    eta: float = 0.001
    gamma: float = 0.9
    eps: float = EPS

    def init(self, params: Params) -> dict:
        return {"G": params.map(np.zeros_like)}

    def step(self, params: Params, grads: Params, state: dict) -> tuple[Params, dict]:
        gamma = self.gamma
        G = _zip(lambda G, g: gamma * G + (1.0 - gamma) * g**2, state["G"], grads)
        return _divided_step(params, grads, G, self.eta, self.eps), {"G": G}

    def describe(self) -> str:
        return (
            f"RMSProp updates every parameter: G ← γ G + (1 − γ) g², θ ← θ − η g / √(G + ε), "
            f"with η = {self.eta:g}, "
            f"γ = {self.gamma:g}, ε = {self.eps:g}"
        )


@dataclass(frozen=True)
class Adam:
    """Adam with bias correction. State: m and v (moving averages of the gradient and of its
    square) and t, the number of updates made (the first update has t = 1). Every entry moves
    each step: a zero gradient still decays m and v."""

    eta: float = 0.001
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = EPS

    def init(self, params: Params) -> dict:
        return {"m": params.map(np.zeros_like), "v": params.map(np.zeros_like), "t": 0}

    def step(self, params: Params, grads: Params, state: dict) -> tuple[Params, dict]:
        b1, b2, t = self.beta1, self.beta2, state["t"] + 1
        m = _zip(lambda m, g: b1 * m + (1.0 - b1) * g, state["m"], grads)
        v = _zip(lambda v, g: b2 * v + (1.0 - b2) * g**2, state["v"], grads)
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t

        def move(w, m, v):
            mhat, vhat = m / c1, v / c2
            return w - self.eta * mhat / (np.sqrt(vhat) + self.eps)

        return _zip3(move, params, m, v), {"m": m, "v": v, "t": t}

    def describe(self) -> str:
        return (
            f"Adam updates every parameter: m ← β₁ m + (1 − β₁) g, v ← β₂ v + (1 − β₂) g², "
            f"m̂ = m / (1 − β₁ᵗ), "
            f"v̂ = v / (1 − β₂ᵗ), θ ← θ − η m̂ / (√v̂ + ε), t counting updates from 1, with "
            f"η = {self.eta:g}, β₁ = {self.beta1:g}, β₂ = {self.beta2:g}, ε = {self.eps:g}"
        )


def from_spec(spec) -> AdaGrad | Adam | RMSProp:
    """The optimizer a training spec (rnn.engine.spec.TrainSpec) names, with its hyperparameters."""
    if spec.optimizer == "adam":
        return Adam(eta=spec.eta, beta1=spec.beta1, beta2=spec.beta2, eps=spec.epsilon)
    if spec.optimizer == "rmsprop":
        return RMSProp(eta=spec.eta, gamma=spec.gamma, eps=spec.epsilon)
    return AdaGrad(eta=spec.eta, eps=spec.epsilon)


def state_names(optimizer: str) -> tuple[str, ...]:
    """The names of an optimizer's state, as `flat_state` stores them."""
    return ("m", "v", "t") if optimizer == "adam" else ("G",)


def flat_state(state: dict) -> dict[str, np.ndarray]:
    """The state as flat arrays: each Params flattened (in the parameters' dtype), Adam's t an
    int64 array of one entry (so that the compiled path advances it in place)."""
    return {
        name: value.flatten() if isinstance(value, Params) else np.array([value], dtype=np.int64)
        for name, value in state.items()
    }


def unflat_state(flat: dict, m: int, K: int, cell: str, layers: int = 1) -> dict:
    """Inverse of flat_state: copies, as Params of the network's shapes (and t an int)."""
    return {
        name: Params.unflatten(a, m, K, cell, layers)
        if np.issubdtype(a.dtype, np.floating)
        else int(a[0])
        for name, a in flat.items()
    }


def clip(grads: Params, bound: float = CLIP) -> Params:
    """Each gradient entry clipped to [-bound, bound] (the original's guard against explosion)."""
    return grads.map(lambda g: np.clip(g, -bound, bound))


def _divided_step(params: Params, grads: Params, G: Params, eta: float, eps: float) -> Params:
    """theta - eta g / sqrt(G + eps): AdaGrad's step and RMSProp's, which differ only in G."""
    return _zip3(lambda w, g, G: w - eta * g / np.sqrt(G + eps), params, grads, G)


def update_in_place(opt, params: Params, grads: Params, state: dict, scale: float, bound: float):
    """One whole update as the stack's path makes it, in place: each gradient g becomes
    clip(scale g) (no clipping at bound 0), then the optimizer steps. Adam runs one compiled
    pass per array (0.28 ms an update at 2 x 128 LSTM units, bench/stack.py, a few times less
    than the rule's numpy expressions, which make a new array per operation); the others run
    their `step` and copy its result in. The arrays must be C-contiguous (as Params.unflatten
    makes them), so that their flat views are the arrays themselves. Adam's form here folds the
    bias corrections into the rate and epsilon,

        theta <- theta - (eta sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2)),

    which equals the rule above but rounds differently in the last bits."""
    if isinstance(opt, Adam):
        t = state["t"] + 1
        c1, c2 = 1.0 - opt.beta1**t, 1.0 - opt.beta2**t
        rate, eps = opt.eta * np.sqrt(c2) / c1, opt.eps * np.sqrt(c2)
        for name, w in params.items():
            g, m, v = getattr(grads, name), getattr(state["m"], name), getattr(state["v"], name)
            _adam_in_place(
                _flat(w), _flat(g), _flat(m), _flat(v),
                (opt.beta1, opt.beta2, rate, eps, scale, bound),
            )  # fmt: skip
        state["t"] = t
        return
    if scale != 1.0:
        for _, g in grads.items():
            g *= g.dtype.type(scale)
    if bound > 0:
        for _, g in grads.items():
            np.clip(g, -bound, bound, out=g)
    stepped, next_state = opt.step(params, grads, state)
    for name, w in params.items():
        w[...] = getattr(stepped, name)
    for key, value in next_state.items():
        if isinstance(value, Params):
            for name, a in state[key].items():
                a[...] = getattr(value, name)
        else:
            state[key] = value


def _flat(a: np.ndarray) -> np.ndarray:
    """The array's entries as a flat view: an update written there is written in a."""
    if not a.flags.c_contiguous:
        raise ValueError("an in-place update needs C-contiguous arrays")
    return a.reshape(-1)


@jit
def _adam_in_place(w, g, m, v, k):
    """Adam's step over one flat array (see update_in_place); k = (beta1, beta2, rate, eps,
    scale, bound)."""
    b1, b2, rate, eps, scale, bound = k
    for i in range(w.size):
        gi = g[i] * scale
        if bound > 0:
            gi = min(max(gi, -bound), bound)
        m[i] = b1 * m[i] + (1.0 - b1) * gi
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi
        w[i] -= rate * m[i] / (np.sqrt(v[i]) + eps)


def scheduled_eta(spec, step: int, per_epoch: int) -> float:
    """The learning rate of update `step` (0-based): decayed_eta's per epoch, times the
    anneal's factor (anneal_factor)."""
    return decayed_eta(spec, step // per_epoch) * anneal_factor(spec, step)


def next_eta_change(spec, step: int, per_epoch: int) -> int:
    """The first update after `step` whose learning rate may differ from step's (an epoch's
    end when lr_decay acts, a step of the anneal), or n_updates: training runs the updates in
    between at one rate, so the rates do not depend on how it splits its work."""
    changes = [spec.n_updates]
    if spec.lr_decay != 1.0:
        changes.append(per_epoch * (step // per_epoch + 1))
    if spec.lr_anneal > 0:
        start, length = anneal_start(spec), anneal_step_length(spec)
        changes.append(start if step < start else start + length * ((step - start) // length + 1))
    return min(changes)


def decayed_eta(spec, epoch: int) -> float:
    """The learning rate of an update in epoch `epoch` (0-based), as char-rnn decays it: at
    the end of each epoch e = 1, 2, ... with e >= lr_decay_after, eta is multiplied by
    lr_decay; so eta lr_decay^k, k the number of such ends before this epoch."""
    k = epoch - max(spec.lr_decay_after, 1) + 1
    return spec.eta * spec.lr_decay**k if spec.lr_decay != 1.0 and k > 0 else spec.eta


def _zip(fn, a: Params, b: Params) -> Params:
    return Params(**{name: fn(x, getattr(b, name)) for name, x in a.items()})


def _zip3(fn, a: Params, b: Params, c: Params) -> Params:
    return Params(**{name: fn(x, getattr(b, name), getattr(c, name)) for name, x in a.items()})


# The anneal: over the last lr_anneal of n_updates the rate falls towards 0 in at most
# ANNEAL_STEPS equal steps, at fixed updates (so that a run's rates are the same however its
# work is split), a staircase close to a linear fall. lr_anneal 1 falls over the whole run;
# less holds the rate first, then falls, the schedule of a fixed budget of updates.
ANNEAL_STEPS = 100


def anneal_start(spec) -> int:
    """The first update of the anneal (n_updates when there is none)."""
    return spec.n_updates - round(spec.lr_anneal * spec.n_updates)


def anneal_step_length(spec) -> int:
    """Updates at each rate of the anneal (at least 1, so at most ANNEAL_STEPS rates)."""
    return max(1, -(-(spec.n_updates - anneal_start(spec)) // ANNEAL_STEPS))


def anneal_factor(spec, step: int) -> float:
    """eta's factor at update `step`: 1 before the anneal; in it, 1 less the share of the
    anneal's updates made before this step's rate began (1 at its first step, about 0.01 at
    its last: never 0)."""
    start = anneal_start(spec)
    if step < start:
        return 1.0
    length = anneal_step_length(spec)
    done = (step - start) // length * length  # updates of the anneal before this step's
    return 1.0 - done / (spec.n_updates - start)
