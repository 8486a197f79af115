"""Our BPTT against PyTorch's autograd (the optional extra; .ci/run installs it), and what part I
says without it."""

import sys

import numpy as np
import pytest

import rnn
from rnn.engine import torchref
from rnn.report import gradients


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def without_torch(monkeypatch):
    """As if torch were not installed: `import torch` raises ImportError."""
    monkeypatch.setitem(sys.modules, "torch", None)


@pytest.mark.parametrize("cell", rnn.CELLS)
def test_autograd_agrees_with_bptt_for_each_cell(torch, macbeth, cell):
    vocab, ids = macbeth
    check = torchref.autograd_check(rnn.TrainSpec(cell=cell), ids, len(vocab))
    assert (check.cell, check.m, check.seq_length, check.loss) == (cell, 10, 25, "sum")
    assert check.available and check.torch_version == torch.__version__
    assert set(check.errors) == set("WUbVc")
    for name, error in check.errors.items():
        assert error < 1e-7, (cell, name, error)


@pytest.mark.parametrize("cell", rnn.CELLS)
@pytest.mark.parametrize("loss", ["sum", "mean"])
def test_autograd_agrees_away_from_zero_too(torch, small_problem, cell, loss):
    # Large weights, nonzero biases and a nonzero starting state: every gate saturates a little.
    params, X, Y, state0 = small_problem(K=9, m=6, T=12, sigma=0.5, cell=cell)
    check = torchref.compare(params, X, Y, state0, loss=loss)
    assert max(check.errors.values()) < 1e-7
    assert check.loss_difference < 1e-12


@pytest.mark.parametrize("cell", rnn.CELLS)
def test_the_torch_forward_computes_our_loss_and_state(torch, small_problem, cell):
    params, X, Y, state0 = small_problem(K=11, m=7, T=15, sigma=0.3, cell=cell)
    ours, grads, state = rnn.loss_and_grads(params, X, Y, state0)
    theirs, autograd, their_state = torchref.autograd_grads(params, X, Y, state0)
    assert theirs == pytest.approx(ours, rel=1e-13)
    np.testing.assert_allclose(their_state, state, rtol=0, atol=1e-13)
    mean, _, _ = torchref.autograd_grads(params, X, Y, state0, loss="mean")
    assert mean == pytest.approx(ours / len(X), rel=1e-13)
    # and the loss is the per-step terms' sum, as sequence_losses computes them
    assert theirs == pytest.approx(rnn.sequence_losses(params, X, Y, state0).sum(), rel=1e-13)


def test_the_check_catches_a_wrong_gradient(torch, small_problem):
    params, X, Y, state0 = small_problem(cell="gru")

    def broken(params, X, Y, state0, loss):
        value, grads, state = rnn.loss_and_grads(params, X, Y, state0)
        grads.W[3, 1] *= 1.001  # one entry of the recurrent gradient off by 0.1%
        return value, grads, state

    check = torchref.compare(params, X, Y, state0, grad_fn=broken)
    assert check.errors["W"] > 1e-4
    assert max(check.errors[name] for name in "UbVc") < 1e-7


@pytest.mark.parametrize("hidden", [False, True])
def test_bad_input_is_named(monkeypatch, hidden):
    if hidden:  # as if torch were not installed
        monkeypatch.setitem(sys.modules, "torch", None)
    # the loss mode and the cell are the run's TrainSpec's, refused when it is made
    with pytest.raises(rnn.ConfigError, match="parameter loss must be one of sum, mean"):
        torchref.autograd_check(rnn.TrainSpec(loss="median"), np.arange(30) % 5, 5)
    with pytest.raises(rnn.ConfigError, match="parameter cell"):
        torchref.autograd_check(rnn.TrainSpec(cell="rnn"), np.arange(30) % 5, 5)
    with pytest.raises(rnn.DataError, match="at least 2 characters, got 1"):
        torchref.autograd_check(rnn.TrainSpec(cell="gru"), [3], 5)


def test_part_one_shows_the_autograd_column(torch, macbeth):
    vocab, ids = macbeth
    params = rnn.init_params(len(vocab), m=5, cell="lstm")
    errors = rnn.gradient_check(params, ids[:25], ids[1:26], rnn.zero_state(params))
    check = torchref.autograd_check(rnn.TrainSpec(cell="lstm"), ids, len(vocab))
    html = gradients.gradcheck_html(errors, params, 25, check)
    assert f"against PyTorch autograd (m = {torchref.CHECK_M})</th>" in html
    cells = [row.split("</td>") for row in html.split("<tr>")[2:]]
    assert [row[0] for row in cells] == [f"<td>{name}" for name in "WUbVc"]
    for row, name in zip(cells, "WUbVc"):
        assert float(row[4].split(">")[-1]) == float(f"{check.errors[name]:.2e}")
    assert f"PyTorch {torch.__version__}" in html and "needs the optional extra" not in html


def test_without_torch_part_one_says_the_column_needs_the_extra(without_torch, macbeth):
    vocab, ids = macbeth
    assert torchref.torch_version() is None
    with pytest.raises(torchref.TorchMissing, match=r"pip install '\.\[torch\]'"):
        torchref.torch_module()
    check = torchref.autograd_check(rnn.TrainSpec(), ids, len(vocab))
    assert not check.available and check.errors == {}
    params = rnn.init_params(len(vocab), m=5)
    errors = rnn.gradient_check(params, ids[:25], ids[1:26], rnn.zero_state(params))
    html = gradients.gradcheck_html(errors, params, 25, check)
    assert "PyTorch autograd (m" not in html  # no column ...
    assert "needs the optional extra" in html  # ... and a sentence saying how to get it
    assert "pip install &#x27;.[torch]&#x27;" in html and "make torch" in html
    # the rest of part I is as without the comparison
    assert html.startswith(gradients.gradcheck_html(errors, params, 25))
