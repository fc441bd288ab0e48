#!/usr/bin/env python3
"""The trivial Python handler of `make bench`: jobd.handler with a function
that does nothing. Under "mode": "persistent" it serves jobs one at a time
(protocol v2); the same file runs once per job otherwise."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "client", "python"))
from jobd.handler import run  # noqa: E402


def noop(job):
    return None


run(noop)
