"""Named batches from Python (Client/AsyncClient.submit_many(batch=...),
batch_status): run by a real jobd, their completion job enqueued exactly
once, read the same by jobctl, and the same records as jobctl writes."""
import asyncio
import json

import pytest

import jobd
from conftest import poll


def batch_json(env, name):
    return json.loads(env.jobctl("batch", "status", name, "--json").stdout)


def keys_and_values(raw, prefix):
    """Everything under the prefix but the layout version, for 'nothing
    was written'."""
    out = {}
    for k in raw.keys(prefix + ":*"):
        if k.endswith(":schema"):
            continue
        t = raw.type(k)
        out[k] = (t, raw.hgetall(k) if t == "hash" else raw.zrange(k, 0, -1, withscores=True)
                  if t == "zset" else raw.smembers(k) if t == "set" else
                  raw.lrange(k, 0, -1) if t == "list" else raw.get(k))
    return out


def test_batch_across_queues_completes_once(client, env, raw, prefix):
    jobs = [{"queue": "ba", "type": "noop", "payload": {"n": k}} for k in range(4)]
    jobs += [{"queue": "bb", "type": "noop"}, {"queue": "bb", "type": "noop"},
             {"queue": "bb", "type": "fail", "max_attempts": 1}]
    ids = client.submit_many(jobs, batch="nightly", on_complete="batch.done:bdone")
    assert len(set(ids)) == 7
    st = client.batch_status("nightly")
    assert st == batch_json(env, "nightly")
    assert (st["total"], st["counts"]["queued"], st["done"], st["completion"]) == \
        (7, 7, False, None)
    assert st["queues"] == ["ba", "bb"] and st["progress"] == 0.0

    w = env.start(queues="ba,bb")
    done = poll(lambda: raw.zrange(prefix + ":{bdone}:ready", 0, -1), 30, "the completion job")
    # One more round over a batch already completed (its name put back in
    # a part's done set, as after a worker killed right after complete.lua)
    # must not enqueue it again.
    key = prefix + ":{bb}:batches:done"
    raw.sadd(key, "nightly")
    poll(lambda: not raw.sismember(key, "nightly"), 30, "another batch round")
    assert raw.zrange(prefix + ":{bdone}:ready", 0, -1) == done and len(done) == 1, \
        w.log.read_text()

    st = client.batch_status("nightly")
    assert st == batch_json(env, "nightly")
    assert st["done"] and st["completion"] == done[0]
    assert (st["counts"]["succeeded"], st["counts"]["dead"]) == (6, 1)
    assert st["progress"] == pytest.approx(6 / 7)
    # The completion queue is registered at submit, so status by id finds
    # the completion job, from Python and from jobctl alike.
    assert client.status(done[0]).state == "queued"
    assert "bdone" in raw.smembers(prefix + ":{:global}:queues")
    h = raw.hgetall("%s:{bdone}:job:%s" % (prefix, done[0]))
    comp = json.loads(h["env"])
    assert (comp["queue"], comp["type"], h["state"]) == ("bdone", "batch.done", "queued")
    assert comp["payload"] == {"batch": "nightly", "total": 7,
                            "counts": {"succeeded": 6, "dead": 1, "canceled": 0},
                            "ids": ids, "ids_truncated": False}


def test_same_records_as_jobctl(client, env, raw, prefix, tmp_path):
    jobs = [{"queue": "qa", "type": "t", "payload": {"k": 1}, "priority": 7},
            {"queue": "qb", "type": "t", "delay_s": 3600, "max_attempts": 2},
            {"queue": "qa", "type": "t"}]
    f = tmp_path / "b.jsonl"
    f.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    cids = env.jobctl("submit", "--batch", str(f), "--name", "c", "--on-complete",
                      "x:y:qz").stdout.split()

    async def go():
        async with jobd.AsyncClient(env.url, prefix=prefix) as ac:
            pids = await ac.submit_many(jobs, batch="p", on_complete="x:y:qz")
            return pids, await ac.batch_status("p"), await ac.batch_status("c")

    pids, pst, cst = asyncio.run(go())
    for name in ("c", "p"):
        assert client.batch_status(name) == batch_json(env, name)
    assert pst == batch_json(env, "p") and cst == batch_json(env, "c")
    assert {k: v for k, v in pst.items() if k != "name"} == \
        {k: v for k, v in cst.items() if k != "name"}

    rec = {n: raw.hgetall("%s:{:global}:batch:%s" % (prefix, n)) for n in ("c", "p")}
    for r in rec.values():
        assert r.pop("created_at").isdigit()
    assert rec["p"] == rec["c"] == {"queues": '["qa","qb"]', "total": "3",
                                    "on_complete": "x:y", "on_complete_queue": "qz"}
    for q in ("qa", "qb"):
        a = raw.hgetall("%s:{%s}:batch:c" % (prefix, q))
        b = raw.hgetall("%s:{%s}:batch:p" % (prefix, q))
        assert a == b and a["left"] == a["total"]
    assert raw.lrange(prefix + ":{qa}:batch:p:ids", 0, -1) == [pids[0], pids[2]]
    for c, p, j in zip(cids, pids, jobs):
        ha = raw.hgetall("%s:{%s}:job:%s" % (prefix, j["queue"], c))
        hb = raw.hgetall("%s:{%s}:job:%s" % (prefix, j["queue"], p))
        assert (ha["batch"], hb["batch"]) == ("c", "p")
        assert (ha["state"], ha["max"]) == (hb["state"], hb["max"])
        ea, eb = json.loads(ha["env"]), json.loads(hb["env"])
        for e in (ea, eb):
            del e["id"], e["created_at"]
            e.pop("run_at", None)
        assert ea == eb


