"""The bonus report (rnn.report.bonus, notebooks/bonus.ipynb): its parameters, what it computes from
finished runs, and the whole build at tiny sizes."""

import html as html_lib
import json
import re
import shutil
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest

import rnn
from rnn.cli.commands import main as cli
from rnn.errors import RNNError
from rnn.report import bonus, execution, printing, speed

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "bonus.ipynb"
TINY = dict(
    m=8,
    seq_length=10,
    order_updates=120,
    n_chunks=6,
    batch_sizes="1, 2, 4",
    batch_budget=96,
    n_evals=3,
    measure_length=120,
    ngram_order=3,
    speed_seconds=0.05,
)


def test_the_notebooks_parameters_cell_is_generated_from_bonus_config():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    assert "".join(cell["source"]) == bonus.parameters_source()
    defaults = execution.notebook_defaults(NOTEBOOK)
    assert {k: v for k, v in defaults.items() if k not in ("data_path", "out_dir")} == asdict(
        bonus.BonusConfig()
    )


@pytest.mark.parametrize(
    "values, message",
    [
        ({"batch_sizes": "1, 0"}, "batch_sizes must be integers from 1 to 4,096"),
        ({"batch_sizes": "1, nan"}, "batch_sizes must be integers from 1 to 4,096"),
        ({"batch_sizes": "1.5, 4"}, "batch_sizes must be integers from 1 to 4,096"),
        ({"batch_sizes": "1, 5000", "batch_budget": 10_000}, "integers from 1 to 4,096"),
        ({"batch_sizes": "1, x"}, "batch_sizes must be numbers separated by commas"),
        ({"temperatures": "0.5, 1"}, "temperatures must be three numbers"),
        ({"top_ps": "0.5, 0.9, 1.5"}, "top_ps must be <= 1.0"),
        ({"m": 0}, "parameter m must be >= 1"),
        ({"batch_order": "chunks", "n_chunks": 8}, "n_chunks must be >= the largest batch"),
        ({"epochs": 3}, "unknown parameter 'epochs'"),
    ],
)
def test_bad_parameters_are_refused_in_one_line(values, message):
    with pytest.raises(RNNError, match=message):
        bonus.bonus_config(values)


def test_the_variants_share_the_budget_and_the_held_out_text():
    bc = bonus.bonus_config({"order_updates": 900, "batch_budget": 640, "batch_sizes": "64, 1, 4"})
    v = bc.variants()
    assert list(v) == [
        "order-sequential",
        "order-chunks",
        "order-random",
        "batch-1",
        "batch-4",
        "batch-64",
    ]
    assert [c.n_updates for c in v.values()] == [900, 900, 900, 640, 160, 10]
    assert {c.val_fraction for c in v.values()} == {bc.val_fraction}
    assert [c.batch_size * c.n_updates for n, c in v.items() if n.startswith("batch")] == [640] * 3
    assert {f.name for f in fields(rnn.Config)} >= {"order", "n_chunks", "batch_size"}


def _variant(name, steps, bits, seconds, B=1):
    cfg = rnn.Config(n_updates=int(steps[-1]), batch_size=B, analysis=False)
    return bonus.Variant(name, cfg, np.array(steps), np.array(bits), seconds, None, None, "")


def test_which_converges_faster_is_read_where_every_run_has_reached():
    a = _variant("a", [0, 100, 200], [6.0, 3.0, 2.5], seconds=1.0)
    b = _variant("b", [0, 50, 100], [6.0, 2.0, 1.9], seconds=10.0, B=4)
    name, x, at = bonus.faster({"a": a, "b": b}, "updates")
    assert (name, x) == ("b", 100) and at == {"a": 3.0, "b": 1.9}
    name, x, at = bonus.faster({"a": a, "b": b}, "seconds")  # a reaches 2.5 in 1 s; b 6 -> 2
    assert (name, x) == ("a", 1.0) and at["b"] == pytest.approx(6.0 - 4.0 * 1.0 / 5.0)
    sentence = bonus.faster_sentence({"a": a, "b": b}, "seconds")
    assert sentence.startswith("Per second, a converges fastest: at 1.0 seconds")
    assert b.chars_per_sec == pytest.approx(100 / 10.0 * 4 * 25)


def test_pdf_prints_the_bonus_report_when_that_is_what_out_holds(tmp_path, monkeypatch, capsys):
    (tmp_path / "bonus.html").write_text("<html><head></head><body>bonus</body></html>")
    monkeypatch.setattr(printing.shutil, "which", lambda name: None)
    assert cli(["pdf", "--out", str(tmp_path)]) == 2  # it tried: no Chromium
    assert "apt-get install chromium" in capsys.readouterr().err


@pytest.mark.slow
def test_the_bonus_report_renders_at_tiny_sizes_from_runs_it_trained(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    shutil.copy(ROOT / "tests" / "data" / "macbeth-act1.txt", corpus)
    out = tmp_path / "out"
    lines = []
    html = bonus.build(corpus, out, TINY, progress=False, log=lines.append)
    assert html == out / "bonus.html" and html.exists()
    assert "<title>Bonus: training order, batches, sampling and speed</title>" in html.read_text()
    assert sum("trained in this build" in line for line in lines) == 6
    text = re.sub(r"<[^>]+>", " ", html.read_text(encoding="utf-8"))
    for heading in ("1. Training order", "2. Batches", "3. Temperature", "4. Speed"):
        assert heading in text
    variants = bonus.load_variants(out, bonus.bonus_config(TINY))
    orders = {n.removeprefix("order-"): v for n, v in variants.items() if n.startswith("order")}
    best, x, at = bonus.faster(orders, "updates")
    assert f"Per update, {best} converges fastest: at {x:,.0f} updates" in text
    assert f"{at[best]:.3f}" in text
    assert "held-out text" in text and "distinct 4-grams" in text
    # part 4: measured by the build (every cell, every implementation), shown by the notebook
    rows = json.loads((out / bonus.SPEED).read_text(encoding="utf-8"))
    assert {(r["cell"], r["variant"]) for r in rows} == {
        (cell, variant) for cell in rnn.CELLS for variant in speed.VARIANTS
    }
    measured = [r for r in rows if r["updates_per_sec"]]
    assert {r["variant"] for r in measured} >= {"textbook", "speedups", "compiled"}
    for r in measured:
        assert html_lib.escape(r["label"]) in html.read_text(encoding="utf-8")
    nb = json.loads((out / "bonus.ipynb").read_text(encoding="utf-8"))
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    # It shows only the runs its parameters name: another m is refused, naming the difference
    with pytest.raises(RNNError, match="a run of other parameters .m = 8 there, 9 here"):
        bonus.load_variants(out, bonus.bonus_config(TINY | {"m": 9}))
    # The notebook only reads: a second build trains nothing and leaves the runs as they were.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.npz")}
    lines.clear()
    bonus.build(corpus, out, TINY, progress=False, log=lines.append)
    assert sum("rendered from the finished run" in line for line in lines) == 6
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.npz")} == stamps
