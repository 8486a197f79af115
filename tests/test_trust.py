"""Bad input gets one line, early; one writer per output folder; nothing a user made is lost."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import rnn
from rnn.cli.commands import main as cli
from rnn.report import execution
from rnn.runs import lock
from rnn.runs.data import load_corpus

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "data" / "macbeth-act1.txt"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


# --- the corpus ---------------------------------------------------------------------------


def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it would block for ever
    with pytest.raises(rnn.DataError, match="fifo: not a regular file"):
        load_corpus(fifo)
    with pytest.raises(rnn.DataError, match="/dev/zero: not a regular file"):
        load_corpus("/dev/zero")  # would read until memory runs out


def test_invalid_utf8_is_located_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(rnn.runs.data, "CHUNK", 7)
    path = tmp_path / "t.txt"
    path.write_bytes("héllo wörld, ".encode() * 3 + b"\xff" + b"tail")
    with pytest.raises(rnn.DataError, match=r"invalid byte at offset 45\)"):
        load_corpus(path)
    path.write_bytes("\ufeffhéllo wörld ✓".encode() * 5)  # multi-byte characters split by chunks
    corpus = load_corpus(path)
    assert corpus.text() == "héllo wörld ✓" + "\ufeffhéllo wörld ✓" * 4
    assert corpus.ids.dtype == "uint8"


def test_indices_take_the_smallest_type_that_holds_K(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_text("".join(chr(0x4E00 + i) for i in range(300)) * 2, encoding="utf-8")
    corpus = load_corpus(path)
    assert len(corpus.vocab) == 300 and corpus.ids.dtype == "uint16"
    assert corpus.text() == path.read_text(encoding="utf-8")


# --- the output folder --------------------------------------------------------------------


def test_a_busy_folder_is_refused_at_once_naming_its_holder(tmp_path, capsys):
    out = tmp_path / "out"
    with lock.hold(out, "make report into out"):
        code = cli(["report", "--data", str(CORPUS), "--out", str(out), "-p", "n_updates", "5"])
        assert code == 2
        err = one_line_error(capsys)
        assert "another run is writing there (process" in err and "make report into out" in err
        assert cli(["train", "--data", str(CORPUS), "--out", str(out), "--quiet"]) == 2
        assert "another run is writing there" in one_line_error(capsys)
    # Released (as it is when its process dies, however it dies): the next run goes ahead.
    with lock.hold(out, "next"):
        pass


HOLD_THEN_SLEEP = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b"process that is killed")
print("held", flush=True)
time.sleep(60)
"""


def test_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        ["python3", "-c", HOLD_THEN_SLEEP, str(out / ".lock")], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(rnn.errors.BusyError, match="process that is killed"):
        with lock.hold(out, "second"):
            pass
    holder.kill()
    holder.wait()
    with lock.hold(out, "after the kill"):
        assert "after the kill" in (out / ".lock").read_text()


def test_leftovers_of_dead_runs_are_cleared_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    dead = _dead_pid()
    (out / f".rnn-{dead}-staging-abc").mkdir(parents=True)
    (out / f".rnn-{dead}-staging-abc" / "report.ipynb").write_text("{}")
    (out / f".rnn-{dead}-tmp-xyz.tmp").write_bytes(b"half a checkpoint")
    (out / f".rnn-{dead}-print-q.html").write_text("<html>")
    # What the user keeps there, whatever it looks like, stays.
    (out / ".notes.tmp").write_text("mine")
    (out / ".staging-area").mkdir()
    (out / "report.html").write_text("kept")
    live = out / f".rnn-{os.getpid()}-staging-live"
    live.mkdir()
    kernel_dir = Path(tempfile.gettempdir()) / f"rnn-kernel-{dead}-abc"
    point_dir = Path(tempfile.gettempdir()) / f"rnn-point-{dead}-abc"
    kernel_dir.mkdir()
    point_dir.mkdir()
    live_dir = Path(tempfile.mkdtemp(prefix=lock.temp_prefix(lock.KERNEL_PREFIX)))
    with lock.hold(out, "test"):
        pass
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".lock", ".notes.tmp", ".staging-area", "report.html", live.name]
    )
    assert not kernel_dir.exists() and not point_dir.exists() and live_dir.exists()
    live_dir.rmdir()


