#!/usr/bin/env python3
"""A persistent handler on jobd.handler (protocol v2, schema/handler-protocol.md).

The expensive part -- here a stand-in "model" that takes payload-independent
start-up time to load -- runs once per process, at import; jobd then sends
this process one job at a time. The handler function is an ordinary
jobd.handler function: the handlers file alone decides the mode:

    "demo.embed": {"exec": ["deploy/examples/embed_persistent.py"],
                   "mode": "persistent", "processes": 2, "max_jobs": 10000}

Each job "embeds" payload["text"] (a hash-based vector) and returns it with
the pid of the process that served it.
"""
import hashlib
import os
import sys
import time

try:
    from jobd.handler import run
except ImportError:  # in the source tree, without the package installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "client", "python"))
    from jobd.handler import run

# Loaded once per process, not once per job.
LOAD_S = float(os.environ.get("DEMO_MODEL_LOAD_S", "0.5"))
time.sleep(LOAD_S)
MODEL = {"dim": 8, "loaded_at": time.time()}


def embed(job):
    text = str((job.payload or {}).get("text", ""))
    h = hashlib.sha256(text.encode()).digest()
    vec = [round(b / 255.0, 3) for b in h[:MODEL["dim"]]]
    return {"vector": vec, "pid": os.getpid()}


run(embed)
