"""The envelope, ids, URLs and checks, without Redis."""
import datetime as dt
import json
import re

import jsonschema
import pytest

import jobd
from jobd import envelope as E
from jobd.schema import envelope_schema, schema_dir, script
from jobd.url import parse_url

VALIDATOR = jsonschema.Draft202012Validator(
    envelope_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
ORDER = ["v", "id", "queue", "type", "payload", "priority", "max_attempts", "created_at",
         "timeout_s", "retry_base_s", "retry_cap_s", "run_at", "idempotency_key", "traceparent"]


def envelope(**kw):
    spec = E.make_spec(kw.pop("queue", "q"), kw.pop("type", "t"), kw.pop("payload", None), **kw)
    text = E.encode(spec, E.new_id(), E.now_ms())
    return text, json.loads(text)


@pytest.mark.parametrize("kw", [
    {},
    {"payload": {"a": [1, 2.5, None, True], "s": "é\n\"x\u2028"}},
    {"priority": 0, "max_attempts": 1, "timeout": 0.2},
    {"priority": 9, "max_attempts": 1000, "timeout": dt.timedelta(hours=2), "delay": 30},
    {"run_at": dt.datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)},
    {"run_at": "2030-01-02T03:04:05.678+02:00", "key": "k \u0001\"\\é" * 20,
     "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    {"retry_base": 1.5, "retry_cap": 600, "id": "my-own.id:1"},
])
def test_envelope_validates_against_the_schema_in_field_order(kw):
    text, env = envelope(**kw)
    VALIDATOR.validate(env)
    assert list(env) == [k for k in ORDER if k in env]
    assert ", " not in text and ": " not in text.replace('": "', "")  # compact
    assert env["priority"] == kw.get("priority", 5)


def test_envelope_fields_as_libjobd_writes_them():
    created = 1764634245123
    spec = E.make_spec("q", "t", {"x": 1}, delay=1.5, timeout=1.2, retry_base=0.25,
                       key='a"b')
    assert E.encode(spec, "ID", created) == (
        '{"v":1,"id":"ID","queue":"q","type":"t","payload":{"x":1},"priority":5,'
        '"created_at":"2025-12-02T00:10:45.123Z","timeout_s":2,"retry_base_s":0.25,'
        '"run_at":"2025-12-02T00:10:46.623Z","idempotency_key":"a\\"b"}')


def test_ids_are_uuid7_in_order():
    ids = E.new_ids(5000) + [E.new_id()]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for i in ids[:50]:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i)
    ms = int(ids[0].replace("-", "")[:12], 16)
    assert abs(ms - E.now_ms()) < 60000


@pytest.mark.parametrize("kw, field, exc", [
    ({"payload": {"f": object()}}, "payload", jobd.InvalidJob),
    ({"payload": {1, 2}}, "payload", jobd.InvalidJob),
    ({"payload": float("nan")}, "payload", jobd.InvalidJob),
    ({"payload": "\ud800"}, "payload", jobd.InvalidJob),
    ({"payload": "x" * (1024 * 1024)}, "payload", jobd.PayloadTooLarge),
    ({"priority": 10}, "priority", jobd.InvalidJob),
    ({"priority": -1}, "priority", jobd.InvalidJob),
    ({"priority": "5"}, "priority", jobd.InvalidJob),
    ({"priority": True}, "priority", jobd.InvalidJob),
    ({"max_attempts": 0}, "max_attempts", jobd.InvalidJob),
    ({"max_attempts": 1001}, "max_attempts", jobd.InvalidJob),
    ({"queue": "a{b}"}, "queue", jobd.InvalidJob),
    ({"queue": "a:b"}, "queue", jobd.InvalidJob),
    ({"queue": ""}, "queue", jobd.InvalidJob),
    ({"type": "x" * 129}, "type", jobd.InvalidJob),
    ({"id": "x" * 37}, "id", jobd.InvalidJob),
    ({"key": ""}, "key", jobd.InvalidJob),
    ({"key": "é" * 129}, "key", jobd.InvalidJob),
    ({"traceparent": "00-abc"}, "traceparent", jobd.InvalidJob),
    ({"delay": -1}, "delay", jobd.InvalidJob),
    ({"delay": 1, "run_at": 5}, "run_at", jobd.InvalidJob),
    ({"run_at": dt.datetime(2030, 1, 1)}, "run_at", jobd.InvalidJob),
    ({"timeout": float("inf")}, "timeout", jobd.InvalidJob),
])
def test_bad_input_is_a_typed_error_naming_the_field(kw, field, exc):
    args = {"queue": "q", "type": "t", "payload": None}
    args.update(kw)
    with pytest.raises(exc) as ei:
        E.make_spec(args.pop("queue"), args.pop("type"), args.pop("payload"), **args)
    assert ei.value.field == field
    assert field in str(ei.value)


