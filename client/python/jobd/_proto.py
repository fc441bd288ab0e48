"""The wire side shared by Client and AsyncClient: key names, script
arguments and replies, in the order libjobd sends them (client/libjobd/
client.c, manage.c, wait.c; schema/redis/README.md). No I/O here."""
from __future__ import annotations

import re
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import redis.exceptions as rexc

from . import envelope as E
from .errors import (
    JobNotFound,
    JobStateError,
    RedisError,
    RedisUnavailable,
    SchemaMismatch,
)
from .schema import script

REDIS_SCHEMA = "2"  # JOBD_REDIS_SCHEMA in include/jobd/version.h


def global_key(prefix: str, name: str) -> str:
    """A global key of layout 2: PREFIX:{:global}:NAME (client/libjobd/keys.c
    keys_global): one hash tag of their own, so they work on Redis Cluster."""
    return "%s:{:global}:%s" % (prefix, name)


def schema_keys(prefix: str) -> list:
    """The two keys the layout check sets and reads (client/libjobd/schema.h):
    layout 2's, and layout 1's PREFIX:schema, which every later client sets
    too so that an older binary refuses this Redis."""
    return [global_key(prefix, "schema"), "%s:schema" % prefix]
TTL_IDEMPOTENCY_S = 24 * 3600  # JOBD_TTL_IDEMPOTENCY_S
TTL_DEAD_MS = 7 * 24 * 3600 * 1000  # JOBD_TTL_DEAD_MS
BATCH_CHUNK = 500  # JOBD_BATCH_CHUNK: jobs per enqueue call
SUBMIT_WINDOW = 8  # CLIENT_SUBMIT_WINDOW: enqueue calls in flight
RETRY_SLICE = 1000  # dead jobs moved per retry.lua call
# The scripts a client runs (jobd runs the others).
CLIENT_SCRIPTS = ("enqueue", "cancel", "retry", "watch", "stats", "batch")


def queue_prefix(prefix: str, queue: str) -> str:
    """KEYS[1] of every script: "PREFIX:{QUEUE}:"."""
    return "%s:{%s}:" % (prefix, queue)


def job_key(prefix: str, queue: str, job_id: str) -> str:
    return "%s:{%s}:job:%s" % (prefix, queue, job_id)


def event_channel(prefix: str, queue: str, job_id: str) -> str:
    """The channel scripts publish a watched job's changes on."""
    return "%s:{%s}:ev:%s" % (prefix, queue, job_id)


def evalsha(name: str, prefix: str, queue: str, *args: Any) -> List[Any]:
    """The EVALSHA command of script name on queue."""
    return ["EVALSHA", script(name).sha, 1, queue_prefix(prefix, queue), *args]


# ---- submitting ----


def plan(specs: Sequence[E.JobSpec]) -> Iterator[Tuple[int, int]]:
    """(first, count) runs of at most BATCH_CHUNK consecutive jobs of one
    queue; count 0 marks a queue registration (SADD PREFIX:{:global}:queues) made
    before the first run of each queue (client_submit)."""
    i, n = 0, len(specs)
    last: Optional[str] = None
    while i < n:
        q = specs[i].queue
        if q != last:
            last = q
            yield i, 0
            continue
        count = 1
        while i + count < n and count < BATCH_CHUNK and specs[i + count].queue == q:
            count += 1
        yield i, count
        i += count


def enqueue_command(
    prefix: str, specs: Sequence[E.JobSpec], first: int, count: int, ids: List[str]
) -> List[Any]:
    """Builds the enqueue.lua call for specs[first:first+count], generating
    their ids into ids[] (caller-chosen ids are kept) and encoding their
    envelopes. Same argument layout as libjobd's build_chunk."""
    now = E.now_ms()
    created_at = E.format_time(now)
    chunk = specs[first:first + count]
    s0 = chunk[0]
    run0 = s0.run_at(now)
    check_ids = False
    uniform = True
    for s in chunk:
        check_ids |= s.id is not None
        uniform &= (s.idempotency_key is None and s.priority == s0.priority
                    and s.max_attempts == s0.max_attempts and s.run_at(now) == run0)
    fresh = iter(E.new_ids(sum(1 for s in chunk if s.id is None)))
    args: List[Any] = ["EVALSHA", script("enqueue").sha, 1, queue_prefix(prefix, s0.queue),
                       TTL_IDEMPOTENCY_S, count, "1" if check_ids else "0",
                       "2" if uniform else "6"]
    if uniform:
        args += (s0.priority, s0.max_attempts, run0)
    for k, s in enumerate(chunk):
        jid = s.id if s.id is not None else next(fresh)
        ids[first + k] = jid
        args.append(jid)
        args.append(E.encode(s, jid, now, created_at))
        if not uniform:
            args += (s.priority, s.max_attempts, s.run_at(now), s.idempotency_key or "")
    return args


