#!/usr/bin/env python3
"""py_submit.py - the Python package's submit figures for `make bench`.

    py_submit.py batch  SOCK PREFIX N        one Client.submit_many of N noop jobs
    py_submit.py single SOCK PREFIX SAMPLES  SAMPLES Client.submit calls, one by one

Prints one JSON object (bench_tool's style): batch {"cmd":"py_batch","jobs",
"seconds","rate"}; single {"cmd":"py_single","samples","ms":{"p50","p99",
"max"},"rate"}. The clock runs around the calls alone (the payloads and the
client are made before). Uses the package from the source tree."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "client", "python"))
import jobd  # noqa: E402


def pct(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, int(p / 100.0 * len(sorted_ms)))]


def main(argv):
    mode, sock, prefix, n = argv[1], argv[2], argv[3], int(argv[4])
    c = jobd.Client("unix://" + sock, prefix=prefix)
    if mode == "batch":
        jobs = [{"queue": "q", "type": "noop", "payload": {"n": i}} for i in range(n)]
        t0 = time.perf_counter()
        ids = c.submit_many(jobs)
        dt = time.perf_counter() - t0
        assert len(ids) == n
        got = c.stats()["q"]["queued"]
        if got != n:
            raise SystemExit("py_submit: %d of %d jobs queued" % (got, n))
        out = {"cmd": "py_batch", "jobs": n, "seconds": round(dt, 6), "rate": round(n / dt, 1)}
    else:
        for i in range(20):  # warm the connection and the scripts
            c.submit("q", "noop", {"warm": i})
        ms = []
        t_all = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            c.submit("q", "noop", {"n": i})
            ms.append((time.perf_counter() - t0) * 1000)
        dt = time.perf_counter() - t_all
        ms.sort()
        out = {"cmd": "py_single", "samples": n,
               "ms": {"p50": round(pct(ms, 50), 4), "p99": round(pct(ms, 99), 4),
                      "max": round(ms[-1], 4)},
               "rate": round(n / dt, 1)}
    c.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
