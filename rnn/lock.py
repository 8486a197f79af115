"""One writer per output folder, and clearing what dead runs left behind.

A run holds an exclusive `flock` on OUT/.lock while it works. The operating system drops
the lock when the process ends, however it ends, so a lock left by a killed run never
blocks the next one; the file's text only says who holds it, for the message a second run
prints. While it holds the lock, a run may remove what earlier runs left in OUT (staging
folders, temporary files): no live run can own them.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import socket
import sys
from pathlib import Path

from .errors import BusyError, RNNError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; runs are not guarded against each other
    fcntl = None

LOCK_NAME = ".lock"


def prepare_folder(folder: Path) -> Path:
    """Create `folder` if needed; an error naming it if it is a file or cannot be written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RNNError(f"{folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RNNError(f"{folder}: cannot create the output folder ({err.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RNNError(f"{folder}: the output folder is not writable")
    return folder


@contextlib.contextmanager
def hold(folder, what: str):
    """Hold `folder` for the duration: BusyError at once if a live process holds it."""
    folder = prepare_folder(Path(folder))
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise RNNError(f"{folder}: cannot write there ({err.strerror})") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
                raise BusyError(
                    f"{folder}: another run is writing there ({holder or 'holder unknown'}); "
                    f"wait for it, or choose another output folder"
                ) from None
        since = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
        note = f"process {os.getpid()} on {socket.gethostname()} since {since}: {what}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode("utf-8"), 0)
        clear_leftovers(folder)
        try:
            yield folder
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing drops the flock


def clear_leftovers(folder: Path) -> None:
    """Remove staging folders and temporary files of earlier runs in `folder` (whose lock
    the caller holds), and kernel folders of dead processes."""
    for path in folder.glob(".staging-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in folder.glob(".*.tmp"):
        path.unlink(missing_ok=True)
    clear_dead_kernel_folders()


KERNEL_PREFIX = "rnn-kernel-"


def kernel_folder_prefix() -> str:
    """Kernel socket folders carry their creator's pid, so leftovers of dead runs are known."""
    return f"{KERNEL_PREFIX}{os.getpid()}-"


def clear_dead_kernel_folders() -> None:
    import tempfile

    for path in Path(tempfile.gettempdir()).glob(f"{KERNEL_PREFIX}*-*"):
        pid = path.name[len(KERNEL_PREFIX) :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if sys.platform == "win32":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
