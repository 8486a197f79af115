from pathlib import Path

import pytest

from rnn import checkpoint
from rnn.__main__ import main

CORPUS = Path(__file__).parent / "data" / "macbeth-act1.txt"


class Killed(Exception):
    pass


def test_train_killed_then_continued_then_sample(tmp_path, capsys, monkeypatch):
    args = [
        "train",
        "--data",
        str(CORPUS),
        "--out",
        str(tmp_path),
        "--m",
        "16",
        "--eval_every",
        "100",
        "--checkpoint_every",
        "100",
        "--quiet",
        "--n_updates",
        "300",
    ]
    save = checkpoint.save

    def save_then_die(path, state, **kwargs):
        save(path, state, **kwargs)
        if state.step == 200:
            raise Killed  # the process dies right after its checkpoint at update 200

    monkeypatch.setattr(checkpoint, "save", save_then_die)
    with pytest.raises(Killed):
        main(args)
    monkeypatch.setattr(checkpoint, "save", save)
    assert not (tmp_path / "checkpoint.npz").exists()
    assert checkpoint.load(tmp_path / "checkpoint.partial.npz")[0].step == 200

    assert main(args) == 0  # the same command again continues
    out = capsys.readouterr().out
    assert "continued from update 200 of an interrupted run" in out and "300 updates" in out
    state, meta = checkpoint.load(tmp_path / "checkpoint.npz")
    assert state.step == 300 and meta["config"]["m"] == 16
    assert [(s["from"], s["to"]) for s in meta["sessions"]] == [(0, 200), (200, 300)]
    assert not (tmp_path / "checkpoint.partial.npz").exists()

    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(tmp_path / "checkpoint.npz"),
                "--length",
                "60",
                "--prime",
                "MACBETH",
                "--temperature",
                "0.5",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert text.startswith("MACBETH") and len(text) == len("MACBETH") + 60 + 1


def test_another_run_into_a_finished_folder_is_refused_without_force(tmp_path, capsys):
    base = ["train", "--data", str(CORPUS), "--out", str(tmp_path), "--n_updates", "20", "--quiet"]
    assert main(base + ["--m", "8"]) == 0
    before = (tmp_path / "checkpoint.npz").read_bytes()
    assert main(base + ["--m", "9", "--resume"]) == 2
    assert (
        "no checkpoint of this run to continue from (it differs: m: 8 -> 9)"
        in capsys.readouterr().err
    )
    assert main(base + ["--m", "9"]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run of other parameters (m: 8 -> 9); use --force" in err
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert main(base + ["--m", "9", "--force"]) == 0
    assert checkpoint.load(tmp_path / "checkpoint.npz")[1]["m"] == 9
    assert main(base + ["--m", "9", "--seq_length", "7"]) == 2
    assert "seq_length: 25 -> 7" in capsys.readouterr().err
    different = tmp_path / "other.txt"
    different.write_text(CORPUS.read_text() + "more")
    assert main(["train", "--data", str(different)] + base[3:] + ["--m", "9"]) == 2
    assert "the corpus (another file or other contents)" in capsys.readouterr().err


def test_gradcheck_command(capsys):
    assert main(["gradcheck", "--data", str(CORPUS), "--m", "4", "--seq_length", "10"]) == 0
    out = capsys.readouterr().out
    errors = [float(line.split(":")[1]) for line in out.splitlines() if line.startswith("  ")]
    assert len(errors) == 5 and max(errors) < 1e-6


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "missing.txt"], "missing.txt: no such file"),
        (["train", "--data", str(CORPUS), "--eta", "-1"], "parameter eta must be > 0.0"),
        (["sample", "--checkpoint", "nope.npz"], "nope.npz: no such checkpoint"),
    ],
)
def test_errors_are_one_line(tmp_path, capsys, args, message):
    assert main(args + (["--out", str(tmp_path)] if args[0] == "train" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_a_checkpoint_of_another_cell_is_refused_in_one_line(tmp_path, capsys):
    base = [
        "train",
        "--data",
        str(CORPUS),
        "--out",
        str(tmp_path),
        "--n_updates",
        "20",
        "--m",
        "6",
        "--quiet",
    ]
    assert main(base + ["--cell", "lstm"]) == 0
    assert main(base + ["--cell", "gru", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "cell: 'lstm' -> 'gru'" in err
    sample = ["sample", "--checkpoint", str(tmp_path / "checkpoint.npz"), "--length", "30"]
    assert main(sample) == 0  # the checkpoint's own cell is used to read it
    assert len(capsys.readouterr().out) == 1 + 30 + 1
