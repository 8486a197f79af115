"""The speed table's implementations train the same network: each computes the package's losses."""

import sys

import numpy as np
import pytest

import rnn
from rnn.engine import kernels
from rnn.report import speed

from .training import fit


@pytest.fixture
def short(macbeth):
    """(K, ids) with only 3 sequences of 25 per epoch: a dozen updates cross 4 epochs' starts."""
    vocab, ids = macbeth
    return len(vocab), ids[:80]


def runs():
    no_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
    return [
        pytest.param(variant, marks=[no_numba] if variant == "compiled" else [])
        for variant in speed.VARIANTS
    ]


@pytest.mark.parametrize("cell", rnn.CELLS)
@pytest.mark.parametrize("variant", runs())
def test_each_implementation_computes_the_packages_losses(short, cell, variant):
    if variant == "pytorch":
        pytest.importorskip("torch")
    K, ids = short
    params = rnn.init_params(K, m=8, sigma=0.1, seed=3, cell=cell)
    before = params.flatten()
    reference = fit(params, ids, n_updates=12, sample_every=None, backend="reference")
    losses = speed.RUNS[variant](params, ids, 12, 25, 0.1)
    np.testing.assert_allclose(losses, reference.loss, rtol=1e-10, atol=0)
    assert np.array_equal(params.flatten(), before)  # the initial network is left as it was


def test_table_rows_as_documented(macbeth):
    vocab, ids = macbeth
    rows = speed.table(ids, len(vocab), work=speed.Workload(cells=("gru",), m=6, seconds=0.05))
    assert [r["variant"] for r in rows] == list(speed.VARIANTS)
    by = {r["variant"]: r for r in rows}
    assert by["textbook"]["ratio"] == 1.0 and by["textbook"]["loss_difference"] == 0.0
    for variant in ("textbook", "speedups", "compiled"):
        r = by[variant]
        assert (r["cell"], r["m"], r["K"], r["seq_length"]) == ("gru", 6, len(vocab), 25)
        assert r["updates"] >= 1 and r["seconds"] > 0 and r["note"] == ""
        assert r["updates_per_sec"] == pytest.approx(r["updates"] / r["seconds"])
        assert r["updates_per_cpu_sec"] == pytest.approx(r["updates"] / r["cpu_seconds"])
        textbook = by["textbook"]["updates_per_cpu_sec"]
        assert r["ratio"] == pytest.approx(r["updates_per_cpu_sec"] / textbook)
        assert r["loss_difference"] < 1e-9
        assert r["one_thread"] is True  # threadpoolctl is among the requirements
        assert 0 < r["cpu_seconds"] <= 1.5 * r["seconds"]  # one thread, give or take the clock
    html = speed.html(rows)
    assert html.count("<tr>") == 1 + len(rows) and "one thread" in html
    # a busy machine is named as such
    busy = [dict(r, cpu_seconds=0.5 * r["seconds"]) for r in rows]
    assert "The machine was busy: this process had the processor for 50%" in speed.html(busy)
    idle = [dict(r, cpu_seconds=r["seconds"]) for r in rows]
    assert "busy" not in speed.html(idle)


def test_without_torch_the_pytorch_row_says_what_it_needs(monkeypatch, macbeth):
    monkeypatch.setitem(sys.modules, "torch", None)
    vocab, ids = macbeth
    work = speed.Workload(cells=("vanilla",), m=4, seconds=0.02)
    rows = speed.table(ids, work=work, variants=("textbook", "pytorch"))
    assert [r["variant"] for r in rows] == ["textbook", "pytorch"]
    assert rows[0]["K"] == int(ids.max()) + 1
    torch_row = rows[1]
    assert torch_row["updates_per_sec"] is None and torch_row["ratio"] is None
    assert torch_row["updates_per_cpu_sec"] is None
    assert "pip install '.[torch]'" in torch_row["note"]
    assert "needs the optional extra" in speed.html(rows)


def test_one_thread_is_restored_afterwards():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
    with speed.one_thread() as limited:
        assert limited
        assert all(p["num_threads"] == 1 for p in threadpoolctl.threadpool_info())
    assert [p["num_threads"] for p in threadpoolctl.threadpool_info()] == before


def test_bad_arguments_are_named(macbeth):
    _, ids = macbeth
    with pytest.raises(ValueError, match="unknown variant 'jax'"):
        speed.table(ids, variants=("jax",))
    with pytest.raises(rnn.ConfigError, match="parameter cell"):
        speed.table(ids, work=speed.Workload(cells=("rnn",)), variants=("textbook",))
    with pytest.raises(ValueError, match="seq_length=25 needs more"):
        speed.table(ids[:10])
    with pytest.raises(ValueError, match=r"must lie in \[0, 5\)"):
        speed.table(ids, K=5)
