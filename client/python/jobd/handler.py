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
"""
from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
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

    def __init__(self, message: Dict[str, Any], out: Optional[IO[str]] = None) -> None:
        self.id: str = message.get("id", "")
        self.type: str = message.get("type", "")
        self.queue: str = message.get("queue", "")
        self.attempt: int = int(message.get("attempt") or 1)
        self.payload: Any = message.get("payload")
        self.checkpoint: Any = message.get("checkpoint")
        self.resumed: bool = self.checkpoint is not None
        self.traceparent: Optional[str] = os.environ.get("TRACEPARENT") or None
        self.stopping: bool = False
        self.has_result = False
        self._out = out if out is not None else sys.stdout
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "<jobd.handler.Job %s %s attempt %d>" % (self.type, self.id, self.attempt)

    # ---- telling jobd ----

    def _say(self, msg: Dict[str, Any]) -> None:
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
        raise SystemExit(EXIT_STOPPED)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stopping = True


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
    stderr tail to the job's error)."""
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
