#!/usr/bin/env python3
"""An exec handler (protocol v1, schema/handler-protocol.md) in plain Python.

Counts to payload["to"], reporting progress and a checkpoint every step, and
resumes from the checkpoint jobd hands back after a drain or a crash. On
SIGTERM it stops at its last checkpoint and exits 75 (release, resume later).
"""
import json
import signal
import sys
import time

stop = False


def on_term(signum, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)

job = json.loads(sys.stdin.readline())
payload = job.get("payload") or {}
to = int(payload.get("to", 10))
step_s = float(payload.get("step_ms", 20)) / 1000.0
start = (job.get("checkpoint") or {}).get("i", 0)


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


if start:
    say({"log": f"resuming at {start} of {to}"})
for i in range(start, to):
    if stop:
        sys.exit(75)
    time.sleep(step_s)
    say({"checkpoint": {"i": i + 1}})
    say({"progress": (i + 1) / to})
say({"result": {"counted": to, "resumed_from": start}})
