"""Every way in goes through the same guards: make's variables arrive as typed, memory stays
bounded, one writer per folder, the corpus read is the one recorded, one line for every
failure, and numbers that say what they are."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rnn
from rnn.cli.commands import main as cli
from rnn.report import execution, printing, seal
from rnn.report.analysis import ngram
from rnn.runs import checkpoint, guard, lock
from rnn.runs import values as param_values
from rnn.runs.data import load_corpus
from rnn.sweep import execute, grid

from .test_trust import CORPUS, ROOT, make_arguments, one_line_error

QUICK = ["-p", "n_updates", "20", "-p", "analysis", "False", "-p", "check_m", "0"]


# --- 1. what make hands on ----------------------------------------------------------------


def given(args: list[str]) -> dict:
    """The parameters the command line reads from rnn.cli.make's arguments."""
    pairs, rest = param_values.take_pairs(args)
    files = [rest[i + 1] for i, a in enumerate(rest) if a in ("-f", "--parameters_file")]
    yamls = [rest[i + 1] for i, a in enumerate(rest) if a in ("-y", "--parameters_yaml")]
    return param_values.collect(
        execution.NOTEBOOK, pairs["parameters"], pairs["parameters_raw"], files, yamls
    )


def test_make_variables_arrive_character_for_character():
    data = "/tmp/c$1 $$ $(x) back\\slash\nline.txt"
    out = "-out$1"
    params = "-p title 'Cost $5 or $HOME' -p author 1e400 -p prime 007 -p m 08 -r seed 3"
    args = make_arguments("report", f"DATA={data}", f"OUT={out}", f"PARAMS={params}")
    assert args[:3] == ["report", f"--data={data}", f"--out={out}"]
    assert given(args) == {
        "title": "Cost $5 or $HOME",
        "author": "1e400",
        "prime": "007",
        "m": 8,
        "seed": "3",
    }
    args = make_arguments("report", "PARAMS=-p title -draft -p eta -0.5")
    assert given(args) == {"title": "-draft", "eta": -0.5}
    assert make_arguments("sweep", "SWEEP=-my$1.yaml") == ["sweep", "--", "-my$1.yaml"]


@pytest.mark.parametrize(
    "variables, message",
    [
        (["OUT="], "OUT is empty"),
        (["DATA="], "DATA is empty"),
        (["PARAMS=-p title 'open"], "PARAMS: No closing quotation"),
        (["PARAMS=--bogus"], "PARAMS: unexpected '--bogus'"),
        (["PARAMS=-p title"], "PARAMS: -p needs a name and a value"),
    ],
)
def test_make_refuses_what_cannot_be_meant_in_one_line(tmp_path, variables, message):
    before = set(os.listdir(ROOT))
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "report", "DATA=own.txt", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, MAKEFLAGS=""),
    )
    err = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert done.returncode != 0 and err == [f"error: {err[0][7:]}"] and message in err[0]
    assert set(os.listdir(ROOT)) == before  # nothing written into the repository's root


@pytest.mark.slow
def test_make_report_with_dollars_everywhere(tmp_path):
    data = tmp_path / "c$1.txt"
    shutil.copy(CORPUS, data)
    out = tmp_path / "-out$HOME"
    title = "Cost $5 or $HOME"
    done = subprocess.run(
        [
            "make",
            "-s",
            "report",
            f"DATA={data}",
            f"OUT={out}",
            f"PARAMS=-p title '{title}' -p n_updates 20 -p analysis False -p check_m 0",
            "ACCEPT_FAILURE=1",  # 20 updates learn nothing: the verdict says so, accepted
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, MAKEFLAGS=""),
    )
    assert done.returncode == 0, done.stderr
    assert title in (out / "report.html").read_text(encoding="utf-8")
    assert not (tmp_path / "-out").exists() and not (tmp_path / "c.txt").exists()


def test_text_parameters_keep_what_was_typed(tmp_path):
    cfg, _ = execution.effective_parameters(
        execution.NOTEBOOK,
        param_values.collect(
            execution.NOTEBOOK, [("title", "007"), ("author", "1e400"), ("m", "8")]
        ),
    )
    assert (cfg.title, cfg.author, cfg.m) == ("007", "1e400", 8)


