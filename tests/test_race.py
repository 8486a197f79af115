"""The race (rnn.race.contest and rnn.race.result): both sides at a tiny budget on a small
corpus, the record and the page, bad inputs refused in one line, Ctrl-C, and the PyTorch
side's validation."""

import dataclasses
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnn.cli import make
from rnn.cli.commands import main
from rnn.race import contest, result

ROOT = Path(__file__).resolve().parent.parent
MACBETH = Path(__file__).parent / "data" / "macbeth-act1.txt"
HAS_TORCH = importlib.util.find_spec("torch") is not None
BUDGET = 2.0
TINY = """\
cell: lstm
assignment: adam
m: 16
batch_size: 4
seq_length: 25
n_updates: 100000
eval_every: 50
"""


def tiny_config(folder: Path, name="tiny.yaml", extra="") -> Path:
    path = folder / name
    path.write_text(TINY + extra, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def raced(tmp_path_factory):
    """One race through the command line: (exit status, stdout, stderr, OUT, config)."""
    folder = tmp_path_factory.mktemp("race")
    config = tiny_config(folder, "<i>cfg&.yaml")  # markup in a name the page shows
    out = folder / "out"
    args = ["race", f"--data={MACBETH}", f"--out={out}", f"--config={config}"]
    cap = subprocess.run(
        [sys.executable, "-m", "rnn", *args, f"--budget={BUDGET}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    return cap.returncode, cap.stdout, cap.stderr, out, config


def test_the_race_runs_both_sides_and_records_their_curves(raced):
    status, stdout, stderr, out, _ = raced
    assert status == 0, stderr
    rec = json.loads((out / "race.json").read_text(encoding="utf-8"))
    assert set(rec["sides"]) == ({"rnn", "torch"} if HAS_TORCH else {"rnn"})
    K, n = rec["corpus"]["K"], rec["corpus"]["characters"]
    assert rec["corpus"]["val_characters"] == round(0.05 * n)  # the package's split, 5%
    per_update = {"rnn": 4 * 25, "torch": 50 * 50}
    for side, s in rec["sides"].items():
        pts = np.array(s["points"])
        assert len(pts) >= 3
        assert tuple(pts[0, :3]) == (0, 0, 0)
        assert abs(pts[0, 3] - math.log2(K)) < 0.3  # an untrained model guesses about evenly
        assert (np.diff(pts[:, 0]) > 0).all() and (np.diff(pts[:, 1]) >= 0).all()
        assert pts[-1, 3] < pts[0, 3] - 0.3  # it learned
        assert list(pts[:, 2]) == list(pts[:, 1] * per_update[side])
        assert s["characters"] == s["updates"] * per_update[side] == pts[-1, 2]
        # the budget is seconds of training; validation is timed apart
        assert BUDGET <= s["train_seconds"] < BUDGET + 1.5
        assert pts[-1, 0] == pytest.approx(s["train_seconds"])
        assert s["eval_seconds"] > 0
        assert s["wall_seconds"] >= s["train_seconds"] + 0.9 * s["eval_seconds"]
        assert s["best_bits_per_char"] == pts[:, 3].min()
        assert s["last_bits_per_char"] == pts[-1, 3]
        assert s["chars_per_second"] == pytest.approx(s["characters"] / s["train_seconds"])
    assert rec["sides"]["rnn"]["configuration"]["batch_size"] == 4
    assert rec["sides"]["rnn"]["stopped"] == "budget"
    if HAS_TORCH:
        assert rec["torch_missing"] is None
    else:
        assert "make torch" in rec["torch_missing"]


def test_the_terminal_shows_both_curves_and_the_figures_side_by_side(raced):
    status, stdout, _, out, _ = raced
    assert status == 0
    assert "validation bits per character against seconds of training" in stdout
    assert "best validation bits/char" in stdout and "characters/s of training" in stdout
    header = "this package  PyTorch" if HAS_TORCH else "this package"
    assert header in stdout
    assert f"wrote {out / 'race.json'} and {out / 'race.html'}" in stdout


def test_the_page_shows_the_figure_table_and_configurations_escaped(raced):
    status, _, _, out, config = raced
    page = (out / "race.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "data:image/png;base64," in page
    assert "&lt;i&gt;cfg&amp;.yaml" in page and "<i>cfg" not in page
    assert "Table 1." in page and "Table 2." in page
    assert ("one-hot characters" in page) if HAS_TORCH else ("make torch" in page)
    assert "The machine" in page and "seq_length" in page
    assert not list(out.glob(".rnn-*"))  # no temporary file left behind


def test_without_torch_the_package_side_runs_and_the_page_says_what_is_missing(tmp_path):
    p = contest.plan(MACBETH, tmp_path / "out", tiny_config(tmp_path), 1.0)
    p = dataclasses.replace(p, torch=False, cores=())  # as where PyTorch is not installed
    lines = []
    rec = contest.run(p, log=lines.append)
    assert set(rec["sides"]) == {"rnn"}
    assert rec["torch_missing"] == contest.TORCH_MISSING
    page = result.page(rec)
    assert "make torch" in page and "PyTorch</th>" not in page
    assert contest.TORCH_MISSING in result.summary(rec)
    assert any(line.startswith("this package: started") for line in lines)


def test_the_package_side_stops_at_n_updates_before_the_budget(tmp_path):
    config = tiny_config(tmp_path, extra="")
    config.write_text(TINY.replace("n_updates: 100000", "n_updates: 150"), encoding="utf-8")
    p = dataclasses.replace(contest.plan(MACBETH, tmp_path, config, 60), torch=False, cores=())
    started = time.perf_counter()
    s = contest.run(p, log=lambda line: None)["sides"]["rnn"]
    assert time.perf_counter() - started < 50
    assert s["stopped"] == "n_updates" and s["updates"] == 150
    assert s["points"][0][:2] == [0, 0] and s["points"][-1][1:3] == [150, 150 * 4 * 25]
    assert s["points"][-1][0] == pytest.approx(s["train_seconds"]) and s["train_seconds"] < 60


@pytest.mark.parametrize(
    "budget", ["abc", "0", "-5", "inf", "nan", "", "1e9"], ids=lambda b: repr(b)
)
def test_a_bad_budget_is_one_line_before_anything_runs(tmp_path, capsys, budget):
    out = tmp_path / "out"
    args = ["race", f"--data={MACBETH}", f"--out={out}", f"--config={tiny_config(tmp_path)}"]
    assert main([*args, f"--budget={budget}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: BUDGET must be a number of seconds")
    assert not out.exists()


@pytest.mark.parametrize(
    "text, says",
    [
        ("m: -3\n", "parameter m must be >= 1, got -3"),
        ("n_update: 3\n", "unknown parameter 'n_update'"),
        ("val_fraction: 0.1\n", "the race validates both sides on the corpus's last 5%"),
        ("eval_every: 0\n", "eval_every"),
        ("m: [1\n", "not valid YAML"),
        ("data_path: x.txt\n", "data_path"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_file(tmp_path, capsys, text, says):
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    args = ["race", f"--data={MACBETH}", f"--out={out}", f"--config={config}", "--budget=5"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(config) in err and says in err, err
    assert not out.exists()


def test_a_missing_config_or_corpus_is_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    base = ["race", f"--out={out}", "--budget=5"]
    assert main([*base, f"--data={MACBETH}", f"--config={tmp_path / 'none.yaml'}"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.yaml'}: no such parameters file\n"
    config = tiny_config(tmp_path)
    assert main([*base, f"--data={tmp_path / 'none.txt'}", f"--config={config}"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.txt'}: no such file\n"
    if HAS_TORCH:  # too short for char-rnn's 50 streams of 50 characters
        short = tmp_path / "short.txt"
        short.write_text(MACBETH.read_text(encoding="utf-8")[:2000], encoding="utf-8")
        assert main([*base, f"--data={short}", f"--config={config}"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(short) in err
        assert "PyTorch's side reads 50 streams of 50 characters" in err
    assert not out.exists()


def test_make_passes_config_and_budget_as_typed(monkeypatch):
    monkeypatch.setenv("RNN_DATA", "data/shakespeare.txt")
    monkeypatch.setenv("RNN_OUT", "reports")
    monkeypatch.setenv("RNN_OUT_ORIGIN", "file")
    monkeypatch.setenv("RNN_CONFIG", "my $dir/x.yaml")
    monkeypatch.setenv("RNN_BUDGET", "60")
    monkeypatch.setenv("RNN_PARAMS", "-p m 12")
    assert make.arguments("race", set()) == [
        "race",
        "--data=data/shakespeare.txt",
        "--out=reports/race",
        "--config=my $dir/x.yaml",
        "--budget=60",
    ]
    report = make.arguments("report", set())
    assert report[-5:] == ["-f", "my $dir/x.yaml", "-p", "m", "12"]  # PARAMS over CONFIG
    monkeypatch.setenv("RNN_CONFIG", "")
    assert "--config=configs/ten-minutes.yaml" in make.arguments("race", set())
    assert "-f" not in make.arguments("report", set())


def test_the_shipped_configuration_and_sweep_are_valid():
    from rnn.report import execution
    from rnn.sweep import grid

    cfg, _ = contest.load_config(ROOT / "configs" / "ten-minutes.yaml")
    assert cfg.val_fraction == contest.VAL_FRACTION and cfg.eval_every
    assert cfg.lr_anneal == 0.5 and cfg.time_budget == contest.DEFAULT_BUDGET
    for name in ("ten-minutes.yaml", "ten-minutes-anneal.yaml", "ten-minutes-schedule.yaml"):
        spec = grid.load_spec(ROOT / "sweeps" / name)
        assert len(grid.expand(spec)) > 1
        for point in grid.expand(spec):  # every point a configuration the report takes
            cfg, _ = execution.effective_parameters(execution.NOTEBOOK, point)
            assert cfg.eval_every and cfg.val_fraction == contest.VAL_FRACTION


def test_ctrl_c_stops_both_sides_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "rnn", "race", f"--data={MACBETH}", f"--out={out}"]
    cmd += [f"--config={tiny_config(tmp_path)}", "--budget=60"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        start_new_session=True,
    )  # fmt: skip
    try:
        for line in proc.stdout:  # both sides are running once the first has started
            if "started" in line:
                break
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert err == "interrupted; both sides were stopped and nothing was written\n"
    assert not (out / "race.json").exists() and not (out / "race.html").exists()


def test_the_summary_table_reads_each_curve_at_even_seconds():
    def side(points):
        return {
            "points": points,
            "updates": points[-1][1],
            "characters": points[-1][2],
            "train_seconds": points[-1][0],
            "eval_seconds": 1.0,
            "epochs": 0.5,
        }

    rec = {"budget": 100.0, "torch_missing": None}
    rec["sides"] = {
        "rnn": contest.side_record(
            side([[0, 0, 0, 6.0], [35, 10, 100, 3.0], [100.4, 20, 200, 2.5]])
        ),
        "torch": contest.side_record(side([[0, 0, 0, 6.1], [50, 1, 10, 4.0], [100.2, 2, 20, 4.2]])),
    }
    rows = result.curve_rows(rec)
    assert rows[0] == ["0", "6.000", "6.100"]
    assert rows[3] == ["30", "6.000", "6.100"] and rows[4] == ["40", "3.000", "6.100"]
    assert rows[5] == ["50", "3.000", "4.000"]
    assert rows[-1] == ["100 (end)", "2.500", "4.200"]  # the last points, just past the budget
    finals = dict((r[0], r[1:]) for r in result.final_rows(rec))
    assert finals["best validation bits/char"] == ["2.500", "4.000"]
    assert finals["last validation bits/char"] == ["2.500", "4.200"]
    assert "note: this package's curve has 3 points" in result.summary(rec)


def test_the_torch_side_reads_validation_as_one_stream_whatever_the_chunks(monkeypatch):
    torch = pytest.importorskip("torch")
    from rnn.race import torch_side

    K, rng = 11, np.random.default_rng(0)
    cfg = torch_side.CharRNN(m=8)
    torch.manual_seed(0)
    net = torch_side.Net(K, cfg)
    ids = rng.integers(0, K, 300)
    state = tuple(0.3 * torch.randn(cfg.layers, 1, cfg.m) for _ in range(2))
    whole = torch_side.mean_loss(net, ids, state)
    monkeypatch.setattr(torch_side, "EVAL_CHUNK", 7)
    assert torch_side.mean_loss(net, ids, state) == pytest.approx(whole, rel=1e-6)
    with torch.no_grad():  # the same from the definition: -mean ln p(y_t | x_<=t)
        logits, _ = net(torch.as_tensor(ids[:-1])[:, None], state)
        logp = torch.log_softmax(logits[:, 0].double(), 1)
        direct = -logp[np.arange(299), ids[1:]].mean().item()
    assert whole == pytest.approx(direct, rel=1e-6)
    assert net.lstm.bias_ih_l0[cfg.m : 2 * cfg.m].min().item() == 1.0  # char-rnn's forget bias


def test_a_side_killed_before_its_result_fails_the_race(tmp_path):
    p = contest.plan(MACBETH, tmp_path / "out", tiny_config(tmp_path), 30)
    running = contest._Race(p, log=lambda line: None)
    try:
        running.start("rnn", None)
        running.procs["rnn"].kill()  # as the out-of-memory killer would
        with pytest.raises(contest.SideLost, match=r"this package.s side stopped without a result"):
            running.wait(("rnn",))
    finally:
        running.stop()
    assert not running.procs["rnn"].is_alive()


def test_make_race_and_report_take_config_and_budget_through_make_as_typed():
    from tests.test_trust import make_arguments

    config = "my $(HOME) `x`.yaml"
    assert make_arguments("race", f"CONFIG={config}", "BUDGET=1e2") == [
        "race",
        "--data=data/shakespeare.txt",
        "--out=reports/race",
        f"--config={config}",
        "--budget=1e2",
    ]
    assert make_arguments("race")[-2:] == ["--config=configs/ten-minutes.yaml", "--budget=600"]
    report = make_arguments("report", f"CONFIG={config}", "OUT=r", "PARAMS=-p m 8")
    assert report == ["report", "--data=data/shakespeare.txt", "--out=r", "-f", config] + [
        "-p",
        "m",
        "8",
    ]  # PARAMS after (and so over) CONFIG
