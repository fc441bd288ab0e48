"""jobd.handler: write an exec handler (schema/handler-protocol.md) in a few
lines. Standard library only: a handler needs no Redis client.

    from jobd.handler import run

    def count(job):
        i = (job.checkpoint or {}).get("i", 0)      # resume where we stopped
        while i < job.payload["to"]:
            if job.stopping:                         # SIGTERM: drain, cancel, timeout
                job.stop()                           # exit 75: resume later from here
            i += 1
            job.checkpoint_save({"i": i}, progress=i / job.payload["to"])
        return {"counted": i}                        # the job's result

    run(count)

What jobd gives the handler: one JSON line on stdin (id, type, queue,
attempt, payload, checkpoint) and the environment (JOBD_JOB_ID, TRACEPARENT,
...). What the handler tells jobd: JSON lines on stdout -- progress,
checkpoint, result, log -- and its exit status: 0 succeeded, 75 stopped at
its last checkpoint (the lease goes back, the attempt is not charged), any
other status failed (retried, or dead after max_attempts). jobd keeps the
tail of stderr and attaches it to a failure, so an uncaught exception's
traceback (printed there by :func:`run`, as by Python itself) ends up in the
job's ``error``.

Plain ``print()`` output is fine: jobd keeps lines that are not protocol
messages as job output (bounded) and attaches them to a failure too.

Persistent mode (protocol v2) needs no change to the handler: with
``"mode": "persistent"`` in the handlers file, jobd starts the program once
per process (``JOBD_PROTOCOL=2`` in its environment) and :func:`run` then
serves jobs one at a time with the same function: whatever the module loads
at import time (a model, a connection) is loaded once per process. A job's
return value, :meth:`Job.stop` and an exception end that job only (done
succeeded / stopped / failed, the traceback on stderr and its last line as
the error); ``job.stopping`` turns true when jobd sends a stop for the job
(drain, cancel) or SIGTERM arrives, after which the process exits once the
job has ended.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
import select
import signal
import sys
import threading
import traceback
from typing import Any, Callable, Dict, IO, NoReturn, Optional

__all__ = ["Job", "start", "run", "EXIT_STOPPED"]

EXIT_STOPPED = 75  # "stopped at the last checkpoint; release for resumption"
_UNSET: Any = object()


class Job:
    """The job this handler process runs (one per process).

    Attributes: ``id``, ``type``, ``queue``, ``attempt`` (1 on the first
    run; a release after a drain does not count), ``payload``,
    ``checkpoint`` (the newest checkpoint: the one jobd handed over --
    None on a fresh start -- then each one saved), ``resumed`` (True when
    jobd handed a checkpoint over), ``traceparent`` (W3C, or None),
    ``stopping`` (set when SIGTERM arrived: finish the step, then
    :meth:`stop`).
    """

    def __init__(self, message: Dict[str, Any], out: Optional[IO[str]] = None,
                 _server: "Optional[_Server]" = None) -> None:
        self.id: str = message.get("id", "")
        self.type: str = message.get("type", "")
        self.queue: str = message.get("queue", "")
        self.attempt: int = int(message.get("attempt") or 1)
        self.payload: Any = message.get("payload")
        self.checkpoint: Any = message.get("checkpoint")
        self.resumed: bool = self.checkpoint is not None
        if _server is not None:  # v2: per job, on the job line
            self.traceparent: Optional[str] = message.get("traceparent") or None
        else:
            self.traceparent = os.environ.get("TRACEPARENT") or None
        self._stopping = False
        self.has_result = False
        self._out = out if out is not None else sys.stdout
        self._lock = threading.Lock()
        self._server = _server
        self._tag = {"id": self.id} if _server is not None else None

    @property
    def stopping(self) -> bool:
        """True once jobd asked this job to stop (SIGTERM in v1; a stop line
        or SIGTERM in persistent mode): finish the step, then :meth:`stop`."""
        if not self._stopping and self._server is not None:
            self._server.poll_stop(self)
        return self._stopping

    @stopping.setter
    def stopping(self, value: bool) -> None:
        self._stopping = bool(value)

    def __repr__(self) -> str:
        return "<jobd.handler.Job %s %s attempt %d>" % (self.type, self.id, self.attempt)

    # ---- telling jobd ----

    def _say(self, msg: Dict[str, Any]) -> None:
        if self._tag is not None:
            msg = {**self._tag, **msg}
        line = json.dumps(msg, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    @staticmethod
    def _fraction(x: float) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise ValueError("progress must be a finite number, not %r" % (x,))
        return min(max(float(x), 0.0), 1.0)

    def progress(self, fraction: float) -> None:
        """Reports progress, 0..1 (clamped); ``jobctl wait`` and watchers
        see it."""
        self._say({"progress": self._fraction(fraction)})

    def checkpoint_save(self, state: Any, *, progress: Optional[float] = None) -> None:
        """Saves the state to resume from (any JSON value), with progress if
        given, in one line. jobd makes it durable in its journal and hands
        it to the next attempt as ``job.checkpoint``."""
        msg: Dict[str, Any] = {"checkpoint": state}
        if progress is not None:
            msg["progress"] = self._fraction(progress)
        self._say(msg)
        self.checkpoint = state

    def result(self, value: Any) -> None:
        """Sets the job's result (any JSON value; the last one wins), stored
        when the handler exits 0."""
        self._say({"result": value})
        self.has_result = True

    def log(self, text: str) -> None:
        """A line for jobd's log, with the job's fields."""
        self._say({"log": str(text)})

    def stop(self, checkpoint: Any = _UNSET) -> NoReturn:
        """Stops here: saves ``checkpoint`` if given (else the newest saved
        one stands), and exits 75, so that jobd releases the job and a worker
        resumes it from that checkpoint. Raises SystemExit(75), so
        ``finally`` blocks and context managers run."""
        if checkpoint is not _UNSET:
            self.checkpoint_save(checkpoint)
        with self._lock:
            self._out.flush()
        if self._server is not None:
            raise _Stopped(EXIT_STOPPED)
        raise SystemExit(EXIT_STOPPED)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._stopping = True


class _Stopped(SystemExit):
    """Job.stop() in persistent mode: ends the job, not the process."""


class _Server:
    """Protocol v2: job lines on stdin (fd 0, read unbuffered so that a stop
    line can be looked for without blocking), tagged lines on stdout."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.buf = b""
        self.eof = False
        self.pending: list = []  # job lines read while looking for a stop
        self.current: Optional[Job] = None
        self.shutdown = False

    def _read(self, timeout: Optional[float]) -> None:
        if self.eof:
            return
        if timeout is not None:
            r, _, _ = select.select([0], [], [], timeout)
            if not r:
                return
        chunk = os.read(0, 65536)
        if not chunk:
            self.eof = True
        self.buf += chunk

    def _lines(self) -> list:
        out = []
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if line.strip():
                out.append(line)
        return out

    def _route(self, lines: list) -> None:
        for raw in lines:
            try:
                msg = json.loads(raw)
            except ValueError:
                print("jobd.handler: ignoring a line that is not JSON on stdin", file=sys.stderr)
                continue
            if not isinstance(msg, dict):
                continue
            if msg.get("stop"):
                if self.current is not None and msg.get("id") == self.current.id:
                    self.current._stopping = True
            else:
                self.pending.append(msg)

    def poll_stop(self, job: Job) -> None:
        self._read(0)
        self._route(self._lines())

    def next_job(self) -> Optional[Dict[str, Any]]:
        while not self.pending:
            if self.eof or self.shutdown:
                return None
            self._read(None)
            self._route(self._lines())
        return self.pending.pop(0)

    def say(self, msg: Dict[str, Any]) -> None:
        self.out.write(json.dumps(msg, separators=(",", ":"), ensure_ascii=False,
                                  allow_nan=False) + "\n")
        self.out.flush()

    def on_sigterm(self, signum: int, frame: Any) -> None:
        self.shutdown = True
        if self.current is None:
            raise SystemExit(0)  # between jobs: leave now
        self.current._stopping = True


