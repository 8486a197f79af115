import numpy as np
import pytest

import rnn
from rnn.engine.sample import next_distribution


def argmax_path(params, h, x, n):
    out = []
    for _ in range(n):
        h = np.tanh(params.W @ h + params.U[:, [x]] + params.b)
        x = int(np.argmax(params.V @ h + params.c))
        out.append(x)
    return out


def test_sample_shape_and_range(small_problem):
    params, _, _, h0 = small_problem(K=10, m=6)
    ids = rnn.sample(params, h0, 3, 50, np.random.default_rng(0))
    assert ids.shape == (50,) and ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < 10


@pytest.mark.parametrize("temperature", [0.0, 1e-8])
def test_cold_temperature_follows_the_argmax(small_problem, temperature):
    params, _, _, h0 = small_problem(K=10, m=6, sigma=0.5)
    ids = rnn.sample(params, h0, 2, 40, np.random.default_rng(1), rnn.Sampling(temperature))
    assert list(ids) == argmax_path(params, h0, 2, 40)


def test_top_p_one_is_plain_sampling(small_problem):
    params, _, _, h0 = small_problem(K=10, m=6, sigma=0.5)
    a = rnn.sample(params, h0, 2, 200, np.random.default_rng(5))
    b = rnn.sample(params, h0, 2, 200, np.random.default_rng(5), rnn.Sampling(top_p=1.0))
    np.testing.assert_array_equal(a, b)


def test_small_top_p_keeps_only_the_nucleus():
    logp = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    p = next_distribution(logp, 1.0, 0.7)
    np.testing.assert_allclose(p, [0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0])


def test_sampling_follows_the_model_distribution(small_problem):
    params, _, _, h0 = small_problem(K=4, m=3, sigma=1.0)
    rng = np.random.default_rng(0)
    draws = np.array([rnn.sample(params, h0, 1, 1, rng)[0] for _ in range(20000)])
    h = np.tanh(params.W @ h0 + params.U[:, [1]] + params.b)
    p = np.exp(params.V @ h + params.c)[:, 0]
    p /= p.sum()
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / 20000, p, atol=0.015)


def test_priming_warms_the_hidden_state(small_problem):
    params, _, _, _ = small_problem(K=10, m=6, sigma=0.5)
    prime = np.array([1, 4, 2, 7])
    h = np.zeros((6, 1))
    for x in prime[:-1]:
        h = np.tanh(params.W @ h + params.U[:, [x]] + params.b)
    a = rnn.sample_primed(params, prime, 30, np.random.default_rng(2))
    b = rnn.sample(params, h, 7, 30, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)


def test_mean_loss_scores_a_continuation(small_problem):
    """The notebook's mean log-probability of a sample is -mean_loss of [x0, *sample]."""
    params, X, Y, _ = small_problem(K=8, m=5)
    lp = -rnn.mean_loss(params, np.concatenate([[X[0]], Y]))
    X_shift = np.concatenate([[X[0]], Y[:-1]])
    loss, _, _ = rnn.loss_and_grads(params, X_shift, Y, np.zeros((5, 1)))
    assert lp == pytest.approx(-loss / len(Y), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(temperature=-1.0), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
    ],
)
def test_bad_sampling_settings(small_problem, kwargs, name):
    params, _, _, h0 = small_problem(K=5, m=3)
    with pytest.raises(rnn.ConfigError, match=name):
        rnn.sample(params, h0, 0, 5, np.random.default_rng(0), rnn.Sampling(**kwargs))


@pytest.mark.parametrize("cell", rnn.CELLS)
def test_every_cell_samples_from_its_whole_state(small_problem, cell):
    params, X, _, state0 = small_problem(K=10, m=6, sigma=0.5, cell=cell)
    state = rnn.warm(params, X, state0)
    assert state.shape == (params.state_size, 1)
    expected = state0
    for x in X[:-1]:
        expected, _, _ = rnn.engine.model.step_forward(params, int(x), expected)
    np.testing.assert_array_equal(state, expected)
    a = rnn.sample_primed(params, X, 30, np.random.default_rng(2), h0=state0)
    b = rnn.sample(params, state, X[-1], 30, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=rf"\({params.state_size}, 1\)"):
        rnn.sample(params, np.zeros((params.state_size + 1, 1)), 0, 5, np.random.default_rng(0))
