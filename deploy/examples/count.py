#!/usr/bin/env python3
"""An exec handler on jobd.handler (schema/handler-protocol.md).

Counts to payload["to"], a step every payload["step_ms"] ms, saving a
checkpoint with its progress at each step, and resumes from the checkpoint
jobd hands back after a drain or a crash. On SIGTERM it stops at its last
checkpoint and exits 75 (release, resume later).
"""
import os
import sys
import time

try:
    from jobd.handler import run
except ImportError:  # in the source tree, without the package installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "client", "python"))
    from jobd.handler import run


def count(job):
    p = job.payload or {}
    to = int(p.get("to", 10))
    step_s = float(p.get("step_ms", 20)) / 1000.0
    start = i = (job.checkpoint or {}).get("i", 0)
    if job.resumed:
        job.log(f"resuming at {i} of {to}")
    while i < to:
        if job.stopping:
            job.stop()  # the checkpoint of step i is saved: exit 75
        time.sleep(step_s)
        i += 1
        job.checkpoint_save({"i": i}, progress=i / to)
    return {"counted": to, "resumed_from": start}


run(count)