# --- 2. memory bounded by the corpus ------------------------------------------------------


def test_ngram_baselines_count_a_bounded_part_and_score_in_chunks(macbeth, monkeypatch):
    vocab, ids = macbeth
    train_ids, val_ids = rnn.split_train_val(ids, 0.1)

    def bits(train):
        return [b for _, b in ngram.baselines(train, val_ids, len(vocab), 4)]

    whole = bits(train_ids)
    monkeypatch.setattr(ngram, "SCORE_CHUNK", 37)  # scoring in pieces changes nothing
    assert bits(train_ids) == pytest.approx(whole)
    monkeypatch.setattr(ngram, "MAX_TRAIN", 5000)
    bounded = bits(train_ids)
    assert bounded == pytest.approx(bits(train_ids[-5000:])) and bounded != pytest.approx(whole)
    assert "last 5,000 characters" in ngram.counted(len(train_ids))
    assert ngram.counted(4000) == ""


def test_sweep_grids_are_counted_before_they_are_expanded(tmp_path):
    spec = tmp_path / "huge.yaml"
    values = list(range(1000))
    spec.write_text(json.dumps({"grid": {"seed": values, "m": values, "eta": values[1:]}}))
    t0 = time.perf_counter()
    with pytest.raises(rnn.RNNError, match=r"999,000,000 points, more than 200"):
        grid.load_spec(spec)
    assert time.perf_counter() - t0 < 1


def test_part_six_reads_a_bounded_prefix_of_the_validation_split():
    from rnn.report.analysis import surprisal

    assert surprisal.read_length(54_000, 100) == 54_000  # the default corpus: all of it
    assert surprisal.read_length(5_000_000, 100) <= surprisal.MAX_READ
    assert surprisal.read_length(5_000_000, 2000) * 4 * 2000 <= surprisal.MAX_STATE_BYTES


# --- 3. one writer per folder -------------------------------------------------------------


