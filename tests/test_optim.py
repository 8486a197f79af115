"""The optimizers (rnn.engine.optim) against hand-written updates, and the compiled path's
update rules (rnn.engine.kernels) against the readable loop for every cell, optimizer, loss
and clipping."""

import copy
import math

import numpy as np
import pytest

import rnn
from rnn.engine import kernels, optim
from rnn.engine.model import CELLS
from rnn.engine.train import _run_updates_compiled, new_state, run_updates_reference

needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")


def params_and_grads(seed):
    p = rnn.init_params(K=4, m=3, sigma=0.5, seed=seed)
    rng = np.random.default_rng(seed + 100)
    grads = [p.map(lambda a: rng.standard_normal(a.shape)) for _ in range(3)]
    grads[1].U[:, 2] = 0.0  # a zero gradient: Adam and RMSProp still move these entries
    return p, grads


def test_adam_follows_its_equations_for_three_steps():
    p, grads = params_and_grads(0)
    eta, b1, b2, eps = 0.01, 0.8, 0.99, 1e-6
    opt = rnn.Adam(eta=eta, beta1=b1, beta2=b2, eps=eps)
    state = opt.init(p)
    # by hand, entry by entry on the flat vectors, from the equations in the assignment
    theta, m, v = p.flatten(), np.zeros(p.flatten().size), np.zeros(p.flatten().size)
    for t, g in enumerate(grads, start=1):
        g = g.flatten()
        for i in range(theta.size):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            mhat, vhat = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
            theta[i] -= eta * mhat / (math.sqrt(vhat) + eps)
        p, state = opt.step(p, grads[t - 1], state)
        assert state["t"] == t
        np.testing.assert_allclose(p.flatten(), theta, rtol=0, atol=1e-15)
        np.testing.assert_allclose(state["m"].flatten(), m, rtol=0, atol=1e-15)
        np.testing.assert_allclose(state["v"].flatten(), v, rtol=0, atol=1e-15)
    # the first step of Adam moves each entry by about eta against its gradient's sign
    p0, g0 = params_and_grads(0)[0], grads[0]
    p1, _ = opt.step(p0, g0, opt.init(p0))
    step = (p0.flatten() - p1.flatten()) / np.sign(g0.flatten())
    np.testing.assert_allclose(step, eta, rtol=1e-3)


def test_adam_and_rmsprop_move_entries_whose_gradient_is_zero():
    p, grads = params_and_grads(1)
    for opt in (rnn.Adam(eta=0.01), rnn.RMSProp(eta=0.01)):
        q, state = opt.step(p, grads[0], opt.init(p))
        r, state = opt.step(q, grads[1], state)  # grads[1].U[:, 2] is zero
        assert (r.U[:, 2] != q.U[:, 2]).all() == isinstance(opt, rnn.Adam)
    ada = rnn.AdaGrad(eta=0.1)
    q, state = ada.step(p, grads[0], ada.init(p))
    r, _ = ada.step(q, grads[1], state)
    np.testing.assert_array_equal(r.U[:, 2], q.U[:, 2])  # AdaGrad: g = 0 changes nothing


def test_rmsprop_follows_its_equations_for_three_steps():
    p, grads = params_and_grads(2)
    eta, gamma, eps = 0.01, 0.9, 1e-8
    opt = rnn.RMSProp(eta=eta, gamma=gamma, eps=eps)
    state = opt.init(p)
    theta, G = p.flatten(), np.zeros(p.flatten().size)
    for g in grads:
        g = g.flatten()
        for i in range(theta.size):
            G[i] = gamma * G[i] + (1 - gamma) * g[i] * g[i]
            theta[i] -= eta * g[i] / math.sqrt(G[i] + eps)
    for g in grads:
        p, state = opt.step(p, g, state)
    np.testing.assert_allclose(p.flatten(), theta, rtol=0, atol=1e-15)
    np.testing.assert_allclose(state["G"].flatten(), G, rtol=0, atol=1e-15)


def test_steps_are_pure_and_state_round_trips_through_flat_arrays():
    p, grads = params_and_grads(3)
    opt = rnn.Adam()
    state = opt.init(p)
    before = p.flatten()
    _, after = opt.step(p, grads[0], state)
    np.testing.assert_array_equal(p.flatten(), before)
    assert state["t"] == 0 and not state["m"].W.any()
    flat = optim.flat_state(after)
    assert flat["t"].dtype == np.int64 and flat["t"].tolist() == [1]
    back = optim.unflat_state(flat, p.m, p.K, p.cell)
    assert back["t"] == 1
    np.testing.assert_array_equal(back["v"].flatten(), after["v"].flatten())


def test_from_spec_names_each_optimizer_with_its_hyperparameters():
    spec = rnn.TrainSpec(optimizer="adam", eta=0.002, beta1=0.5, beta2=0.9, epsilon=1e-7)
    assert optim.from_spec(spec) == rnn.Adam(eta=0.002, beta1=0.5, beta2=0.9, eps=1e-7)
    assert optim.from_spec(spec.replace(optimizer="rmsprop", gamma=0.8)) == rnn.RMSProp(
        eta=0.002, gamma=0.8, eps=1e-7
    )
    assert optim.from_spec(spec.replace(optimizer="adagrad")) == rnn.AdaGrad(eta=0.002, eps=1e-7)


# --- the compiled path against the readable loop ------------------------------------------


