"""report.run.json, the seal: which run a folder's report is of (the checkpoint's, the
corpus's and every product's SHA-256), written last and checked before printing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rnn.errors import RNNError
from rnn.runs import driver


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


SEAL = "report.run.json"


def write_seal(staging: Path, checkpoint_file: Path, build_id: str) -> None:
    """staging/report.run.json: which run the report is of (its checkpoint's SHA-256), and
    the SHA-256 of the report and metrics as written, so that a later reader (make pdf, a
    sweep) can tell that report, metrics and checkpoint are still of one run."""
    from rnn.runs import checkpoint

    _, meta = checkpoint.load(checkpoint_file)
    last = meta["sessions"][-1] if meta["sessions"] else {}
    metrics = json.loads((staging / "metrics.json").read_text(encoding="utf-8"))
    seal = {
        "build_id": build_id,
        "run_finished": last.get("finished", ""),
        "checkpoint_sha256": file_sha256(checkpoint_file),
        "report_sha256": file_sha256(staging / "report.html"),
        "metrics_sha256": file_sha256(staging / "metrics.json"),
        # what sealed_run compares: every parameter (report ones too) and the corpus
        "config": metrics.get("config"),
        "corpus_sha256": metrics.get("corpus_sha256"),
    }
    (staging / SEAL).write_text(json.dumps(seal, indent=1) + "\n", encoding="utf-8")


def sealed_run(out: Path) -> tuple | None:
    """What out's report is of, by its seal: the run (its checkpoint's SHA-256), every
    parameter and the corpus; None without a readable seal. A build keeps report.pdf only
    when this is the same before and after it."""
    try:
        seal = json.loads((out / SEAL).read_text(encoding="utf-8"))
        return seal["checkpoint_sha256"], seal["config"], seal["corpus_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_seal(out: Path) -> dict:
    """The seal of out's report, if report, metrics and checkpoint are the ones it names;
    otherwise RNNError saying what differs."""
    try:
        seal = json.loads((out / SEAL).read_text(encoding="utf-8"))
        files = {
            "report_sha256": out / "report.html",
            "metrics_sha256": out / "metrics.json",
            "checkpoint_sha256": out / driver.FINAL,
        }
        differ = [f.name for key, f in files.items() if file_sha256(f) != seal[key]]
    except FileNotFoundError as err:
        raise RNNError(
            f"{out}: {Path(err.filename).name} is missing, so the report's run cannot be "
            f"named; run make report (it reuses a finished run) and then make pdf"
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise RNNError(f"{out / SEAL}: not readable; run make report again") from None
    if differ:
        raise RNNError(
            f"{out}: {', '.join(differ)} changed since the report was built (not of one run); "
            f"run make report again"
        )
    return seal