def test_payload_limit_counts_utf8_bytes_of_the_compact_text():
    # 1 MiB exactly, as compact JSON text: accepted; one byte more: refused.
    ok = "é" * ((1024 * 1024 - 2) // 2)
    assert len(E.encode_payload(ok).encode()) == 1024 * 1024
    with pytest.raises(jobd.PayloadTooLarge, match="1048577 bytes, over the limit of 1048576"):
        E.encode_payload(ok + "x")


def test_status_from_hash_as_jobctl_shows_it():
    h = {"env": '{"v":1,"id":"a","queue":"q","type":"t","payload":null,"priority":5,'
                '"created_at":"2026-01-01T00:00:00.000Z"}',
         "state": "succeeded", "attempt": "2", "progress": "1", "result": '{"r":1}',
         "checkpoint": "not json", "started_at": "1767225600000", "finished_at": "1767225601500",
         "worker": "w1", "max": "0", "score": "40000000000001"}
    s = E.status_from_hash(h, "a", "q")
    assert s["attempt"] == 2 and s["progress"] == 1.0 and s["result"] == {"r": 1}
    assert s["checkpoint"] == "not json" and s["worker"] == "w1"
    assert s["finished_at"] == "2026-01-01T00:00:01.500Z"
    assert "max" not in s and "score" not in s
    st = jobd.JobStatus.from_dict(s)
    assert st.terminal and st.state == "succeeded"
    assert E.status_from_hash({}, "a", "q") is None


def test_urls_as_libjobd_reads_them(tmp_path, monkeypatch):
    monkeypatch.delenv("JOBD_REDIS_PASSWORD_FILE", raising=False)
    u = parse_url(None)
    assert (u.host, u.port, u.db, u.path, u.user, u.password) == ("127.0.0.1", 6379, 0, None, "",
                                                                   "")
    u = parse_url("redis://app:p%40ss:w@@redis.local:6380/3")
    assert (u.user, u.password, u.host, u.port, u.db) == ("app", "p@ss:w@", "redis.local", 6380, 3)
    assert u.describe() == "redis://app:***@redis.local:6380/3" and "ss" not in repr(u)
    u = parse_url("redis://:secret@h")
    assert (u.user, u.password, u.port) == ("", "secret", 6379)
    u = parse_url("unix://worker@/run/redis.sock?db=2")
    assert (u.path, u.user, u.password, u.db) == ("/run/redis.sock", "worker", "", 2)
    assert u.connection_kwargs() == {"db": 2, "path": "/run/redis.sock", "username": "worker",
                                     "password": ""}
    pw = tmp_path / "pw"
    pw.write_text("from-file\nsecond line\n")
    monkeypatch.setenv("JOBD_REDIS_PASSWORD_FILE", str(pw))
    assert parse_url("unix:///s.sock").password == "from-file"
    assert parse_url("redis://u:inurl@h").password == "inurl"  # the URL wins
    u = parse_url("redis+cluster://ops@10.0.0.1:7000,10.0.0.2:7001")
    assert (u.kind, u.hosts, u.user, u.password, u.db) == (
        "redis+cluster", [("10.0.0.1", 7000), ("10.0.0.2", 7001)], "ops", "from-file", 0)
    assert u.describe() == "redis+cluster://ops:***@10.0.0.1:7000,10.0.0.2:7001/0"
    assert u.connection_kwargs() == {"username": "ops", "password": "from-file"}
    u = parse_url("redis+sentinel://:pw@s1,s2:5000/mymaster/2")
    assert (u.kind, u.hosts, u.master, u.db, u.password) == (
        "redis+sentinel", [("s1", 26379), ("s2", 5000)], "mymaster", 2, "pw")
    assert u.describe() == "redis+sentinel://***@s1:26379,s2:5000/mymaster/2"
    assert u.connection_kwargs() == {"db": 2, "password": "pw"}
    for bad in ("http://h", "redis://h:0", "redis://h:99999", "redis://h/x", "redis://h:1x",
                "unix://relative.sock", "unix:///s.sock?database=1", "redis://a,b",
                "redis+sentinel://h:1", "redis+sentinel://h:1/", "redis+sentinel://h/m/x",
                "redis+cluster://h:1/1", "redis+cluster://h:1,h:x", "rediss://h",
                "redis+cluster://" + ",".join(["h:1"] * 9)):
        with pytest.raises(jobd.ConfigError):
            parse_url(bad)
    monkeypatch.setenv("JOBD_REDIS_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(jobd.ConfigError, match="cannot read Redis password file"):
        parse_url("unix:///s.sock")


def test_scripts_come_from_the_schema_directory_with_lib_prepended():
    lib = open(schema_dir() + "/redis/lib.lua", "rb").read()
    enq = open(schema_dir() + "/redis/enqueue.lua", "rb").read()
    s = script("enqueue")
    assert s.text == lib + enq
    import hashlib
    assert s.sha == hashlib.sha1(lib + enq).hexdigest()
    with pytest.raises(ValueError):
        script("../x")


def test_the_handler_helper_needs_no_redis_client():
    import subprocess
    import sys
    code = ("import sys; sys.modules['redis'] = None; import jobd.handler, jobd; "
            "assert 'jobd.client' not in sys.modules")
    from conftest import ROOT
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={"PYTHONPATH": ROOT + "/client/python"})