def _error_line(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def _serve(fn: Callable[[Job], Any]) -> NoReturn:
    """Protocol v2: serves jobs one at a time until end of file or SIGTERM."""
    server = _Server(sys.stdout)
    signal.signal(signal.SIGTERM, server.on_sigterm)
    server.say({"ready": True})
    while True:
        msg = server.next_job()
        if msg is None:
            break
        job = Job(msg, server.out, _server=server)
        server.current = job
        done: Dict[str, Any] = {"id": job.id}
        try:
            value = fn(job)
            if inspect.isawaitable(value):
                value = asyncio.run(_await(value))
            if value is not None and not job.has_result:
                done["result"] = value
            done["done"] = "succeeded"
        except SystemExit as e:
            if isinstance(e, _Stopped) or e.code == EXIT_STOPPED:
                done["done"] = "stopped"
            elif e.code in (0, None):
                done["done"] = "succeeded"
            else:
                done["done"] = "failed"
                done["error"] = "exit status %s" % (e.code,)
        except BaseException as exc:  # noqa: B902 - every failure becomes the job's error
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            done["done"] = "failed"
            done["error"] = _error_line(exc)
        try:
            server.say(done)
        except (TypeError, ValueError) as exc:  # a result that is not JSON
            server.say({"id": job.id, "done": "failed",
                        "error": "result is not JSON: %s" % exc})
        server.current = None  # after the done line: SIGTERM now exits at once
        if server.shutdown:
            break
    sys.stdout.flush()
    raise SystemExit(0)


def start(stdin: Optional[IO[bytes]] = None, out: Optional[IO[str]] = None,
          handle_sigterm: bool = True) -> Job:
    """Reads the job line from stdin and returns the :class:`Job`. With
    ``handle_sigterm`` (the default), SIGTERM sets ``job.stopping`` instead
    of killing the process. Exits 1 when stdin holds no job (jobd died
    before sending it)."""
    src = stdin if stdin is not None else sys.stdin.buffer
    line = src.readline()
    if not line.strip():
        print("jobd.handler: no job on stdin (end of file): nothing to do", file=sys.stderr)
        raise SystemExit(1)
    msg = json.loads(line)
    if not isinstance(msg, dict):
        raise ValueError("jobd.handler: the job line is not a JSON object")
    job = Job(msg, out)
    if handle_sigterm:
        signal.signal(signal.SIGTERM, job._on_sigterm)
    return job


def run(fn: Callable[[Job], Any]) -> NoReturn:
    """Runs ``fn(job)`` (a function or a coroutine function) on the job from
    stdin and exits: 0 when it returns (a value it returns, if not None and
    no result was set, becomes the result); 75 from :meth:`Job.stop`; 1 on
    an uncaught exception, with its traceback on stderr (jobd attaches the
    stderr tail to the job's error). Under a persistent handler
    (``JOBD_PROTOCOL=2``) it serves jobs one at a time with ``fn`` instead,
    until jobd closes its stdin or sends SIGTERM."""
    if os.environ.get("JOBD_PROTOCOL") == "2":
        _serve(fn)
    job = start()
    try:
        value = fn(job)
        if inspect.isawaitable(value):
            value = asyncio.run(_await(value))
        if value is not None and not job.has_result:
            job.result(value)
    except SystemExit:
        raise
    except BaseException:  # noqa: B902 - every failure becomes the job's error
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        try:
            sys.stdout.flush()
        finally:
            raise SystemExit(1)
    sys.stdout.flush()
    raise SystemExit(0)


async def _await(aw: Any) -> Any:
    return await aw
