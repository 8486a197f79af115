"""A real sweep on a LocalCluster: four tiny points, one failing on purpose."""

import json
from pathlib import Path

import pytest
import yaml

from rnn import sweep
from rnn.errors import ConfigError, RNNError

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
    # m = -1 is refused by the run itself; the three others must complete regardless.
    spec = sweep.load_spec(write_spec(tmp_path, {"eta": [0.05, 0.1], "m": [8, -1]}))
    sweep_dir = tmp_path / "reports" / "tiny"
    log = []
    records = sweep.run_sweep(spec, sweep_dir, workers=2, log=log.append)
    status = {r["point"]: r["status"] for r in records}
    assert status == {
        "eta=0.05,m=8": "done",
        "eta=0.05,m=-1": "failed",
        "eta=0.1,m=8": "done",
        "eta=0.1,m=-1": "failed",
    }
    failed = [r for r in records if r["status"] == "failed"]
    assert all("parameter m must be >= 1, got -1" in r["error"] for r in failed)
    assert any("done 1" in line for line in log)
    for name in ("eta=0.05,m=8", "eta=0.1,m=8"):
        assert (sweep_dir / "points" / name / "report.html").exists()

    rows = sweep.table(sweep_dir)
    assert len(rows) == 4
    assert [r["status"] for r in rows][:2] == ["done", "done"] and rows[-1]["status"] == "failed"
    assert rows[0]["val_bits_per_char"] <= rows[1]["val_bits_per_char"]

    page = sweep.render_report(sweep_dir)
    html = page.read_text()
    assert html.count("<tr><td>eta=") == 4
    assert "data:image/png;base64," in html
    assert "parameter m must be &gt;= 1, got -1" in html

    # Re-running: the two finished points are skipped, only the failed ones run again.
    log.clear()
    records = sweep.run_sweep(spec, sweep_dir, workers=2, log=log.append)
    assert log[0] == "sweep tiny: 4 points, 2 already done, 2 to run"
    assert sorted(r["status"] for r in records) == [
        "done (earlier)",
        "done (earlier)",
        "failed",
        "failed",
    ]
    assert json.loads((sweep_dir / "status.json").read_text())[0]["status"] == "done (earlier)"


def test_a_misspelt_parameter_stops_the_sweep_before_it_starts(tmp_path):
    spec = sweep.load_spec(write_spec(tmp_path, {"etaa": [0.1]}))
    with pytest.raises(ConfigError, match="unknown parameter 'etaa'"):
        sweep.run_sweep(spec, tmp_path / "out", workers=1, log=lambda s: None)


def test_bad_sweep_files(tmp_path):
    with pytest.raises(RNNError, match="no such sweep file"):
        sweep.load_spec(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {eta: 0.1}\n")
    with pytest.raises(RNNError, match="grid entry 'eta' must be a non-empty list"):
        sweep.load_spec(bad)