def resp(args: Sequence[Any]) -> bytes:
    """args as one Redis protocol (RESP) command. Cheaper than redis-py's
    pack_command for a call of a thousand arguments (proto.c does the same
    for libjobd)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode("utf-8")
        out.append(b"$%d\r\n" % len(b))
        out.append(b)
        out.append(b"\r\n")
    return b"".join(out)


def enqueue_reply(reply: Any, first: int, count: int, ids: List[str]) -> List[bool]:
    """Applies one enqueue reply: per job 1 created, 0 the id existed, or
    the id of the job that first used the idempotency key (which replaces
    ours). Returns the created flags."""
    if not isinstance(reply, list) or len(reply) != count:
        raise RedisError("unexpected reply from enqueue: %r" % (reply,))
    created = []
    for k, v in enumerate(reply):
        if isinstance(v, bytes):
            ids[first + k] = v.decode()
        elif isinstance(v, str):
            ids[first + k] = v
        created.append(v == 1)
    return created


# ---- replies of the other scripts ----


def cancel_result(job_id: str, reply: Any) -> str:
    code, state = int(reply[0]), text(reply[1])
    if code == 0:
        raise JobNotFound(job_id)
    if code == 3:
        raise JobStateError(job_id, state, "job %s has already finished (%s)" % (job_id, state))
    return "canceled" if code == 1 else "requested"


def retry_result(job_id: str, moved: Any) -> None:
    if moved == -2:
        raise JobNotFound(job_id)
    if moved == -1:
        raise JobStateError(job_id, "", "job %s is not dead" % job_id)


def watch_event(job_id: str, reply: Any) -> E.Event:
    """The first event of a watch, from watch.lua's {state, progress}."""
    if not reply:
        raise JobNotFound(job_id)
    return E.Event(job_id, "state", text(reply[0]), E._c_float(text(reply[1])))


def text(v: Any) -> str:
    """A reply value as text (job records hold UTF-8; anything else is
    shown, not fatal)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    return str(v)


def decode_hash(h: Any) -> dict:
    return {text(k): text(v) for k, v in (h.items() if isinstance(h, dict) else [])}


def schema_result(key: str, value: Any) -> None:
    """The layout check (client.c check_schema) after SET NX and GET."""
    if value is None:
        raise RedisError("Redis: %s vanished during the schema check" % key)
    v = text(value)
    if v != REDIS_SCHEMA:
        older = v.isdigit() and 1 <= int(v) < int(REDIS_SCHEMA)
        raise SchemaMismatch(
            "Redis key %s holds jobd layout version %s, but this client speaks version %s; "
            "refusing to touch it (%s)" % (key, v, REDIS_SCHEMA,
                                           "an older layout: stop every jobd, run `jobctl migrate`"
                                           " with a current build, then start the new version"
                                           if older else "use another prefix or upgrade"))


# ---- errors ----

# Replies that mean Redis refused who we are (libjobd's setup_error treats
# any failed AUTH the same way, whatever its words).
_CREDENTIALS = re.compile(r"^(NOAUTH|WRONGPASS|NOPERM)|\bAUTH\b|invalid username-password")


def translate(e: BaseException, where: str, what: str) -> Exception:
    """The jobd exception for a redis-py one. where is the URL, masked."""
    msg = str(e)
    if isinstance(e, rexc.AuthenticationError) or (
        isinstance(e, rexc.ResponseError) and _CREDENTIALS.search(msg)
    ) or isinstance(e, (rexc.NoPermissionError, rexc.AuthenticationWrongNumberOfArgsError)):
        return RedisUnavailable(
            "Redis at %s refused the credentials (%s): %s (the password comes from the URL or "
            "the file named by JOBD_REDIS_PASSWORD_FILE)" % (where, what, msg))
    if isinstance(e, (rexc.ConnectionError, rexc.TimeoutError, OSError)):
        return RedisUnavailable("Redis unreachable at %s: %s failed: %s" % (where, what, msg))
    return RedisError("Redis: %s: %s" % (what, msg))


def is_noscript(e: BaseException) -> bool:
    return isinstance(e, rexc.NoScriptError) or (
        isinstance(e, rexc.ResponseError) and str(e).startswith("NOSCRIPT"))
