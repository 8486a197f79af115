"""The report notebook's first step, however it is run (make report, papermill, Jupyter):
refuse parameters it does not know, and hold its folders as every other writer does.

papermill only warns about a parameter the notebook does not declare (`-p n_update 300`
would train the default 100,000 updates); here it stops the run, as `make report` does.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from rnn.errors import BusyError, ConfigError
from rnn.runs import lock
from rnn.runs.config import PATH_PARAMETERS, names

INJECTED = "# Parameters\n"  # the first line of the cell papermill adds with the parameters
_held: dict[Path, object] = {}  # folders this kernel holds, until it exits


def notebook_start(namespace: dict) -> None:
    """Check the parameters papermill injected, then hold run_dir (and out_dir): with
    build_id set, make report holds run_dir already and only that is checked."""
    check_injected(namespace.get("In") or [])
    given = [namespace.get("run_dir"), namespace.get("out_dir")]
    folders = [Path(f).resolve() for f in given if f]  # out_dir "": nothing is written
    build_id = namespace.get("build_id", "")
    if build_id and folders and held_by_build(folders[0], build_id):
        return
    for folder in dict.fromkeys(folders):
        if folder.is_dir():  # one that is not there is the reader's to report, not made here
            hold_for_kernel(folder)


def known() -> set[str]:
    return set(names()) | {p["name"] for p in PATH_PARAMETERS}


def check_injected(history, allowed: set[str] | None = None) -> None:
    """ConfigError naming the first parameter of papermill's injected cell (found in the
    kernel's input history, IPython's `In`) that the parameters cell does not declare
    (`allowed`: the notebook's parameters; the report notebook's by default)."""
    allowed = known() if allowed is None else allowed
    for source in history:
        if not isinstance(source, str) or not source.startswith(INJECTED):
            continue
        try:
            body = ast.parse(source).body
        except SyntaxError:
            continue
        given = [
            t.id
            for node in body
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name)
        ]
        unknown = [name for name in given if name not in allowed]
        if unknown:
            raise ConfigError(
                f"unknown parameter {unknown[0]!r}; known: {', '.join(sorted(allowed))}"
            )


def held_by_build(folder: Path, build_id: str) -> bool:
    """True if a live make report holds `folder` for this build (its lock note says so)."""
    path = folder / lock.LOCK_NAME
    try:
        note = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return lock.build_note(build_id) in note and lock.is_held(folder)


def holds(folder) -> bool:
    """True if this kernel already holds `folder` (notebook_start took it)."""
    return Path(folder).resolve() in _held


def hold_for_kernel(folder: Path) -> None:
    """Hold `folder` until this kernel exits; BusyError if another process holds it."""
    if folder in _held:
        return
    holding = lock.hold(folder, f"report notebook (process {os.getpid()}) into {folder}")
    holding.__enter__()  # released when the kernel's process ends, as every lock is
    _held[folder] = holding


__all__ = ["BusyError", "notebook_start"]
