"""jobd.Client against the real Redis: what it writes, what it refuses."""
import json

import jsonschema
import pytest

import jobd
from jobd.schema import envelope_schema

VALIDATOR = jsonschema.Draft202012Validator(
    envelope_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def keys(raw, prefix):
    return sorted(raw.scan_iter(match=prefix + ":*", count=1000))


def test_submit_writes_an_envelope_that_validates(client, raw, prefix):
    i = client.submit("default", "index.docs", {"path": "/data/a", "n": [1, 2]}, priority=7,
                      max_attempts=3, timeout=60, key="doc-a",
                      traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    h = raw.hgetall("%s:{default}:job:%s" % (prefix, i))
    env = json.loads(h["env"])
    VALIDATOR.validate(env)
    assert env["id"] == i and env["priority"] == 7 and env["max_attempts"] == 3
    assert h["state"] == "queued" and h["max"] == "3"
    assert raw.get("%s:{default}:idem:doc-a" % prefix) == i
    assert raw.smembers(prefix + ":{:global}:queues") == {"default"}
    st = client.status(i)
    assert (st.state, st.priority, st.payload, st.attempt) == ("queued", 7, env["payload"], 0)


def test_submit_many_pipelines_chunks_and_queues(client, raw, prefix):
    jobs = [{"queue": "a" if n < 700 else "b", "type": "noop", "payload": {"n": n}}
            for n in range(1300)]
    jobs[5]["priority"] = 9
    jobs[6]["idempotency_key"] = "k6"  # a jobctl batch-line name
    jobs[7]["delay_s"] = 60
    ids = client.submit_many(jobs)
    assert len(ids) == 1300 and len(set(ids)) == 1300
    assert raw.zcard(prefix + ":{a}:ready") == 699 and raw.zcard(prefix + ":{b}:ready") == 600
    assert raw.zcard(prefix + ":{a}:scheduled") == 1
    assert raw.zrange(prefix + ":{a}:ready", 0, 0) == [ids[5]]
    assert client.stats()["a"]["counters"]["enqueued"] == 700
    # The same key again, in a later batch: the first job's id comes back.
    again = client.submit_many([{"payload": 1, "key": "k6"}], queue="a", type="noop")
    assert again == [ids[6]]


@pytest.mark.parametrize("bad", [
    {"payload": {"f": object()}},
    {"payload": "x" * (1024 * 1024 + 1)},
    {"priority": 10},
    {"queue": "no{braces}"},
    {"unknown_field": 1},
])
def test_bad_input_raises_and_writes_nothing(client, raw, prefix, bad):
    before = keys(raw, prefix)
    assert before == sorted([prefix + ":schema", prefix + ":{:global}:schema"])
    job = {"queue": "q", "type": "t", "payload": None}
    job.update(bad)
    with pytest.raises(jobd.InvalidJob) as ei:
        client.submit_many([{"queue": "q", "type": "t"}] * 3 + [job])
    assert ei.value.index == 3 and "job 3" in str(ei.value)
    with pytest.raises(TypeError if "unknown_field" in bad else jobd.InvalidJob):
        args = dict(job)
        client.submit(args.pop("queue"), args.pop("type"), args.pop("payload"), **args)
    assert keys(raw, prefix) == before


def test_size_limit_is_a_payload_too_large(client, raw, prefix):
    with pytest.raises(jobd.PayloadTooLarge) as ei:
        client.submit("q", "t", {"blob": "x" * (1024 * 1024)})
    assert ei.value.field == "payload" and "over the limit of 1048576" in str(ei.value)
    assert keys(raw, prefix) == sorted([prefix + ":schema", prefix + ":{:global}:schema"])


def test_cancel_retry_status_errors(client, raw, prefix):
    with pytest.raises(jobd.JobNotFound):
        client.status("01234567-0000-7000-8000-000000000000")
    i = client.submit("q", "t", None, delay=3600)
    assert client.status(i).state == "scheduled"
    assert client.cancel(i) == "canceled"
    with pytest.raises(jobd.JobStateError, match="already finished"):
        client.cancel(i)
    with pytest.raises(jobd.JobStateError, match="not dead"):
        client.retry(i)
    # Dead jobs come back with retry and retry_dead.
    for j in (client.submit("q", "t"), client.submit("q", "t")):
        raw.hset("%s:{q}:job:%s" % (prefix, j), mapping={"state": "dead"})
        raw.zrem(prefix + ":{q}:ready", j)
        raw.zadd(prefix + ":{q}:dead", {j: 1})
    dead = raw.zrange(prefix + ":{q}:dead", 0, -1)
    client.retry(dead[0])
    assert client.status(dead[0]).state == "queued"
    assert client.retry_dead("q") == 1
    assert client.stats()["q"]["queued"] == 2


def test_layout_version_mismatch_is_refused(redis_url, raw, prefix):
    raw.set(prefix + ":{:global}:schema", "3")
    with pytest.raises(jobd.SchemaMismatch, match="version 3"):
        jobd.Client(redis_url, prefix=prefix)
    assert keys(raw, prefix) == [prefix + ":{:global}:schema"]
    assert raw.get(prefix + ":{:global}:schema") == "3"


def test_layout_1_is_refused_naming_migrate(redis_url, raw, prefix):
    raw.set(prefix + ":schema", "1")
    with pytest.raises(jobd.SchemaMismatch, match="jobctl migrate"):
        jobd.Client(redis_url, prefix=prefix)
    assert raw.get(prefix + ":schema") == "1"


def test_unreachable_and_refused_credentials(redis_url, prefix, tmp_path):
    with pytest.raises(jobd.RedisUnavailable, match="unreachable"):
        jobd.Client("unix://%s/nothing.sock" % tmp_path, prefix=prefix)
    pw = tmp_path / "pw"
    pw.write_text("not-the-password\n")
    with pytest.raises(jobd.RedisUnavailable, match="refused the credentials"):
        jobd.Client(redis_url, prefix=prefix, password_file=str(pw))
    with pytest.raises(jobd.RedisUnavailable, match="refused the credentials"):
        jobd.Client(redis_url.replace("unix://", "unix://nobody:x@"), prefix=prefix)


def test_sync_wait_times_out_and_watch_yields_the_state(client):
    i = client.submit("q", "t")
    with pytest.raises(jobd.WaitTimeout) as ei:
        client.wait(i, timeout=0.3)
    assert ei.value.state == "queued"
    events = client.watch(i)
    assert next(events).state == "queued"
    client.cancel(i)
    assert next(events).state == "canceled"
    with pytest.raises(StopIteration):
        next(events)
