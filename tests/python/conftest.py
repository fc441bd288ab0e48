"""Fixtures for the Python package's tests (client/python).

Run by ctest (tests/CMakeLists.txt) against the suite's shared redis-server:
JOBD_TEST_REDIS holds its unix:// URL, JOBD_BIN and JOBCTL_BIN the built
binaries. Each test gets its own key prefix, so tests share the server in
parallel with the C suite. The package is imported from the source tree.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("JOBD_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))

import jobd  # noqa: E402

HANDLERS = os.path.join(HERE, "handlers")
MULT = float(os.environ.get("JOBD_TEST_TIMEOUT_MULTIPLIER") or 1)


def need_env(name):
    v = os.environ.get(name)
    if not v:
        pytest.fail("%s is not set: run these tests with ctest (cd build && ctest -R python)"
                    % name, pytrace=False)
    return v


@pytest.fixture
def redis_url():
    return need_env("JOBD_TEST_REDIS")


@pytest.fixture
def prefix(request):
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]
    return "py-%s-%s" % (name, uuid.uuid4().hex[:8])


@pytest.fixture
def client(redis_url, prefix):
    c = jobd.Client(redis_url, prefix=prefix)
    yield c
    c.close()


@pytest.fixture
def raw(redis_url):
    """A plain redis-py client on the test server, for looking at keys."""
    import redis

    r = redis.Redis(unix_socket_path=redis_url[len("unix://"):], decode_responses=True)
    yield r
    r.close()


def deadline(seconds):
    return time.monotonic() + seconds * MULT


def poll(cond, seconds=10, what="condition"):
    """Waits for cond() to be true, checking every 20 ms, up to seconds."""
    end = deadline(seconds)
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.02)


class Env:
    """Runs jobctl and jobd on this test's Redis and prefix."""

    def __init__(self, url, prefix, tmp_path):
        self.url, self.prefix, self.tmp = url, prefix, tmp_path
        self.jobd_bin = need_env("JOBD_BIN")
        self.jobctl_bin = need_env("JOBCTL_BIN")
        self.procs = []
        self.n = 0

    def env(self):
        e = dict(os.environ)
        e.update(JOBD_REDIS_URL=self.url, JOBD_PREFIX=self.prefix)
        return e

    def jobctl(self, *args, input=None, check=True, timeout=30):
        p = subprocess.run([self.jobctl_bin, *args], env=self.env(), input=input,
                           capture_output=True, text=True, timeout=timeout * MULT)
        if check and p.returncode != 0:
            raise AssertionError("jobctl %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                             p.stderr))
        return p

    def handlers_file(self, handlers):
        self.n += 1
        path = self.tmp / ("handlers-%d.json" % self.n)
        path.write_text(json.dumps(handlers))
        return str(path)

    def jobd_args(self, handlers, queues, extra):
        self.n += 1
        return [self.jobd_bin, "--queues", queues, "--handlers", self.handlers_file(handlers),
                "--state-dir", str(self.tmp / ("state-%d" % self.n)), "--http", "127.0.0.1:0",
                "--worker-id", "%s-w%d" % (self.prefix, self.n), "--log-level", "info",
                *extra]

    def run_once(self, handlers=None, queues="default", extra=(), timeout=30):
        """jobd --once until the queues are empty; returns its exit status."""
        log = self.tmp / ("jobd-%d.log" % (self.n + 1))
        with open(log, "w") as f:
            p = subprocess.run(self.jobd_args(handlers or {}, queues, ["--once", *extra]),
                               env=self.env(), stdout=f, stderr=subprocess.STDOUT,
                               timeout=timeout * MULT)
        self.last_log = log
        return p.returncode

    def start(self, handlers=None, queues="default", extra=()):
        """A long-running jobd (stopped at teardown if still running)."""
        log = self.tmp / ("jobd-%d.log" % (self.n + 1))
        f = open(log, "w")
        p = subprocess.Popen(self.jobd_args(handlers or {}, queues, list(extra)),
                             env=self.env(), stdout=f, stderr=subprocess.STDOUT)
        f.close()
        p.log = log
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()


@pytest.fixture
def env(redis_url, prefix, tmp_path):
    e = Env(redis_url, prefix, tmp_path)
    yield e
    e.close()


def py_handler(name, **extra):
    """A handlers-file entry running tests/python/handlers/NAME.py with this
    interpreter (the one that has the package's dependencies)."""
    h = {"exec": [sys.executable, os.path.join(HANDLERS, name + ".py")]}
    h.update(extra)
    return h