HOLD = """
import sys, time
from rnn.runs import lock
with lock.hold(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def held_elsewhere():
    """held_elsewhere(folder, what): another process holds folder, as a build would."""
    holders = []

    def hold(folder, what="make report into it"):
        p = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(folder), what], stdout=subprocess.PIPE, text=True
        )
        assert p.stdout.readline().strip() == "held"
        holders.append(p)
        return p

    yield hold
    for p in holders:
        p.kill()
        p.wait()


def fake_point(out: Path) -> None:
    out.mkdir(parents=True)
    for name in execute.POINT_FILES:
        (out / name).write_bytes(f"{name} of the sweep".encode())


def test_a_point_is_done_only_while_its_files_are_the_sweeps(tmp_path):
    out = tmp_path / "points" / "seed-14"
    fake_point(out)
    ident = grid.identity({"seed": 14}, "abc")
    (out / "point.json").write_text(json.dumps(ident | {"files_sha256": execute.files_sha256(out)}))
    assert execute.is_done(out, ident)
    (out / "checkpoint.npz").write_bytes(b"seed 99's run, built there by hand")
    assert not execute.is_done(out, ident)
    assert execute.point_record(out) is None  # and the comparison page does not rank it


def test_a_sweep_beside_a_build_in_one_of_its_points_stops_at_once(
    tmp_path, held_elsewhere, capsys
):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"name: s\ndata: {CORPUS}\nfixed: {{n_updates: 10, analysis: false, check_m: 0}}\n"
        f"grid: {{seed: [14, 99]}}\n"
    )
    held_elsewhere(tmp_path / "out" / "s" / "points" / "seed-99")
    code = cli(["sweep", str(spec), "--out", str(tmp_path / "out")])
    assert code == 2
    err = one_line_error(capsys)
    assert "seed-99: another run is writing there" in err and "make report into it" in err


def test_make_pdf_waits_for_no_build_and_prints_only_a_report_of_its_run(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(printing.shutil, "which", lambda name: "/bin/false")  # never reached
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("<html></html>")
    with lock.hold(out, "make report into out"):
        with pytest.raises(rnn.errors.BusyError, match="another run is writing there"):
            printing.print_pdf(out)
    with pytest.raises(rnn.RNNError, match="report.run.json is missing, so the report's run"):
        printing.print_pdf(out)  # no seal: the report's run cannot be named
    (out / "metrics.json").write_text("{}")
    (out / "checkpoint.npz").write_bytes(b"the run")
    record = {
        "build_id": "b",
        "run_finished": "2026-11-30T10:00",
        "report_sha256": seal.file_sha256(out / "report.html"),
        "metrics_sha256": seal.file_sha256(out / "metrics.json"),
        "checkpoint_sha256": seal.file_sha256(out / "checkpoint.npz"),
    }
    (out / seal.SEAL).write_text(json.dumps(record))
    assert seal.check_seal(out)["build_id"] == "b"
    (out / "checkpoint.npz").write_bytes(b"another run")
    assert cli(["pdf", "--out", str(out)]) == 2
    assert "checkpoint.npz changed since the report was built" in one_line_error(capsys)


def test_the_notebook_refuses_unknown_parameters_and_busy_folders(tmp_path, held_elsewhere):
    with pytest.raises(rnn.ConfigError, match="unknown parameter 'n_update'"):
        guard.check_injected(["import rnn", "# Parameters\nn_update = 300\nm = 5\n"])
    guard.check_injected(["# Parameters\nn_updates = 300\nout_dir = 'x'\n"])
    out = tmp_path / "held"
    held_elsewhere(out, f"make report into held {lock.build_note('b1')}")
    namespace = {"In": [], "out_dir": str(tmp_path / "staging"), "run_dir": str(out)}
    with pytest.raises(rnn.errors.BusyError, match="another run is writing there"):
        guard.notebook_start(namespace | {"build_id": ""})  # papermill by hand
    with pytest.raises(rnn.errors.BusyError):
        guard.notebook_start(namespace | {"build_id": "another"})
    guard.notebook_start(namespace | {"build_id": "b1"})  # the notebook of that very build


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, message",
    [
        (["-p", "n_update", "300"], "unknown parameter 'n_update'"),
        ([], "another run is writing there"),
    ],
)
def test_papermill_by_hand_goes_through_the_same_guards(tmp_path, held_elsewhere, extra, message):
    out = tmp_path / "out"
    held_elsewhere(out)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "papermill"),
            str(ROOT / "notebooks" / "report.ipynb"),
            str(tmp_path / "executed.ipynb"),
            "-p",
            "data_path",
            str(CORPUS),
            "-p",
            "out_dir",
            str(out if not extra else tmp_path / "free"),
            *extra,
            "--cwd",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and message in done.stderr
    assert not (out / "checkpoint.partial.npz").exists() and not (out / "metrics.json").exists()
    assert not (tmp_path / "free" / "checkpoint.partial.npz").exists()


# --- 4. the corpus read is the corpus recorded --------------------------------------------


def test_a_corpus_truncated_while_it_is_read_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "c.txt"
    path.write_text(CORPUS.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(rnn.runs.data, "CHUNK", 1000)
    real_open = open

    class Truncating:
        def __init__(self, f):
            self.f, self.reads = f, 0

        def read(self, n):
            self.reads += 1
            if self.reads == 2:
                os.truncate(path, 1500)  # another program rewrites the file mid-read
            return self.f.read(n)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(
        rnn.runs.data, "open", lambda p, mode: Truncating(real_open(p, mode)), False
    )
    with pytest.raises(rnn.DataError, match="changed while it was read"):
        load_corpus(path)
    monkeypatch.undo()
    corpus = load_corpus(path)  # whole again, the checksum is of what was encoded
    assert corpus.n_chars == 1500 and corpus.text() == path.read_text(encoding="utf-8")


def test_the_corpus_is_read_once_and_its_checksum_is_of_what_was_read(tmp_path):
    import hashlib

    path = tmp_path / "c.txt"
    path.write_bytes("\ufeffzébra ✓ and a zebra\n".encode() * 50)
    corpus = load_corpus(path)
    assert corpus.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert corpus.text() == path.read_text(encoding="utf-8").removeprefix("\ufeff")
    assert corpus.vocab.chars == "".join(sorted(set(corpus.text())))


# --- 5. one line, never a traceback -------------------------------------------------------


def test_symlink_loops_are_one_line(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert cli(["report", "--data", str(loop), "--out", str(tmp_path / "o"), *QUICK]) == 2
    assert "loop" in one_line_error(capsys)
    assert cli(["report", "--data", str(CORPUS), "--out", str(loop), *QUICK]) == 2
    assert "loop" in one_line_error(capsys)
    spec = tmp_path / "s.yaml"
    spec.write_text(f"data: {loop}\ngrid: {{seed: [1]}}\n")
    assert cli(["sweep", str(spec), "--out", str(tmp_path / "sw")]) == 2
    assert "loop" in one_line_error(capsys)


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_damaged_notebook_is_one_line(tmp_path, damage):
    nb = tmp_path / "report.ipynb"
    if damage == "truncated":
        nb.write_bytes(execution.NOTEBOOK.read_bytes()[:5000])
    with pytest.raises(rnn.RNNError, match="report.ipynb: (not a readable|the report notebook is)"):
        execution.effective_parameters(nb, {})


@pytest.mark.parametrize("name", ["checkpoint.npz", "checkpoint.partial.npz"])
def test_a_folder_in_a_checkpoints_place_is_refused_before_anything(tmp_path, capsys, name):
    out = tmp_path / "out"
    (out / name).mkdir(parents=True)
    (out / "report.html").write_text("the previous report")
    assert cli(["report", "--data", str(CORPUS), "--out", str(out), *QUICK]) == 2
    assert f"{name}: is not a file" in one_line_error(capsys)
    assert (out / "report.html").read_text() == "the previous report"


def test_a_full_disk_while_saving_a_checkpoint_is_one_line(tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.np, "savez", full)
    args = ["train", "--data", str(CORPUS), "--out", str(tmp_path / "o"), "--quiet"]
    assert cli([*args, "--n_updates", "20"]) == 2
    err = one_line_error(capsys)
    assert "could not save the checkpoint" in err and "No space left on device" in err


def test_a_lock_that_is_a_fifo_is_one_line(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / ".lock")
    with pytest.raises(rnn.RNNError, match=r"\.lock: is not a regular file"):
        with lock.hold(out, "test"):
            pass


def test_ctrl_c_at_start_up_is_one_line(tmp_path):
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rnn",
            "report",
            "--data",
            str(CORPUS),
            "--out",
            str(tmp_path / "o"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    # Once the package is loading (numpy mapped: only the package imports it), which is the
    # first half second on an idle machine; Python's own start before it is out of reach.
    maps = Path(f"/proc/{p.pid}/maps")
    while p.poll() is None and "numpy" not in maps.read_text(errors="replace"):
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=60)[1].strip()
    assert p.returncode == 130 and err.count("\n") == 0 and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def reading(pid: int, path: Path) -> bool:
    """Whether a child of process pid has `path` open (the build's training process reading
    the corpus)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return any(
            os.readlink(fd) == str(path)
            for child in children
            for fd in Path(f"/proc/{child}/fd").iterdir()
        )
    except OSError:  # a process or a descriptor that has just gone
        return False