def test_a_lock_file_that_is_a_link_is_not_written_through(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (out / ".lock").symlink_to(precious)
    with pytest.raises(rnn.RNNError, match="cannot write there"):
        with lock.hold(out, "test"):
            pass
    assert precious.read_text() == "keep me"


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_an_output_folder_that_cannot_be_used_is_an_error_before_training(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    for out, message in [
        (a_file, "exists and is not a folder"),
        (a_file / "sub", "cannot create the output folder"),
    ]:
        assert cli(["report", "--data", str(CORPUS), "--out", str(out)]) == 2
        assert message in one_line_error(capsys)
        assert cli(["train", "--data", str(CORPUS), "--out", str(out), "--quiet"]) == 2
        assert message in one_line_error(capsys)


# --- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-p", "prime", "ROMEO✓"], "parameter prime: character '✓' does not occur in macbeth"),
        (
            ["-p", "data_path", "x.txt"],
            "parameter data_path is set by make report: give the corpus",
        ),
        (["-p", "resume_from", "x.npz"], "unknown parameter 'resume_from'"),
        (["-p", "checkpoint_path", "x.npz"], "unknown parameter 'checkpoint_path'"),
        (["-p", "cell", "lsmt"], "parameter cell must be one of vanilla, lstm, gru"),
        (["-p", "seq_length", "100000"], "seq_length=100000 needs at least 100001"),
        (["-p", "m", "1000000000"], "need about"),
        (["-p", "n_updates", "1000000000000"], "of memory; this machine has"),
        (["-p", "check_m", "1000"], "parameter check_m must be <= 100"),
        (["-p", "ngram_order", "1000000000"], "parameter ngram_order must be <= 10"),
        (["-p", "passage_length", "1000000000000"], "parameter passage_length must be <="),
    ],
)
def test_bad_parameters_are_refused_before_anything_starts(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert cli(["report", "--data", str(CORPUS), "--out", str(out), *extra]) == 2
    assert message in one_line_error(capsys)
    assert not out.exists()  # nothing was started, not even the folder


def test_part_six_on_a_tiny_corpus_is_refused_before_training(tmp_path, capsys):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text(CORPUS.read_text()[:100])
    assert (
        cli(["report", "--data", str(tiny), "--out", str(tmp_path / "o"), "-p", "seq_length", "5"])
        == 2
    )
    assert "turn it off with -p analysis False" in one_line_error(capsys)


@pytest.mark.parametrize(
    "cell, message",
    [
        ("m, eta = 16, 0.2\n", "must be one 'name: type = value'"),
        ("m: int = (\n", "the parameters cell is not valid Python"),
        ("m: int = 3 + 4\n", "parameter m must be a literal"),
    ],
)
def test_a_broken_parameters_cell_is_one_line(tmp_path, cell, message):
    nb = json.loads(execution.NOTEBOOK.read_text())
    params = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    params["source"] = cell
    path = tmp_path / "report.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(rnn.RNNError, match=message):
        execution.effective_parameters(path, {})


def test_a_parameters_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    bad = tmp_path / "p.yaml"
    bad.write_bytes(b"m: 16\n\xff\n")
    assert cli(["report", "--data", str(CORPUS), "--out", str(tmp_path / "o"), "-f", str(bad)]) == 2
    assert "p.yaml: not UTF-8 text (invalid byte at offset 6)" in one_line_error(capsys)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--seed", "-1"], "parameter seed must be >= 0, got -1"),
        (["gradcheck", "--seq_length", "0"], "parameter seq_length must be >= 1, got 0"),
        (["gradcheck", "--seq_length", "-2"], "parameter seq_length must be >= 1, got -2"),
        (["gradcheck", "--m", "0"], "parameter m must be >= 1, got 0"),
        (["gradcheck", "--m", "100000"], "parameter m must be <= 100"),
    ],
)
def test_command_line_gaps(tmp_path, capsys, args, message):
    extra = ["--out", str(tmp_path / "o"), "--quiet"] if args[0] == "train" else []
    assert cli([args[0], "--data", str(CORPUS), *args[1:], *extra]) == 2
    assert message in one_line_error(capsys)


