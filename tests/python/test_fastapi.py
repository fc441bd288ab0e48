"""deploy/examples/fastapi_app.py under a real uvicorn on a loopback
socket: POST /index with an idempotency key, then GET /jobs/{id}/events
streams the job's progress as Server-Sent Events until it ends."""
import json
import os
import socket
import subprocess
import sys

import httpx
import pytest

from conftest import ROOT, poll, py_handler


@pytest.fixture
def api(env, tmp_path):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    e = env.env()
    e.update(JOBD_API_QUEUE="default", JOBD_API_TYPE="py.steps", JOBD_POOL_SIZE="4")
    log = open(tmp_path / "uvicorn.log", "w")
    p = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir",
                          os.path.join(ROOT, "deploy", "examples"), "--fd", str(sock.fileno()),
                          "--log-level", "warning", "fastapi_app:app"],
                         env=e, stdout=log, stderr=subprocess.STDOUT, pass_fds=[sock.fileno()])
    sock.close()
    log.close()
    base = "http://127.0.0.1:%d" % port

    def up():
        if p.poll() is not None:
            raise AssertionError("uvicorn exited: " + (tmp_path / "uvicorn.log").read_text())
        try:
            return httpx.get(base + "/jobs/none", timeout=1).status_code == 404
        except httpx.TransportError:
            return False

    try:
        poll(up, 20, "uvicorn to answer")
        yield base
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def read_events(lines):
    """Yields (event, data) of an SSE stream."""
    name = None
    for line in lines:
        line = line.rstrip("\r\n")  # (httpx 0.23 keeps the line ends)
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])


def test_submit_and_stream_progress_until_the_end(api, env, client):
    with httpx.Client(base_url=api, timeout=30) as http:
        r = http.post("/index", json={"n": 4, "sleep": 0.15}, headers={"Idempotency-Key": "r-1"})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        again = http.post("/index", json={"n": 9}, headers={"Idempotency-Key": "r-1"})
        assert again.json()["id"] == job_id  # the same request, the same job
        assert http.get("/jobs/" + job_id).json()["state"] == "queued"
        assert http.post("/index", json={"n": 1}).json()["id"] != job_id
        assert http.get("/jobs/01234567-0000-7000-8000-000000000000/events").status_code == 404
        bad = http.post("/index", json={"blob": "x" * (1024 * 1024)})
        assert bad.status_code == 422 and "payload" in bad.text

        events = []
        with http.stream("GET", "/jobs/%s/events" % job_id) as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            it = read_events(s.iter_lines())
            events.append(next(it))  # streamed before the job runs
            assert events[0] == ("state", {"id": job_id, "state": "queued", "progress": 0.0})
            jobd_proc = env.start({"py.steps": py_handler("steps")},
                                  extra=["--once", "--sync-interval", "20ms"])
            events.extend(it)  # until the server ends the stream
        assert jobd_proc.wait(30) == 0
    assert events[-1][1]["state"] == "succeeded"
    progress = [d["progress"] for k, d in events if k == "progress"]
    assert progress and progress == sorted(progress), events
    assert client.status(job_id).result["i"] == 4
