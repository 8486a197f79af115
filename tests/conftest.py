from pathlib import Path

import numpy as np
import pytest

import rnn

TEXT = (
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
)


@pytest.fixture
def text():
    return TEXT


@pytest.fixture
def vocab():
    return rnn.Vocab.from_text(TEXT)


@pytest.fixture
def ids(vocab):
    return vocab.encode(TEXT)


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT * 20, encoding="utf-8")
    return path


def _small_problem(K=12, m=5, T=10, seed=0, sigma=0.1, cell="vanilla"):
    """A random network of the given cell, sequence and state (S, 1) in float64."""
    rng = np.random.default_rng(seed)
    params = rnn.init_params(K, m, sigma, seed=seed, cell=cell)
    params.b[:] += 0.1 * rng.standard_normal(params.b.shape)  # nonzero biases exercise db, dc
    params.c[:] = 0.1 * rng.standard_normal(params.c.shape)
    X = rng.integers(0, K, T)
    Y = rng.integers(0, K, T)
    state0 = 0.1 * rng.standard_normal((params.state_size, 1))
    return params, X, Y, state0


@pytest.fixture
def small_problem():
    """small_problem(K, m, T, seed, sigma, cell) -> (params, X, Y, state0), all random."""
    return _small_problem


def _macbeth():
    text = rnn.load_text(Path(__file__).parent / "data" / "macbeth-act1.txt")
    vocab = rnn.Vocab.from_text(text)
    return vocab, vocab.encode(text)


@pytest.fixture
def macbeth():
    """(vocab, ids) of Macbeth's first act (tests/data)."""
    return _macbeth()


# A small finished run, trained once per test session by the driver (rnn.runs.driver), as `make
# report` trains: the loader, the report notebook and the explore notebook read it.
TINY_RUN = {
    "n_updates": 300,
    "m": 16,
    "sample_every": 100,
    "sample_length": 50,
    "eval_every": 100,
    "checkpoint_every": 100,
    "passage_length": 120,
    "compare_length": 80,
}


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """(folder, Run): a finished run of TINY_RUN on Macbeth's first act, and what training
    returned. Copy the folder before changing anything in it."""
    from rnn.runs import driver

    cfg = rnn.Config(**TINY_RUN)
    folder = tmp_path_factory.mktemp("finished-run")
    data = driver.prepare(cfg, Path(__file__).parent / "data" / "macbeth-act1.txt")
    return folder, driver.run(cfg, data, folder)
