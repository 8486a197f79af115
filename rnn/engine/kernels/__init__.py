"""The fast path: whole training chunks compiled with numba, same mathematics as rnn.engine.model
and rnn.engine.optim.

The parameters travel as one flat float64 vector theta in the order W, U, b, V, c
(`Params.flatten`), and so does each array of the optimizer's state, so that the update,
clipping and keeping the best model are single loops. The carried state travels as a column
(S, 1), as everywhere in the package. Character indices may be any integer dtype (uint8,
uint16, int32, ...): numba compiles one specialisation per dtype, and nothing is copied.

`run_updates` takes its inputs as named tuples (Net, Text, Rule, Model, Log, Counters), built
by rnn.engine.train: what the network is, what it reads, how it is updated, what is updated in
place, what is recorded, and where the loop stands. The optimizer is a number (Rule.kind:
ADAGRAD, ADAM, RMSPROP) tested inside compiled code, so one compiled loop serves all
optimizers, and the cell a number of gate blocks (1, 4, 3), so it serves all cells.

One module per cell (vanilla, lstm, gru) holds its compiled forward and backward over a
sequence; `blocks` holds what they share. numba's cache notices edits only to the file that
defines a function; `stale` keys it on every file here, so that a compiled caller of an edited
kernel is compiled again.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from rnn.engine.kernels import stale

stale.clear_if_stale()  # before any kernel is compiled or loaded from the cache

from rnn.engine.kernels import gru, lstm, vanilla  # noqa: E402
from rnn.engine.kernels.blocks import (  # noqa: E402
    AVAILABLE,
    adagrad,
    adagrad_columns,
    adagrad_keep,
    adam,
    jit,
    rmsprop,
)

__all__ = [
    "ADAGRAD",
    "ADAM",
    "AVAILABLE",
    "KINDS",
    "RMSPROP",
    "Counters",
    "Log",
    "Model",
    "Net",
    "Rule",
    "Text",
    "loss_and_grads_flat",
    "mean_loss_flat",
    "run_updates",
    "scratch",
]

ADAGRAD, ADAM, RMSPROP = 0, 1, 2
KINDS = {"adagrad": ADAGRAD, "adam": ADAM, "rmsprop": RMSPROP}

# The network: m hidden units, K characters, gates = the cell's gate blocks (1, 4, 3).
Net = namedtuple("Net", ["m", "K", "gates"])
# What it reads: update c.step + i trains on ids[starts[i] : starts[i] + L + 1], from a state
# zeroed first when resets[i] (rnn.engine.order chooses both).
Text = namedtuple("Text", ["ids", "starts", "resets", "L"])
# The update: kind (ADAGRAD, ADAM, RMSPROP) and its hyperparameters; clip the bound on each
# gradient entry (inf: none); scale what the summed loss and its gradients are multiplied by
# (1 for loss "sum", 1/L for "mean").
Rule = namedtuple("Rule", ["kind", "eta", "beta1", "beta2", "eps", "gamma", "clip", "scale"])
# Updated in place: theta, the optimizer's state (AdaGrad and RMSProp: s1 = G, s2 unused;
# Adam: s1 = m, s2 = v; t (1,) int64 the updates made), and the carried state (S, 1).
Model = namedtuple("Model", ["theta", "s1", "s2", "t", "state"])
# Recorded in place: each update's loss and smooth loss (smooth = decay smooth + weight
# loss), and the parameters with the lowest smooth loss with the state they started from.
Log = namedtuple("Log", ["losses", "smooths", "decay", "weight", "best_theta", "best_state"])
# Where the loop stands: updates step .. step + n - 1 are to run.
Counters = namedtuple("Counters", ["step", "n", "smooth", "best_smooth", "best_step"])


@jit
def scratch(T, m, K, gates, S):
    """Working memory for sequences of up to T steps (see kernels.vanilla for the names)."""
    Gm = gates * m
    n = max(Gm, K)
    bits = np.zeros(n, dtype=np.int64)
    return (
        np.zeros((T + 1, S)),  # H
        np.zeros((T, K)),  # O
        np.zeros((T, Gm)),  # Z
        np.zeros((T, Gm)),  # D
        np.zeros((T, m)),  # E
        np.zeros((T, m)),  # Dh
        np.zeros((T + 1, m)),  # Hh: h alone, when the state holds more
        np.zeros(m * Gm),  # wt: W transposed, flat (a cell reshapes it, block by block)
        np.zeros((m, K)),  # VT
        np.zeros(m),  # v1
        np.zeros(m),  # v2
        np.zeros(m),  # v3
        np.zeros(2 * n),  # q (tanh_ uses both halves)
        bits,
        bits.view(np.float64),  # scale: the same memory as bits, read as float64
    )


@jit
def _forward(theta, X, Y, sc, m, K, gates):
    if gates == 4:
        return lstm.forward(theta, X, Y, sc, m, K)
    if gates == 3:
        return gru.forward(theta, X, Y, sc, m, K)
    return vanilla.forward(theta, X, Y, sc, m, K)


@jit
def _backward(theta, grad, X, Y, sc, m, K, gates):
    if gates == 4:
        lstm.backward(theta, grad, X, Y, sc, m, K)
    elif gates == 3:
        gru.backward(theta, grad, X, Y, sc, m, K)
    else:
        vanilla.backward(theta, grad, X, Y, sc, m, K)


@jit
def _update(net, rule, model, grad, X, seen, keep, old):
    """One update of theta and the optimizer's state from grad (the summed loss's gradient:
    each entry is scaled by rule.scale and clipped on the way), with keep: theta as it was
    copied into old on the way. model.t counts the updates.

    AdaGrad updates every entry whose gradient can be nonzero: all but U's columns of
    characters absent from X (seen: scratch of K booleans), where G += 0 and theta -= 0
    would change nothing. Adam and RMSProp update every entry: a zero gradient still decays
    their averages and, through them, moves theta."""
    theta, G2 = model.theta, model.s1
    model.t[0] += 1
    if rule.kind == ADAM:
        if keep:
            old[:] = theta
        t = model.t[0]
        adam(theta, model.s1, model.s2, grad, rule, 1.0 - rule.beta1**t, 1.0 - rule.beta2**t)
        return
    if rule.kind == RMSPROP:
        if keep:
            old[:] = theta
        rmsprop(theta, G2, grad, rule)
        return
    eta, eps, clip, scale = rule.eta, rule.eps, rule.clip, rule.scale
    Gm = net.gates * net.m
    K = net.K
    o1, o2 = Gm * net.m, Gm * net.m + Gm * K
    seen[:] = False
    for t in range(X.shape[0]):
        seen[X[t]] = True
    cols = np.flatnonzero(seen)
    if keep:
        adagrad_keep(theta[:o1], G2[:o1], grad[:o1], eta, eps, clip, scale, old[:o1])  # W
        old[o1:o2] = theta[o1:o2]
    else:
        adagrad(theta[:o1], G2[:o1], grad[:o1], eta, eps, clip, scale)  # W
    U, GU, dU = (
        theta[o1:o2].reshape((Gm, K)),
        G2[o1:o2].reshape((Gm, K)),
        grad[o1:o2].reshape((Gm, K)),
    )
    adagrad_columns(U, GU, dU, cols, eta, eps, clip, scale)
    if keep:
        adagrad_keep(theta[o2:], G2[o2:], grad[o2:], eta, eps, clip, scale, old[o2:])  # b, V, c
    else:
        adagrad(theta[o2:], G2[o2:], grad[o2:], eta, eps, clip, scale)  # b, V, c


@jit
def loss_and_grads_flat(theta, X, Y, state0, m, K, gates):
    """(loss, dL/dtheta, state (S, 1)) for one sequence from state0 (S, 1): the compiled
    twin of model.loss_and_grads."""
    T, S = X.shape[0], state0.shape[0]
    sc = scratch(T, m, K, gates, S)
    sc[0][0] = state0[:, 0]
    grad = np.zeros_like(theta)  # (the LSTM's backward writes only X's columns of dU)
    loss = _forward(theta, X, Y, sc, m, K, gates)
    _backward(theta, grad, X, Y, sc, m, K, gates)
    return loss, grad, sc[0][T].copy().reshape((S, 1))


@jit
def mean_loss_flat(theta, ids, state0, m, K, gates):
    """Mean -ln p per character of ids[1:] given ids[:-1], the state carried from state0
    (S, 1) through all of it. Forward only, in chunks of 1024 characters."""
    n = ids.shape[0] - 1
    chunk = max(1, min(n, 1024))
    S = state0.shape[0]
    sc = scratch(chunk, m, K, gates, S)
    H = sc[0]
    H[0] = state0[:, 0]
    total = 0.0
    for start in range(0, n, chunk):
        T = min(chunk, n - start)
        total += _forward(
            theta, ids[start : start + T], ids[start + 1 : start + T + 1], sc, m, K, gates
        )
        H[0] = H[T]
    return total / max(n, 1)


@jit
def run_updates(net, text, rule, model, log, c):
    """Run updates c.step .. c.step + c.n - 1 in place; returns the Counters after them.

    Update c.step + i trains on the sequence starting at text.starts[i], from the state
    (S, 1) zeroed when text.resets[i] and carried otherwise (rnn.engine.order chooses both).
    model.theta, the optimizer's state and model.state are updated in place; log.losses[step]
    and log.smooths[step] receive the loss and the smooth loss measured before update
    `step`, and log.best_theta and log.best_state the parameters with the lowest smooth loss
    so far and the state they started that update from.
    """
    m, K, gates, L = net.m, net.K, net.gates, text.L
    state, ids = model.state, text.ids
    S = state.shape[0]
    sc = scratch(L, m, K, gates, S)
    H = sc[0]
    grad = np.zeros_like(model.theta)
    seen = np.zeros(K, dtype=np.bool_)
    Gm = gates * m
    o1, o2 = Gm * m, Gm * m + Gm * K
    smooth, best_smooth, best_step = c.smooth, c.best_smooth, c.best_step
    for step in range(c.step, c.step + c.n):
        if text.resets[step - c.step]:
            state[:] = 0.0
        start = text.starts[step - c.step]
        X = ids[start : start + L]
        Y = ids[start + 1 : start + L + 1]
        H[0] = state[:, 0]
        loss = _forward(model.theta, X, Y, sc, m, K, gates) * rule.scale
        if rule.kind != ADAGRAD:
            grad[o1:o2] = 0.0  # every entry is updated: U's unread columns must be zero
        _backward(model.theta, grad, X, Y, sc, m, K, gates)
        state[:, 0] = H[L]
        smooth = log.decay * smooth + log.weight * loss
        log.losses[step] = loss
        log.smooths[step] = smooth
        keep = smooth < best_smooth
        if keep:
            best_smooth = smooth
            best_step = step
            log.best_state[:, 0] = H[0]
        # with keep, best_theta receives the parameters this loss was measured with
        _update(net, rule, model, grad, X, seen, keep, log.best_theta)
    return Counters(c.step + c.n, 0, smooth, best_smooth, best_step)