def test_ctrl_c_while_the_corpus_is_read_claims_nothing(tmp_path):
    big = tmp_path / "big.txt"  # seconds of reading
    text = CORPUS.read_text(encoding="utf-8")
    big.write_text(text * (20_000_000 // len(text)), encoding="utf-8")
    out = tmp_path / "o"
    p = subprocess.Popen(
        [sys.executable, "-m", "rnn", "report", "--data", str(big), "--out", str(out), *QUICK],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's command has
    )
    while p.poll() is None and not reading(p.pid, big):
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGINT)  # Ctrl-C reaches every process of the group
    err = p.communicate(timeout=120)[1].strip()
    assert p.returncode == 130
    assert err == "interrupted while reading the corpus; nothing was trained or written"
    assert not out.exists()


def test_the_builds_own_process_and_the_reports_modules_never_load_numba():
    # The build's own process: papermill and the package, never numba (its training runs in a
    # process of its own, rnn.runs.trainer, which ends first); the report's kernel: the same.
    code = (
        "import sys, rnn.report.build, rnn.runs.driver, rnn.report.heading, rnn.report.results, "
        "rnn.report.figures, rnn.report.compare, rnn.report.analysis, rnn.runs.trainer; "
        "print('numba' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert found.stdout.strip() == "False", found.stderr


def test_bytes_that_are_not_utf8_are_refused_before_training(tmp_path, capsys):
    with pytest.raises(rnn.ConfigError, match="parameter title is not UTF-8"):
        rnn.Config(title="caf\udce9")  # how Python reads the byte 0xe9 from a command line
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.txt"))
    shutil.copy(CORPUS, odd)
    assert cli(["report", "--data", str(odd), "--out", str(tmp_path / "o"), *QUICK]) == 2
    assert "the name is not UTF-8" in one_line_error(capsys)
    assert not (tmp_path / "o").exists()


# --- 6. honest numbers --------------------------------------------------------------------


@pytest.fixture
def trained(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(CORPUS), "--out", str(out), "--quiet", "--m", "8"]
    assert cli([*args, "--n_updates", "50", "--eval_every", "50"]) == 0
    return out / "checkpoint.npz"


def test_sampling_at_a_tiny_temperature_is_the_most_likely_text(trained, capsys):
    import warnings

    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no NaN
        assert cli(["sample", "--checkpoint", str(trained), "--temperature", "1e-310"]) == 0
    tiny = capsys.readouterr().out
    assert cli(["sample", "--checkpoint", str(trained), "--temperature", "0"]) == 0
    assert tiny == capsys.readouterr().out


def test_a_model_with_nan_weights_is_refused_not_sampled(trained, tmp_path, capsys):
    state, meta = checkpoint.load(trained)
    for weights in (state.theta, state.best_smooth_theta, state.best_val_theta):
        weights[:] = np.nan
    nan = tmp_path / "nan.npz"
    checkpoint.save(
        nan,
        state,
        vocab_chars=meta["vocab"],
        config=meta["config"],
        corpus_sha256=meta["corpus_sha256"],
        sessions=meta["sessions"],
    )  # a valid checksum over NaN weights
    capsys.readouterr()
    assert cli(["sample", "--checkpoint", str(nan)]) == 2
    assert "is not finite" in one_line_error(capsys)


def test_the_code_digest_covers_every_module_training_imports(tmp_path):
    package = tmp_path / "rnn"
    shutil.copytree(checkpoint.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    files = checkpoint.training_code(package)
    names = {f.relative_to(package).as_posix() for f in files}
    assert {"engine/sample.py", "engine/train.py", "engine/model.py", "engine/optim.py"} <= names
    assert {"runs/data.py", "engine/kernels/vanilla.py", "engine/cells/lstm.py"} <= names
    assert not any(n.startswith(("report/", "sweep/", "race/", "cli/")) for n in names)
    before = checkpoint.code_digest(package)
    assert before == checkpoint.CODE_SHA256
    for f in files:
        original = f.read_bytes()
        f.write_bytes(original + b"\n# edited\n")
        assert checkpoint.code_digest(package) != before, f
        f.write_bytes(original)


@pytest.mark.parametrize(
    "option, advice",
    [
        (["--sigma", "1e10"], "the initial weights are too large; lower sigma (now 1e+10)"),
        (["--sigma", "1e10", "--eta", "5"], "lower sigma (now 1e+10) and eta (now 5"),
        (["--eta", "1e6"], "lower eta (now 1e+06)"),
    ],
)
def test_divergence_names_what_the_numbers_point_to(tmp_path, capsys, option, advice):
    args = ["train", "--data", str(CORPUS), "--out", str(tmp_path / "o"), "--quiet"]
    assert cli([*args, "--n_updates", "200", *option]) == 2
    err = one_line_error(capsys)
    assert (
        err.startswith("error: training diverged at update")
        and err.endswith(advice)
        or (advice in err)
    ), err
