"""A test handler on jobd.handler. Payload:
  n       steps to count (each saves {"i": i} with its progress)
  sleep   seconds between steps (default 0)
  boom    raise ValueError at this step
  hold    after this step, wait for SIGTERM (then job.stop())
  pid     add "pid" (the serving process) to the result
Result: {"i", "resumed_from", "attempt", "traceparent"}."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "client", "python"))
from jobd.handler import run  # noqa: E402


def steps(job):
    p = job.payload or {}
    n = int(p.get("n", 3))
    start = i = (job.checkpoint or {}).get("i", 0)
    while i < n:
        if job.stopping:
            job.stop()
        i += 1
        job.checkpoint_save({"i": i}, progress=i / n)
        if p.get("boom") == i:
            raise ValueError("boom at step %d" % i)
        if p.get("hold") == i:
            job.log("holding at step %d until SIGTERM" % i)
            while not job.stopping:  # the handler waits for its signal
                time.sleep(0.01)
            job.stop()
        time.sleep(float(p.get("sleep", 0)))
    result = {"i": i, "resumed_from": start, "attempt": job.attempt,
              "traceparent": job.traceparent}
    if p.get("pid"):
        result["pid"] = os.getpid()
    return result


run(steps)
