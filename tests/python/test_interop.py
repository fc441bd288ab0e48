"""Python and jobctl/jobd on the same Redis: each sees what the other wrote,
and the same request makes the same job."""
import datetime as dt
import json
import subprocess
import threading

import jobd


def env_of(raw, prefix, queue, job_id):
    return raw.hget("%s:{%s}:job:%s" % (prefix, queue, job_id), "env")


def test_python_submits_jobd_runs_jobctl_waits(client, env):
    i = client.submit("default", "noop", {"n": 1})
    waiter = subprocess.Popen([env.jobctl_bin, "wait", i, "--timeout", "20s"], env=env.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert env.run_once() == 0, env.last_log.read_text()
        out, err = waiter.communicate(timeout=20)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    assert json.loads(env.jobctl("status", i, "--json").stdout)["state"] == "succeeded"


def test_jobctl_submits_python_reads_and_waits(client, env):
    i = env.jobctl("submit", "default", "noop", "--payload", '{"from": "jobctl"}',
                   "--priority", "8").stdout.strip()
    st = client.status(i)
    assert (st.state, st.payload, st.priority) == ("queued", {"from": "jobctl"}, 8)
    assert st.data == json.loads(env.jobctl("status", i, "--json").stdout)
    done = {}
    t = threading.Thread(target=lambda: done.update(s=client.wait(i, timeout=20)))
    t.start()
    try:
        assert env.run_once() == 0
    finally:
        t.join(25)
    assert done["s"].state == "succeeded" and done["s"].progress == 1.0
    assert done["s"].data == json.loads(env.jobctl("status", i, "--json").stdout)
    assert client.stats() == json.loads(env.jobctl("stats", "--json").stdout) or \
        client.stats()["default"]["succeeded"] == 1  # (oldest_age_s may tick between reads)


def test_same_options_make_the_same_envelope(client, env, raw, prefix):
    opts = ["--priority", "3", "--max-attempts", "4", "--timeout", "90s",
            "--retry-base", "1500ms", "--retry-cap", "10m", "--key", 'k "x" é',
            "--at", "2031-02-03T04:05:06.789Z"]
    a = env.jobctl("submit", "q", "index.docs", "--payload", '{"a":[1,2.5],"s":"é\\n"}',
                   *opts).stdout.strip()
    b = client.submit("q2", "index.docs", {"a": [1, 2.5], "s": "é\n"}, priority=3,
                      max_attempts=4, timeout=90, retry_base=1.5, retry_cap=600, key='k "x" é',
                      run_at=dt.datetime(2031, 2, 3, 4, 5, 6, 789000, tzinfo=dt.timezone.utc))
    ea, eb = env_of(raw, prefix, "q", a), env_of(raw, prefix, "q2", b)
    ja, jb = json.loads(ea), json.loads(eb)
    norm = ea.replace(a, "ID").replace(ja["created_at"], "T").replace('"q"', '"Q"')
    assert norm == eb.replace(b, "ID").replace(jb["created_at"], "T").replace('"q2"', '"Q"')
    ha = raw.hgetall("%s:{q}:job:%s" % (prefix, a))
    hb = raw.hgetall("%s:{q2}:job:%s" % (prefix, b))
    for f in ("state", "max", "run_at"):
        assert ha[f] == hb[f], f


def test_priorities_order_like_jobctl(client, env, raw, prefix):
    plan = [5, 9, 0, 9, 5, 7, None, 0]  # None: the default
    ids = []
    for n, p in enumerate(plan):
        if n % 2:
            args = ["submit", "q", "t"] + (["--priority", str(p)] if p is not None else [])
            ids.append(env.jobctl(*args).stdout.strip())
        else:
            ids.append(client.submit("q", "t", None, **({"priority": p} if p is not None else {})))
    prio = [5 if p is None else p for p in plan]
    want = [ids[k] for k in sorted(range(len(ids)), key=lambda k: (-prio[k], k))]
    assert raw.zrange(prefix + ":{q}:ready", 0, -1) == want


def test_delays_like_jobctl(client, env, raw, prefix):
    t0 = jobd.envelope.now_ms()
    a = env.jobctl("submit", "q", "t", "--delay", "30s").stdout.strip()
    b = client.submit("q", "t", delay=30)
    c = client.submit("q", "t", delay=dt.timedelta(seconds=30))
    t1 = jobd.envelope.now_ms()
    sched = dict(raw.zrange(prefix + ":{q}:scheduled", 0, -1, withscores=True))
    for i in (a, b, c):
        assert t0 + 30000 <= sched[i] <= t1 + 30000
        assert client.status(i).state == "scheduled"
    at = "2030-05-06T07:08:09.010Z"
    d = env.jobctl("submit", "q", "t", "--at", at).stdout.strip()
    e = client.submit("q", "t", run_at=at)
    assert sched.get(d) is None  # read before they existed
    s2 = dict(raw.zrange(prefix + ":{q}:scheduled", 0, -1, withscores=True))
    assert s2[d] == s2[e] == 1904281689010
    assert client.status(d).data["run_at"] == client.status(e).data["run_at"] == at


def test_idempotency_keys_like_jobctl(client, env):
    a = client.submit("q", "t", {"v": 1}, key="order-17")
    assert env.jobctl("submit", "q", "t", "--key", "order-17").stdout.strip() == a
    b = env.jobctl("submit", "q", "t", "--key", "order-18").stdout.strip()
    assert client.submit("q", "t", {"v": 2}, key="order-18") == b
    assert client.submit_many([{"queue": "q", "type": "t", "key": "order-18"}]) == [b]
    assert client.submit("other", "t", key="order-17") != a  # keys are per queue
    assert client.stats()["q"]["counters"]["enqueued"] == 2
