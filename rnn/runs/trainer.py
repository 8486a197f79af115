"""A build's training, in a process of its own that ends before the notebook's kernel starts.

Training loads numba and its compiled kernels (about 80 MB) and the corpus as indices; the
notebook's kernel, started next, needs neither numba nor this process's copy of the corpus.
In one process the build would hold both while papermill's kernel runs: measured with
bench/report_memory.py on a 1 MB corpus, 575 MB for the whole process tree, against 300 MB
+ 4 x the corpus promised. So `make report`'s process (the parent) checks the parameters,
holds the output folder and runs papermill; this child reads and checks the corpus, trains
(or reuses) the run under the parent's lock, and exits.

    with Trainer(values, data, out, build_id, fresh, progress) as child:
        child.prepared()              # the corpus is read and checked: errors come first
        with lock.hold(out, ...):
            trained = child.train()   # provenance, checkpoint, verdict

The two talk over pipes, one JSON object a line: the parent sends the request and then "go"
on the child's stdin; the child answers on a pipe of its own ({"prepared": ...}, then
{"trained": ...} or what stopped it). The child's stdout and stderr are the parent's (the
training bar), except when progress is an rnn.engine.progress.Progress that emits its lines
elsewhere (a sweep's worker): then the child prints them and the parent hands them on.
Ctrl-C reaches both (one process group); a SIGTERM to the parent while the child trains is
passed on, and the child stops at a checkpoint as it would in one process (while it reads the
corpus, the parent waits for it and then stops). A child whose parent died stops too.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

from rnn import errors
from rnn.engine.progress import Progress
from rnn.errors import BuildError, Cancelled, Interrupted, RNNError
from rnn.runs.driver import stop_requests, terminate_like_interrupt
from rnn.runs.outcome import Verdict
from rnn.runs.paths import PACKAGE

PACKAGE_PARENT = str(PACKAGE.parent)  # where `rnn` is imported from
READ_INTERRUPTED = "interrupted while reading the corpus; nothing was trained or written"


class Trained(NamedTuple):
    """What the parent needs of the run the child trained or reused."""

    provenance: str  # rnn.runs.driver.Run.provenance
    checkpoint: Path  # the file the run is in (the partial one, until the build promotes it)
    verdict: Verdict
    budget: str | None  # rnn.runs.driver.budget_line, when the time budget stopped training


class Trainer:
    """The child process (see the module's docstring): start it with `with`, then
    `prepared()`, then `train()`. Leaving the block ends the child if it is still there."""

    def __init__(self, values: dict, data: Path, out: Path, build_id: str, fresh: bool, progress):
        self.request = {
            "values": values,  # the parameters as given (rnn.runs.config.Config.given)
            "data": str(data),
            "out": str(out),
            "build_id": build_id,
            "fresh": fresh,
            "progress": _progress_request(progress),
        }
        self.relay = progress.emit if isinstance(progress, Progress) and progress.emit else None
        self.child = None

    def __enter__(self) -> Trainer:
        read_end, self._write_end = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p
        )
        self.child = subprocess.Popen(
            [sys.executable, "-m", "rnn.runs.trainer", str(self._write_end)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if self.relay else None,
            pass_fds=(self._write_end,),
            env=env,
            text=True,
        )
        os.close(self._write_end)
        self.replies = os.fdopen(read_end, "r", encoding="utf-8")
        if self.relay:
            threading.Thread(target=self._hand_on, args=(self.child.stdout,), daemon=True).start()
        self._send(self.request)
        return self

    def __exit__(self, *exc) -> None:
        child = self.child
        with contextlib.suppress(OSError):
            child.stdin.close()  # a child still waiting for "go" ends at once
        with stop_requests():  # a second Ctrl-C does not leave the child behind
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.replies.close()

    def prepared(self) -> None:
        """Wait until the child has read and checked the corpus; its error if it could not.
        A stop request meanwhile (Ctrl-C reaches the child too) ends the build here."""
        with stop_requests() as should_stop:
            reply = self._reply()
        if "prepared" not in reply:
            raise _error(reply, self.child)
        if should_stop():
            raise Cancelled("interrupted before training; nothing was trained or written")

    def train(self) -> Trained:
        """Tell the child to train (the parent holds the folder now) and wait for the run."""
        self._send("go")
        with stop_requests() as should_stop:
            reply = self._reply(should_stop)
        if "trained" not in reply:
            raise _error(reply, self.child)
        self.child.wait()  # gone, and its memory with it, before papermill's kernel starts
        t = reply["trained"]
        verdict = Verdict(**(t["verdict"] | {"findings": tuple(t["verdict"]["findings"])}))
        return Trained(t["provenance"], Path(t["checkpoint"]), verdict, t["budget"])

    def _send(self, message) -> None:
        try:
            self.child.stdin.write(json.dumps(message) + "\n")
            self.child.stdin.flush()
        except OSError:  # the child has gone: _reply says why
            pass

    def _reply(self, should_stop=None) -> dict:
        """The child's next message; {} when it ended without one. With should_stop, a stop
        request to this process (SIGTERM, or Ctrl-C that reached only it) is passed on once:
        the child, training, takes it as a request too, never as an exception."""
        passed_on = False
        while True:
            ready, _, _ = select.select([self.replies], [], [], 0.2)
            if ready:
                line = self.replies.readline()
                return json.loads(line) if line else {}
            if should_stop is not None and should_stop() and not passed_on:
                with contextlib.suppress(ProcessLookupError):
                    self.child.send_signal(signal.SIGTERM)
                passed_on = True

    def _hand_on(self, stream) -> None:
        for line in stream:
            self.relay(line.rstrip("\n"))


def _progress_request(progress) -> dict | bool:
    """How the child shows training: True (a bar on a terminal, lines elsewhere), False, or
    the Progress's interval when its lines go elsewhere (the parent hands them on)."""
    if isinstance(progress, Progress):
        return {"every": progress.every}
    return bool(progress)


def _error(reply: dict, child: subprocess.Popen) -> BaseException:
    """The exception the parent raises for what stopped the child."""
    if "error" in reply:
        kind, message = reply["error"]
        cls = getattr(errors, kind, RNNError)
        return (
            cls(message)
            if isinstance(cls, type) and issubclass(cls, RNNError)
            else RNNError(message)
        )
    if "interrupted" in reply:
        return Interrupted(*reply["interrupted"])
    if "cancelled" in reply:
        return Cancelled(reply["cancelled"])
    if "memory" in reply:
        return MemoryError()
    code = child.wait()
    if code in (130, -signal.SIGINT, -signal.SIGTERM):
        return Cancelled("interrupted before training started; nothing was trained or written")
    return BuildError(f"training stopped in its own process (exit status {code}); see above", None)


# --- the child ----------------------------------------------------------------------------


def main(argv=None) -> int:
    """`python -m rnn.runs.trainer FD`: one request on stdin, replies on file descriptor FD."""
    argv = sys.argv[1:] if argv is None else argv
    terminate_like_interrupt()  # until training, SIGTERM as Ctrl-C: KeyboardInterrupt
    replies = int(argv[0])

    def send(**message) -> None:
        with contextlib.suppress(BrokenPipeError):  # a parent killed outright hears nothing
            os.write(replies, (json.dumps(message) + "\n").encode("utf-8"))

    try:
        request = json.loads(sys.stdin.readline())
        prepared = _prepare(request)
    except KeyboardInterrupt:
        send(cancelled=READ_INTERRUPTED)
        return 0
    except MemoryError:
        send(memory=True)
        return 0
    if isinstance(prepared, dict):  # what was wrong with the parameters or the corpus
        send(**prepared)
        return 0
    send(prepared=True)
    # From here a stop request is one for training (it checkpoints and says so), never an
    # exception, until the reply is sent.
    with stop_requests() as should_stop:
        go = sys.stdin.readline().strip() == '"go"'
        if not go or should_stop():
            send(cancelled="interrupted before training; nothing was trained or written")
            return 0
        try:
            send(**_train(request, prepared, should_stop))
        except MemoryError:
            send(memory=True)
    return 0


def _prepare(request: dict):
    """(Config, rnn.runs.driver.Data) of the request, or the error reply."""
    from rnn.runs import driver
    from rnn.runs.config import Config

    try:
        cfg = Config.from_dict(request["values"])
        return cfg, driver.prepare(cfg, Path(request["data"]))
    except RNNError as err:
        return {"error": [type(err).__name__, str(err)]}


def _train(request: dict, prepared: tuple, should_stop) -> dict:
    """Train (or reuse) the run; the reply."""
    from rnn.runs import driver
    from rnn.runs.outcome import verdict

    cfg, data = prepared
    parent = os.getppid()
    shown = request["progress"]
    if isinstance(shown, dict):
        shown = Progress(every=shown["every"], stream=sys.stdout)
    try:
        trained = driver.run(
            cfg,
            data,
            request["out"],
            build_id=request["build_id"],
            policy=driver.Policy(fresh=request["fresh"], promote=False),
            controls=driver.Controls(
                progress=shown,
                # a parent that died (kill -9) leaves no one to render the run: stop too
                should_stop=lambda: should_stop() or os.getppid() != parent,
            ),
        )
    except RNNError as err:
        return {"error": [type(err).__name__, str(err)]}
    except Interrupted as stop:
        return {"interrupted": [stop.step, stop.checkpoint_step]}
    return {
        "trained": {
            "provenance": trained.provenance,
            "checkpoint": str(trained.checkpoint),
            "verdict": asdict(verdict(trained.result)),
            "budget": (
                driver.budget_line(trained.result, trained.cfg)
                if trained.result.stopped_by_budget
                else None
            ),
        }
    }


if __name__ == "__main__":
    sys.exit(main())
