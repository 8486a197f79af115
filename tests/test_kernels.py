"""The compiled path (rnn.engine.kernels) against the reference (rnn.engine.model), cell by cell."""

import numpy as np
import pytest

import rnn
from rnn.engine import kernels
from rnn.engine.cells import GATES
from rnn.engine.kernels import blocks
from rnn.engine.model import CELLS

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("seed", [4, 5])
def test_compiled_bptt_matches_reference(small_problem, cell, seed):
    params, X, Y, state0 = small_problem(K=11, m=7, T=15, seed=seed, sigma=0.5, cell=cell)
    loss, grads, state = rnn.loss_and_grads(params, X, Y, state0)
    loss_f, grad_f, state_f = kernels.loss_and_grads_flat(
        params.flatten(), X, Y, state0, params.m, params.K, GATES[cell]
    )
    assert loss_f == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(grad_f, grads.flatten(), rtol=0, atol=1e-13)
    assert state_f.shape == state.shape == (params.state_size, 1)
    np.testing.assert_allclose(state_f, state, rtol=0, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint32])
def test_compiled_paths_take_small_integer_ids(small_problem, dtype):
    params, X, Y, state0 = small_problem(K=11, m=7, T=15, seed=1, cell="gru")
    args = params.flatten(), X, Y, state0, params.m, params.K, 3
    loss = kernels.loss_and_grads_flat(*args)[0]
    small = kernels.loss_and_grads_flat(args[0], X.astype(dtype), Y.astype(dtype), *args[3:])[0]
    assert small == loss
    ids = np.concatenate([X, Y])
    mean = kernels.mean_loss_flat(args[0], ids, state0, params.m, params.K, 3)
    assert kernels.mean_loss_flat(args[0], ids.astype(dtype), *args[3:]) == mean


def test_compiled_exp_tanh_and_sigmoid_agree_with_numpy():
    x = np.concatenate([np.linspace(-700, 0, 20001), -np.logspace(-20, 2.5, 10001)])
    q, bits = np.empty_like(x), np.empty(len(x), dtype=np.int64)
    y = x.copy()
    total = blocks.exp_shifted(y, q, bits, bits.view(np.float64))
    ref = np.exp(x - x.max())
    assert np.max(np.abs(y - ref) / ref) < 4e-16
    assert total == pytest.approx(ref.sum(), rel=1e-14)
    for a in [
        np.linspace(-30, 30, 40001),
        np.logspace(-20, 1, 10001),
        -np.logspace(-20, 3, 10001),
        np.array([0.0, 400.0, -400.0, 1e-300]),
    ]:
        t = a.copy()
        q, bits = np.empty(2 * len(a)), np.empty(len(a), dtype=np.int64)
        blocks.tanh_(t, q, bits, bits.view(np.float64))
        ref = np.tanh(a)
        assert np.max(np.abs(t - ref) / np.maximum(np.abs(ref), 1e-300)) < 6e-16
        s = a.copy()
        blocks.sigmoid_(s, q, bits, bits.view(np.float64))
        np.testing.assert_allclose(
            s, rnn.engine.cells.sigmoid(a), rtol=0, atol=4.5e-16
        )  # 2 ulp of 1