@needs_numba
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("optimizer", optim.OPTIMIZERS)
@pytest.mark.parametrize("loss", ["sum", "mean"])
def test_compiled_updates_equal_the_reference(macbeth, cell, optimizer, loss):
    """Each update from the reference's own state: the same loss, parameters and optimizer
    state to rounding, for every cell x optimizer x loss, with and without clipping."""
    vocab, ids = macbeth
    K = len(vocab)
    bound = 1.0 if loss == "sum" else 0.05  # small enough to clip some entries early on
    for clip in (0.0, bound):  # 0 turns clipping off
        spec = rnn.TrainSpec(
            cell=cell, m=12, n_updates=8, seq_length=15, optimizer=optimizer, eta=0.01,
            loss=loss, init="scaled", clip=clip,
        )  # fmt: skip
        L = spec.seq_length
        s = new_state(spec.init_params(K), spec)
        clipped = False
        for step in range(spec.n_updates):
            params = rnn.Params.unflatten(s.theta, 12, K, cell)
            g = rnn.loss_and_grads(params, ids[step * L :][:L], ids[step * L + 1 :][:L], s.h, loss)
            clipped |= bool(clip) and np.abs(g[1].flatten()).max() > clip
            fast = copy.deepcopy(s)
            _run_updates_compiled(fast, 1, ids, spec, K)
            run_updates_reference(s, 1, ids, spec, K)
            assert fast.step == s.step == step + 1
            assert fast.loss[step] == pytest.approx(s.loss[step], rel=1e-12)
            assert fast.smooth_loss[step] == pytest.approx(s.smooth_loss[step], rel=1e-12)
            # Adam divides by sqrt(v): a gradient entry of rounding size (1e-17) moves theta
            # by up to eta * 1e-17 / eps = 1e-11, so the parameters agree to that.
            np.testing.assert_allclose(fast.theta, s.theta, rtol=0, atol=1e-10)
            np.testing.assert_allclose(fast.h, s.h, rtol=0, atol=1e-13)
            assert sorted(fast.opt) == sorted(s.opt) == sorted(optim.state_names(optimizer))
            for name in s.opt:
                np.testing.assert_allclose(fast.opt[name], s.opt[name], rtol=1e-9, atol=1e-15)
            assert fast.best_smooth_step == s.best_smooth_step
            np.testing.assert_allclose(fast.best_smooth_theta, s.best_smooth_theta, atol=1e-10)
        assert clipped == bool(clip)  # so the check covers clipping at work


@needs_numba
@pytest.mark.parametrize("optimizer", optim.OPTIMIZERS)
def test_compiled_training_follows_the_reference_for_200_updates(macbeth, optimizer):
    """Free-running: the compiled path and the reference loop stay together."""
    vocab, ids = macbeth
    spec = rnn.Config(assignment="adam", optimizer=optimizer, m=20, n_updates=200).train_spec()
    spec = spec.replace(sample_every=None)
    params = spec.init_params(len(vocab))
    fast = rnn.train(params, ids, spec, controls=rnn.Controls(backend="numba"))
    ref = rnn.train(params, ids, spec, controls=rnn.Controls(backend="reference"))
    assert np.max(np.abs(fast.loss - ref.loss) / ref.loss) < 1e-9
    assert np.max(np.abs(fast.params.flatten() - ref.params.flatten())) < 1e-8


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_divergence_is_found_in_the_mean_losss_units(text, optimizer):
    """The limit is DIVERGED times the mean loss's start, ln K: a bad eta stops training with
    one line, and a sound one does not come near it."""
    vocab = rnn.Vocab.from_text(text)
    ids = vocab.encode(text)
    spec = rnn.Config(assignment="adam", optimizer=optimizer, m=16, n_updates=2000).train_spec()
    spec = spec.replace(seq_length=10, sample_every=None)
    params = spec.init_params(len(vocab))
    with np.errstate(all="ignore"), pytest.raises(rnn.TrainingDiverged, match="lower eta"):
        rnn.train(params, ids, spec.replace(eta=1e6))
    result = rnn.train(params, ids, spec.replace(n_updates=300))
    assert result.smooth_loss[0] < 1.01 * math.log(len(vocab))  # per character: ln K at most
    assert result.smooth_loss[-1] < result.smooth_loss[0]


@needs_numba
@pytest.mark.parametrize("optimizer", optim.OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_in_place_update_is_scale_clip_and_step(optimizer, dtype):
    """update_in_place (the stack's path) equals scaling, clipping and the rule's pure step,
    three steps running, in the parameters' dtype."""
    opt = optim.from_spec(rnn.TrainSpec(optimizer=optimizer, eta=0.01))
    params, three = params_and_grads(0)
    params = params.map(lambda a: a.astype(dtype))
    state = opt.init(params)
    mine, my_state = params.map(np.copy), copy.deepcopy(state)
    for grads in three:
        grads = grads.map(lambda g: (40 * g).astype(dtype))  # some entries past the bound
        scaled = grads.map(lambda g: np.clip(g * dtype(0.5), -1.0, 1.0))
        params, state = opt.step(params, scaled, state)
        optim.update_in_place(opt, mine, grads.map(np.copy), my_state, 0.5, 1.0)
        tol = 1e-12 if dtype == np.float64 else 1e-5
        for name, w in params.items():
            assert getattr(mine, name).dtype == dtype
            np.testing.assert_allclose(getattr(mine, name), w, rtol=tol, atol=tol * 1e-2)
    assert my_state.get("t") == state.get("t")
