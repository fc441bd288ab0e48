"""jobd.handler under the real jobd: checkpoint, result, exit 75 on SIGTERM
and resume, exceptions as failures with their traceback."""
import signal

from conftest import poll, py_handler


def test_result_checkpoint_and_progress_are_stored(client, env):
    tp = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    i = client.submit("default", "py.steps", {"n": 4}, traceparent=tp)
    assert env.run_once({"py.steps": py_handler("steps")}) == 0, env.last_log.read_text()
    st = client.status(i)
    assert st.state == "succeeded", st.error
    assert st.result == {"i": 4, "resumed_from": 0, "attempt": 1, "traceparent": tp}
    assert st.progress == 1.0  # (a finished job's checkpoint need not reach Redis)


def test_an_exception_fails_the_job_with_its_traceback(client, env):
    i = client.submit("default", "py.steps", {"n": 4, "boom": 2}, max_attempts=1)
    # CONTRACT: --once exits 1 when a job it ran ended dead.
    assert env.run_once({"py.steps": py_handler("steps")}) == 1
    st = client.status(i)
    assert st.state == "dead"
    assert st.error.startswith("handler exited with status 1")
    # The whole traceback, from jobd's stderr tail (not cut: first line kept).
    assert "Traceback (most recent call last):" in st.error
    assert 'handlers/steps.py", line' in st.error and "in steps" in st.error
    assert st.error.rstrip().endswith("ValueError: boom at step 2")
    assert st.checkpoint == {"i": 2} or st.checkpoint is None  # synced or not yet


def test_sigterm_exits_75_and_the_next_attempt_resumes(client, env, raw, prefix):
    handlers = {"py.steps": py_handler("steps")}
    i = client.submit("default", "py.steps", {"n": 5, "hold": 3})
    jobd_proc = env.start(handlers, extra=["--drain-timeout", "100ms", "--sync-interval",
                                           "50ms", "--kill-grace", "10s"])
    key = "%s:{default}:job:%s" % (prefix, i)
    poll(lambda: raw.hget(key, "checkpoint") == '{"i":3}', 15, "the checkpoint of step 3")
    jobd_proc.send_signal(signal.SIGTERM)
    assert jobd_proc.wait(20) == 0, jobd_proc.log.read_text()
    log = jobd_proc.log.read_text()
    st = client.status(i)
    # Released with its checkpoint, the attempt not charged (exit 75).
    assert (st.state, st.attempt, st.checkpoint) == ("queued", 0, {"i": 3}), log
    assert env.run_once(handlers) == 0
    st = client.status(i)
    assert st.state == "succeeded"
    assert st.result == {"i": 5, "resumed_from": 3, "attempt": 1, "traceparent": None}


# ---- persistent mode (protocol v2): the same handler, one line in the file ----

def persistent(name, **extra):
    return py_handler(name, mode="persistent", **extra)


def test_persistent_mode_runs_many_jobs_in_one_process(client, env):
    tp = "00-" + "ef" * 16 + "-" + "12" * 8 + "-01"
    ids = [client.submit("default", "py.steps", {"n": 2, "pid": True},
                         traceparent=tp if k == 0 else None) for k in range(20)]
    handlers = {"py.steps": persistent("steps", processes=1)}
    assert env.run_once(handlers) == 0, env.last_log.read_text()
    results = [client.status(i).result for i in ids]
    assert len({r["pid"] for r in results}) == 1  # one warm process served them all
    assert results[0]["traceparent"] == tp and results[1]["traceparent"] is None
    assert all((r["i"], r["attempt"]) == (2, 1) for r in results)


def test_persistent_mode_exception_fails_only_that_job(client, env):
    bad = client.submit("default", "py.steps", {"n": 4, "boom": 2, "pid": True}, max_attempts=1)
    good = client.submit("default", "py.steps", {"n": 1, "pid": True})
    handlers = {"py.steps": persistent("steps", processes=1)}
    assert env.run_once(handlers, extra=["--concurrency", "1"]) == 1
    st = client.status(bad)
    assert st.state == "dead"
    assert st.error.startswith("handler failed: ValueError: boom at step 2"), st.error
    assert "Traceback (most recent call last):" in st.error  # its stderr, this job's
    assert client.status(good).state == "succeeded"


def test_persistent_mode_drain_stops_the_job_at_its_checkpoint(client, env, raw, prefix):
    handlers = {"py.steps": persistent("steps", processes=1)}
    i = client.submit("default", "py.steps", {"n": 5, "hold": 3})
    jobd_proc = env.start(handlers, extra=["--drain-timeout", "100ms", "--sync-interval",
                                           "50ms", "--kill-grace", "10s"])
    key = "%s:{default}:job:%s" % (prefix, i)
    poll(lambda: raw.hget(key, "checkpoint") == '{"i":3}', 15, "the checkpoint of step 3")
    jobd_proc.send_signal(signal.SIGTERM)
    assert jobd_proc.wait(20) == 0, jobd_proc.log.read_text()
    st = client.status(i)
    # The stop line reached the job: released with its checkpoint, not charged.
    assert (st.state, st.attempt, st.checkpoint) == ("queued", 0, {"i": 3})
    assert env.run_once(handlers) == 0
    st = client.status(i)
    assert st.state == "succeeded" and st.result["resumed_from"] == 3
