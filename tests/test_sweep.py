"""A real sweep on a LocalCluster: four tiny points, one failing on purpose."""

import json
from pathlib import Path

import pytest
import yaml

from rnn.errors import ConfigError, RNNError
from rnn.sweep import comparison, execute, grid

pytestmark = pytest.mark.slow
CORPUS = Path(__file__).parent / "data" / "macbeth-act1.txt"


def write_spec(tmp_path, grid, fixed=None):
    spec = {
        "name": "tiny",
        "data": str(CORPUS),
        "fixed": fixed
        or {
            "n_updates": 200,
            "sample_every": 100,
            "sample_length": 20,
            "passage_length": 50,
            "eval_every": 100,
            "compare_length": 20,
        },
        "grid": grid,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_four_points_one_failing_then_resume(tmp_path):
    # eta = 1e6 diverges inside its run; the three others must complete regardless.
    spec = grid.load_spec(write_spec(tmp_path, {"eta": [0.05, 1e6], "m": [8, 12]}))
    sweep_dir = tmp_path / "reports" / "tiny"
    log = []
    records = execute.run_sweep(spec, sweep_dir, workers=2, log=log.append)
    status = {r["point"]: r["status"] for r in records}
    assert status == {
        "eta-0.05_m-8": "done",
        "eta-0.05_m-12": "done",
        "eta-1000000.0_m-8": "failed",
        "eta-1000000.0_m-12": "failed",
    }
    failed = [r for r in records if r["status"] == "failed"]
    assert all("training diverged" in r["error"] and "eta" in r["error"] for r in failed)
    assert len([line for line in log if line.endswith("to go)")]) == 4  # one per finished point
    # and progress from inside the points, sent by their workers
    assert any(line.startswith("eta-0.05_m-8: update 200 of 200: loss ") for line in log)
    for name in ("eta-0.05_m-8", "eta-0.05_m-12"):
        assert (sweep_dir / "points" / name / "report.html").exists()

    rows = comparison.table(sweep_dir)
    assert len(rows) == 4
    assert [r["status"] for r in rows][:2] == ["done", "done"] and rows[-1]["status"] == "failed"
    assert rows[0]["val_bits_per_char"] <= rows[1]["val_bits_per_char"]

    page = comparison.render_report(sweep_dir)
    html = page.read_text()
    for name in ("eta-0.05_m-8", "eta-0.05_m-12"):  # each point links its own report
        assert f'<a href="points/{name}/report.html">{name}</a>' in html
    failed = '<tr><td class="rnn-point">eta-'
    assert html.count(failed) == 2 and f"{failed}1000000.0_m-8</td>" in html
    assert "data:image/png;base64," in html
    assert "training diverged" in html
    assert "n_updates\u00a0=\u00a0200" in html and "macbeth-act1.txt" in html  # fixed, corpus

    # Re-running: the two finished points are skipped, only the failed ones run again.
    log.clear()
    records = execute.run_sweep(spec, sweep_dir, workers=2, log=log.append)
    assert log[0] == "sweep tiny: 4 points, 2 already done, 2 to run"
    assert sorted(r["status"] for r in records) == [
        "done (earlier)",
        "done (earlier)",
        "failed",
        "failed",
    ]
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert summary["points"][0]["status"] == "done (earlier)"

    # A changed fixed parameter (or corpus) is another run: nothing is skipped.
    spec["fixed"]["sample_length"] = 25
    spec["grid"] = {"eta": [0.05], "m": [8]}
    log.clear()
    records = execute.run_sweep(spec, sweep_dir, workers=1, log=log.append)
    assert log[0] == "sweep tiny: 1 points, 0 already done, 1 to run"
    assert records[0]["status"] == "done"


def test_a_misspelt_parameter_stops_the_sweep_before_it_starts(tmp_path):
    spec = grid.load_spec(write_spec(tmp_path, {"etaa": [0.1]}))
    with pytest.raises(ConfigError, match="unknown parameter 'etaa'"):
        execute.run_sweep(spec, tmp_path / "out", workers=1, log=lambda s: None)


def test_bad_sweep_files(tmp_path):
    with pytest.raises(RNNError, match="no such sweep file"):
        grid.load_spec(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {eta: 0.1}\n")
    with pytest.raises(RNNError, match="grid entry 'eta' must be a non-empty list"):
        grid.load_spec(bad)
