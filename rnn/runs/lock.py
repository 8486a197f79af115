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
import stat
import sys
import tempfile
from pathlib import Path

from rnn.errors import BusyError, RNNError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; runs are not guarded against each other
    fcntl = None

LOCK_NAME = ".lock"


def prepare_folder(folder: Path) -> Path:
    """Create `folder` if needed; an error naming it if it is a file or cannot be written."""
    folder = Path(folder)
    try:
        str(folder).encode("utf-8")
    except UnicodeEncodeError:
        raise RNNError(f"{folder!r}: the folder's name is not UTF-8; choose another") from None
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
        # O_NOFOLLOW: a .lock that is a symbolic link is refused, not written through;
        # O_NONBLOCK: one that is a FIFO does not wait for a reader.
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK
        fd = os.open(path, flags, 0o644)
    except OSError as err:
        raise RNNError(f"{folder}: cannot write there ({err.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RNNError(f"{path}: is not a regular file; remove it and run again")
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


def build_note(build_id: str) -> str:
    """How a build's lock note names it, so the notebook it runs can tell its own build."""
    return f"(build {build_id})"


def is_held(folder: Path) -> bool:
    """True if some live process holds `folder` (its lock cannot be taken now)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def transient_prefix(kind: str) -> str:
    """The name prefix of a temporary file or folder of this process: `.rnn-<pid>-<kind>-`
    in an output folder. Only names of this form, of processes no longer alive, are ever
    cleared, so nothing a user keeps in the folder is touched."""
    return f"{TRANSIENT}{os.getpid()}-{kind}-"


def clear_leftovers(folder: Path) -> None:
    """Remove what dead runs left in `folder` (staging folders, temporary files) and in the
    temporary directory (kernel and sweep-point folders)."""
    for path in folder.glob(f"{TRANSIENT}*"):
        _remove_if_dead(path, TRANSIENT)
    clear_dead_temp_folders()


def clear_dead_temp_folders() -> None:
    """Kernel and sweep-point folders in the temporary directory whose process is dead."""
    for prefix in (KERNEL_PREFIX, POINT_PREFIX):
        for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
            _remove_if_dead(path, prefix)


TRANSIENT = ".rnn-"
KERNEL_PREFIX = "rnn-kernel-"
POINT_PREFIX = "rnn-point-"


def temp_prefix(prefix: str) -> str:
    """A prefix for tempfile.mkdtemp in the temporary directory that carries this pid."""
    return f"{prefix}{os.getpid()}-"


def _remove_if_dead(path: Path, prefix: str) -> None:
    pid = path.name[len(prefix) :].split("-")[0]
    if not pid.isdigit() or _alive(int(pid)):
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