def test_reused_name_raises_and_writes_nothing(client, env, raw, prefix, tmp_path):
    client.submit_many([{"queue": "q", "type": "t"}], batch="once")
    f = tmp_path / "b.jsonl"
    f.write_text('{"queue":"q2","type":"t"}\n')
    env.jobctl("submit", "--batch", str(f), "--name", "byctl")
    before = keys_and_values(raw, prefix)
    for name in ("once", "byctl"):
        with pytest.raises(jobd.BatchExists) as ei:
            client.submit_many([{"queue": "q3", "type": "t"}], batch=name, on_complete="d")
        assert ei.value.name == name and 'batch "%s" exists already' % name in str(ei.value)
        assert isinstance(ei.value, jobd.BatchError) and isinstance(ei.value, jobd.JobdError)

        async def go(name=name):
            async with jobd.AsyncClient(env.url, prefix=prefix) as ac:
                await ac.submit_many([{"queue": "q3", "type": "t"}], batch=name)

        with pytest.raises(jobd.BatchExists):
            asyncio.run(go())
    assert keys_and_values(raw, prefix) == before
    # jobctl refuses a name Python used (exit 1, as for its own).
    assert env.jobctl("submit", "--batch", str(f), "--name", "once", check=False).returncode == 1
    assert keys_and_values(raw, prefix) == before

    with pytest.raises(jobd.BatchNotFound):
        client.batch_status("nosuch")
    assert env.jobctl("batch", "status", "nosuch", check=False).returncode == 3


def test_idempotency_key_in_a_named_batch_is_refused(client, env, raw, prefix):
    before = keys_and_values(raw, prefix)
    jobs = [{"queue": "q", "type": "t"}, {"queue": "q", "type": "t", "idempotency_key": "k"}]
    with pytest.raises(jobd.InvalidJob) as ei:
        client.submit_many(jobs, batch="b")
    assert (ei.value.index, ei.value.field) == (1, "key")
    assert "the batch name is the key" in str(ei.value)
    with pytest.raises(jobd.InvalidJob) as ei:
        client.submit_many([{"queue": "q", "type": "t"}], batch="b", key="k")  # a default
    assert ei.value.index == 0

    async def go():
        async with jobd.AsyncClient(env.url, prefix=prefix) as ac:
            await ac.submit_many(jobs, batch="b")

    with pytest.raises(jobd.InvalidJob):
        asyncio.run(go())
    assert keys_and_values(raw, prefix) == before
    # Other refusals, before anything is written too.
    for kw in ({"batch": "bad name"}, {"batch": ""}, {"on_complete": "t"},
               {"batch": "b", "on_complete": "bad type"}, {"batch": "b", "on_complete": ":q"},
               {"batch": "b", "on_complete": "t:bad:q{"}):
        with pytest.raises(jobd.InvalidJob):
            client.submit_many([{"queue": "q", "type": "t"}], **kw)
    with pytest.raises(jobd.InvalidJob):
        client.submit_many([], batch="b")
    assert keys_and_values(raw, prefix) == before
    # The name is still free.
    client.submit_many([{"queue": "q", "type": "t"}], batch="b")
    assert client.batch_status("b")["total"] == 1


def test_chosen_id_that_exists(client):
    client.submit("q", "t", id="taken")
    with pytest.raises(jobd.BatchError) as ei:
        client.submit_many([{"queue": "q", "type": "t", "id": "fresh"},
                            {"queue": "q", "type": "t", "id": "taken"}], batch="ids")
    assert ei.value.job_ids == ["taken"] and not isinstance(ei.value, jobd.BatchExists)
    st = client.batch_status("ids")
    assert (st["total"], st["counts"]["queued"]) == (1, 1)