# --- the Makefile -------------------------------------------------------------------------


def make_arguments(*args) -> list[str]:
    """The command line rnn.cli.make hands on for `make args...`: the recipes run with a stand-in
    for Python that prints it rather than running the command."""
    show = (
        f"{sys.executable} -c 'import json, sys; from rnn.cli import make; "
        f"print(json.dumps(make.arguments(sys.argv[3], set(sys.argv[4:]))))'"
    )
    done = subprocess.run(
        # -o: the venv and the default corpus count as made (a fresh clone has no corpus,
        # and its recipe would run the stand-in too)
        ["make", "-s", "-o", ".venv/.installed", "-o", "data/shakespeare.txt", f"PY={show}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, MAKEFLAGS=""),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_make_passes_paths_as_they_are_and_fetches_the_default_corpus_only_for_itself(
    tmp_path,
):
    planted = tmp_path / "planted"
    data = f"my `touch {planted}` book's.txt"
    out = 'my "reports"'
    assert make_arguments("report", f"DATA={data}", f"OUT={out}", "PARAMS=-p m 8") == [
        "report",
        f"--data={data}",
        f"--out={out}",
        "-p",
        "m",
        "8",
    ]
    assert not planted.exists()
    assert (
        "rnn.runs.corpus"
        not in subprocess.run(
            ["make", "-n", "-o", ".venv/.installed", "report", "DATA=own.txt"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert make_arguments("pdf", f"OUT={out}") == ["pdf", f"--out={out}", "--paper=a4"]


# --- sweep files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: 3\ngrid: {eta: [0.1]}\n", "name must be a folder name"),
        ("name: a/b\ngrid: {eta: [0.1]}\n", "name must be a folder name"),
        ("fixed:\ngrid: {eta: [0.1]}\n", "'fixed' must map parameter names to values"),
        ("data:\ngrid: {eta: [0.1]}\n", "'data' must be the path of a text file"),
        ("grid: {eta: []}\n", "grid entry 'eta' must be a non-empty list"),
        ("grid: [1, 2]\n", "a sweep needs a 'grid' mapping"),
    ],
)
def test_malformed_sweep_files_get_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert cli(["sweep", str(path), "--out", str(tmp_path)]) == 2
    assert message in one_line_error(capsys)


@pytest.mark.parametrize(
    "spec, args, message",
    [
        ("data: missing.txt\ngrid: {eta: [0.1]}\n", [], "missing.txt: no such file"),
        ("grid: {etaa: [0.1]}\n", [], "unknown parameter 'etaa'"),
        ("grid: {m: [8, -1]}\n", [], "parameter m must be >= 1, got -1"),
        ("grid: {eta: [0.1]}\n", ["--workers", "0"], "--workers must be at least 1, got 0"),
        ("grid: {eta: [0.1]}\n", ["--scheduler", "foo://bar"], "cannot reach the Dask scheduler"),
    ],
)
def test_sweep_problems_are_found_before_any_cluster_starts(tmp_path, capsys, spec, args, message):
    path = tmp_path / "s.yaml"
    path.write_text(f"data: {CORPUS}\n" * ("data:" not in spec) + spec)
    assert cli(["sweep", str(path), "--out", str(tmp_path), *args]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "s").exists()
