from pathlib import Path

import pytest

from rnn import checkpoint
from rnn.__main__ import main

CORPUS = Path(__file__).parent / "data" / "macbeth-act1.txt"


def test_train_then_resume_then_sample(tmp_path, capsys):
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
    ]
    assert main(args + ["--n_updates", "200"]) == 0
    out = capsys.readouterr().out
    assert "200 updates" in out and "bits per character" in out
    state, meta = checkpoint.load(tmp_path / "checkpoint.npz")
    assert state.step == 200 and meta["config"]["m"] == 16

    assert main(args + ["--n_updates", "300", "--resume"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert checkpoint.load(tmp_path / "checkpoint.npz")[0].step == 300

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


def test_resume_refuses_another_shape(tmp_path, capsys):
    base = ["train", "--data", str(CORPUS), "--out", str(tmp_path), "--n_updates", "20", "--quiet"]
    assert main(base + ["--m", "8"]) == 0
    assert main(base + ["--m", "9", "--resume"]) == 2
    assert "made for m=8 hidden units, this run has m=9" in capsys.readouterr().err


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
