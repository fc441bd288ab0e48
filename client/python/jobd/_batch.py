"""The wire side of named batches, shared by Client and AsyncClient: the
checks, keys, batch.lua arguments and replies, and the status summary, as
libjobd's client/libjobd/batch.c (jobd_batch_submit, jobd_batch_status)
makes them. No I/O here. See schema/redis/README.md, "Batches".

A batch NAME has a record PREFIX:{:global}:batch:NAME (claimed with HSETNX
on created_at, so a name is used once; then queues, total, on_complete,
on_complete_queue), written before any job; each queue's jobs go in
through batch.lua in chunks of at most BATCH_CHUNK consecutive jobs of one
queue, which also writes that queue's part PREFIX:{Q}:batch:NAME.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from . import _proto as P
from . import envelope as E
from .errors import BatchError, InvalidJob, RedisError

NO_KEYS = "a named batch takes no idempotency keys (the batch name is the key)"


def check_name(name: Any) -> str:
    """A batch name: 1..128 characters of [A-Za-z0-9._:-], as a type."""
    return E._name("batch", name, E._TYPE_RE, "._:-")


def split_on_complete(on_complete: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """"TYPE" or "TYPE:QUEUE" as (type, queue or None). The queue is what
    follows the last colon (types may hold colons, queues none), as jobctl's
    --on-complete."""
    if on_complete is None or on_complete == "":
        return None, None
    if not isinstance(on_complete, str):
        raise InvalidJob("on_complete", "must be a string: TYPE or TYPE:QUEUE")
    type_, sep, queue = on_complete.rpartition(":")
    if not sep:
        type_, queue = on_complete, ""
    try:
        E._name("type", type_, E._TYPE_RE, "._:-")
        if sep:
            E._name("queue", queue, E._QUEUE_RE, "._-")
    except InvalidJob as e:
        raise InvalidJob("on_complete", e.reason) from None
    return type_, (queue if sep else None)


def check_spec(spec: E.JobSpec) -> None:
    """What a named batch refuses in a job that submit_many would take."""
    if spec.idempotency_key is not None:
        raise InvalidJob("key", NO_KEYS)


def record_key(prefix: str, name: str) -> str:
    return P.global_key(prefix, "batch:" + name)


def part_key(prefix: str, queue: str, name: str) -> str:
    """A queue's part of the batch: PREFIX:{Q}:batch:NAME."""
    return P.queue_prefix(prefix, queue) + "batch:" + name


def record_fields(specs: Sequence[E.JobSpec], on_type: Optional[str], on_queue: str
                  ) -> List[str]:
    """The record's fields after created_at, as HSET's field value pairs."""
    queues: List[str] = []
    for s in specs:
        if s.queue not in queues:
            queues.append(s.queue)
    return ["queues", json.dumps(queues, separators=(",", ":"), ensure_ascii=False),
            "total", str(len(specs)), "on_complete", on_type or "", "on_complete_queue", on_queue]


def chunks(specs: Sequence[E.JobSpec]) -> Iterator[Tuple[int, int]]:
    """(first, count): runs of at most BATCH_CHUNK consecutive jobs of one
    queue, each one batch.lua call."""
    i, n = 0, len(specs)
    while i < n:
        count = 1
        while i + count < n and count < P.BATCH_CHUNK and specs[i + count].queue == specs[i].queue:
            count += 1
        yield i, count
        i += count


def chunk_args(name: str, specs: Sequence[E.JobSpec], first: int, count: int, ids: List[str]
               ) -> List[Any]:
    """batch.lua's ARGV for specs[first:first+count]: the name, N, then per
    job id, envelope, priority, max_attempts, run_at. Fills ids[]."""
    now = E.now_ms()
    created_at = E.format_time(now)
    chunk = specs[first:first + count]
    fresh = iter(E.new_ids(sum(1 for s in chunk if s.id is None)))
    args: List[Any] = [name, count]
    for k, s in enumerate(chunk):
        jid = s.id if s.id is not None else next(fresh)
        ids[first + k] = jid
        args += (jid, E.encode(s, jid, now, created_at), s.priority, s.max_attempts, s.run_at(now))
    return args


def chunk_result(name: str, reply: Any, first: int, count: int, ids: List[str]) -> None:
    """batch.lua's reply: per job 1 created, 0 its id exists (an error, as
    in libjobd: the batch's later chunks are not sent)."""
    if not isinstance(reply, list) or len(reply) != count:
        raise RedisError("unexpected reply from batch: %r" % (reply,))
    dup = [ids[first + k] for k, v in enumerate(reply) if v == 0]
    if dup:
        raise BatchError(name, "%d jobs of the batch had ids that exist" % len(dup), dup)


def record_queues(value: Any) -> Optional[list]:
    """The record's queues (HMGET's first value) as a list, or None when
    there is no such batch."""
    if value is None:
        return None
    try:
        queues = json.loads(P.text(value))
    except ValueError:
        return None
    return queues if isinstance(queues, list) else None


def summary(name: str, queues: list, parts: Sequence[Sequence[Any]], completion: Any
            ) -> Dict[str, Any]:
    """What ``jobctl batch status NAME --json`` prints, from the record's
    queues, per string queue the HMGET state progress of each job of its
    part, and the completion mark (HGET, or None)."""
    counts = {s: 0 for s in E.STATES}
    total, psum = 0, 0.0
    for part in parts:
        for r in part:
            total += 1
            if not isinstance(r, (list, tuple)) or len(r) != 2 or r[0] is None:
                continue
            state = P.text(r[0])
            if state in counts:
                counts[state] += 1
            p = E._c_float(P.text(r[1])) if r[1] is not None else 0.0
            psum += 1.0 if state == "succeeded" else (p if 0 <= p <= 1 else 0.0)
    terminal = counts["succeeded"] + counts["dead"] + counts["canceled"]
    return {
        "name": name,
        "total": total,
        "counts": counts,
        # To 12 significant digits, as jobctl prints it (output.c).
        "progress": float("%.12g" % (psum / total)) if total else 0.0,
        "done": total > 0 and terminal == total,
        "completion": P.text(completion) if completion is not None else None,
        "queues": queues,
    }
