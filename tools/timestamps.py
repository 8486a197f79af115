"""Timestamp a command's output and list its longest silences: how the README's timings of a
first `make report` were measured.

    script -qfc "make report" /dev/null | python3 tools/timestamps.py

(`script` gives the command a terminal, so that it shows what a user sees.) Each line, ended by
a newline or by a progress bar's carriage return, is printed with the seconds since the start;
the longest gaps between lines follow at the end.
"""

import os
import sys
import time


def main() -> None:
    t0 = last = time.monotonic()
    gaps, pending = [], b""
    while chunk := os.read(0, 4096):
        now = time.monotonic()
        pending += chunk.replace(b"\r", b"\n")
        *lines, pending = pending.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").strip()
            if text:
                gaps.append((now - last, now - t0, text[:90]))
                last = now
                print(f"[{now - t0:7.1f} s] {text}", flush=True)
    if pending.strip():
        print(f"[{time.monotonic() - t0:7.1f} s] {pending.decode('utf-8', 'replace').strip()}")
    print(f"total {time.monotonic() - t0:.1f} s")
    for gap, at, text in sorted(gaps, reverse=True)[:5]:
        print(f"silence of {gap:5.1f} s before [{at:7.1f} s] {text}")


if __name__ == "__main__":
    sys.exit(main())
