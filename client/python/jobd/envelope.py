"""The v1 job envelope (schema/job.v1.schema.json): checks, encoding, ids,
and the status object of a stored job. Pure: no I/O, no Redis.

Follows libjobd's envelope.c exactly: the same checks with the same limits,
the same field order (v, id, queue, type, payload, priority, max_attempts,
created_at, timeout_s, retry_base_s, retry_cap_s, run_at, idempotency_key,
traceparent; the optional ones only when set), compact JSON, times as UTC
RFC 3339 with milliseconds, and UUIDv7 ids (client/libjobd/id.c).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Union

from .errors import InvalidJob, PayloadTooLarge

__all__ = [
    "PAYLOAD_MAX",
    "DEFAULT_PRIORITY",
    "DEFAULT_MAX_ATTEMPTS",
    "STATES",
    "TERMINAL_STATES",
    "JobSpec",
    "JobStatus",
    "Event",
    "make_spec",
    "encode",
    "new_id",
    "new_ids",
    "now_ms",
    "format_time",
    "status_from_hash",
]

PAYLOAD_MAX = 1024 * 1024  # JOBD_PAYLOAD_MAX
DEFAULT_PRIORITY = 5  # JOBD_DEFAULT_PRIORITY
DEFAULT_MAX_ATTEMPTS = 5  # JOBD_DEFAULT_MAX_ATTEMPTS
STATES = ("queued", "scheduled", "active", "succeeded", "dead", "canceled")
TERMINAL_STATES = frozenset(("succeeded", "dead", "canceled"))

_NAME_MAX = 128
_KEY_MAX = 256  # idempotency key, bytes of UTF-8
_ID_MAX = 36  # JOBD_ID_LEN
_HUNDRED_YEARS_S = 100 * 365 * 86400
_RUN_AT_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
_QUEUE_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_TYPE_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,36}")
_TRACEPARENT_RE = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")

Seconds = Union[int, float, _dt.timedelta]


# ---- ids: UUIDv7 (RFC 9562), as client/libjobd/id.c makes them ----


class _IdGen:
    """48 bits of Unix ms, a 12-bit counter keeping ids of one millisecond
    in order within the process (RFC 9562 method 1), 62 random bits. Random
    bytes are fetched in blocks; a forked child drops the inherited block."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_ms = 0
        self.counter = 0
        self.pool = b""
        self.used = 0

    def reset_after_fork(self) -> None:
        self.lock = threading.Lock()
        self.pool = b""
        self.used = 0

    def ids(self, n: int) -> List[str]:
        out = []
        with self.lock:
            for _ in range(n):
                ms = time.time_ns() // 1_000_000
                if ms <= self.last_ms:
                    ms = self.last_ms
                    self.counter += 1
                    if self.counter > 0xFFF:  # wrapped: borrow the next ms
                        ms += 1
                        self.counter = 0
                else:
                    self.counter = 0
                self.last_ms = ms
                if self.used + 8 > len(self.pool):
                    self.pool = os.urandom(4096)
                    self.used = 0
                rnd = int.from_bytes(self.pool[self.used:self.used + 8], "big")
                self.used += 8
                v = (
                    (ms & 0xFFFFFFFFFFFF) << 80
                    | 0x7 << 76
                    | self.counter << 64
                    | 0b10 << 62
                    | (rnd & 0x3FFFFFFFFFFFFFFF)
                )
                h = "%032x" % v
                out.append("%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:]))
        return out


_idgen = _IdGen()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_idgen.reset_after_fork)


def new_id() -> str:
    """A new job id: a UUIDv7, time-ordered and monotonic in this process."""
    return _idgen.ids(1)[0]


def new_ids(n: int) -> List[str]:
    """n new job ids, in order."""
    return _idgen.ids(n)


# ---- times ----


def now_ms() -> int:
    """Wall-clock time in Unix ms."""
    return time.time_ns() // 1_000_000


def format_time(ms: int) -> str:
    """Unix ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (jobd_format_rfc3339)."""
    ms = min(max(ms, -62167219200000), _RUN_AT_MAX_MS)
    secs, msec = divmod(ms, 1000)
    t = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=secs)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        t.year, t.month, t.day, t.hour, t.minute, t.second, msec)


def _seconds(what: str, v: Seconds) -> float:
    if isinstance(v, _dt.timedelta):
        v = v.total_seconds()
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InvalidJob(what, "must be a number of seconds or a timedelta, not %r" % (v,))
    if not math.isfinite(v) or v < 0:
        raise InvalidJob(what, "must be a finite number of seconds >= 0, not %r" % (v,))
    if v > _HUNDRED_YEARS_S:
        raise InvalidJob(what, "is out of range (at most 100 years)")
    return float(v)


def _ms(what: str, v: Seconds) -> int:
    return int(round(_seconds(what, v) * 1000))


def _run_at_ms(v: Union[_dt.datetime, int, float, str]) -> int:
    if isinstance(v, str):  # RFC 3339, as in a jobctl batch line
        try:
            v = _dt.datetime.fromisoformat(v[:-1] + "+00:00" if v[-1:] in "Zz" else v)
        except ValueError:
            raise InvalidJob("run_at", "%r is not an RFC 3339 time" % (v,)) from None
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None or v.utcoffset() is None:
            raise InvalidJob("run_at", "must be a timezone-aware datetime (naive: which zone?)")
        ms = (v - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)) // _dt.timedelta(
            milliseconds=1)
    elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        ms = int(math.floor(v * 1000))  # Unix seconds
    else:
        raise InvalidJob("run_at", "must be an aware datetime or Unix seconds, not %r" % (v,))
    if ms < 0 or ms > _RUN_AT_MAX_MS:
        raise InvalidJob("run_at", "is out of range (1970 .. 9999)")
    # 0 means "now" in the protocol; the epoch is in the past anyway (as jobctl --at).
    return ms or 1


# ---- a checked job ----


@dataclass
class JobSpec:
    """One checked job, ready to encode. Built by :func:`make_spec`."""

    queue: str
    type: str
    payload_json: str
    priority: int = DEFAULT_PRIORITY
    max_attempts: int = 0  # 0: not set (the handler's, else 5)
    timeout_s: int = 0  # 0: none (the handler's)
    run_at_ms: int = 0  # 0: use delay_ms
    delay_ms: int = 0
    idempotency_key: Optional[str] = None
    traceparent: Optional[str] = None
    id: Optional[str] = None
    retry_base_ms: int = 0
    retry_cap_ms: int = 0

    def run_at(self, created_ms: int) -> int:
        """The enqueue script's run_at in ms (0: now)."""
        return self.run_at_ms or (created_ms + self.delay_ms if self.delay_ms else 0)


def _name(what: str, v: Any, rx: "re.Pattern[str]", chars: str) -> str:
    if not isinstance(v, str) or not v:
        raise InvalidJob(what, "is required (a non-empty string)")
    if not rx.fullmatch(v):
        raise InvalidJob(
            what, '"%.64s" is not 1..%d characters of [A-Za-z0-9%s]' % (v, _NAME_MAX, chars))
    return v


def encode_payload(payload: Any, payload_max: int = PAYLOAD_MAX) -> str:
    """The payload as the envelope stores it: compact JSON text, UTF-8 of at
    most payload_max bytes. Raises InvalidJob / PayloadTooLarge."""
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidJob("payload", "cannot be encoded as JSON: %s" % e) from None
    # ASCII text is its own UTF-8 length; only other text needs encoding.
    if text.isascii():
        n = len(text)
    else:
        try:
            n = len(text.encode("utf-8"))
        except UnicodeEncodeError as e:
            raise InvalidJob("payload", "holds text that is not valid Unicode: %s" % e) from None
    if n > payload_max:
        raise PayloadTooLarge(
            "payload", "is %d bytes, over the limit of %d" % (n, payload_max))
    return text


def make_spec(
    queue: str,
    type: str,
    payload: Any = None,
    *,
    priority: Optional[int] = None,
    delay: Optional[Seconds] = None,
    run_at: Optional[Union[_dt.datetime, int, float, str]] = None,
    max_attempts: Optional[int] = None,
    timeout: Optional[Seconds] = None,
    key: Optional[str] = None,
    traceparent: Optional[str] = None,
    id: Optional[str] = None,
    retry_base: Optional[Seconds] = None,
    retry_cap: Optional[Seconds] = None,
    payload_max: int = PAYLOAD_MAX,
) -> JobSpec:
    """Checks one job as jobd_job_spec_check does and returns its spec.
    Raises :class:`InvalidJob` (``.field`` names the culprit)."""
    _name("queue", queue, _QUEUE_RE, "._-")
    _name("type", type, _TYPE_RE, "._:-")
    s = JobSpec(queue, type, "null")
    if id is not None:
        if not isinstance(id, str) or not _ID_RE.fullmatch(id):
            raise InvalidJob("id", '"%.64s" must be 1..%d characters of [A-Za-z0-9._:-]'
                             % (id, _ID_MAX))
        s.id = id
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidJob("priority", "must be an integer in 0..9, not %r" % (priority,))
        if not 0 <= priority <= 9:
            raise InvalidJob("priority", "%d is outside 0..9" % priority)
        s.priority = priority
    if max_attempts is not None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise InvalidJob("max_attempts", "must be an integer in 1..1000, not %r"
                             % (max_attempts,))
        if not 1 <= max_attempts <= 1000:
            raise InvalidJob("max_attempts", "%d is outside 1..1000" % max_attempts)
        s.max_attempts = max_attempts
    if timeout is not None:
        ms = _ms("timeout", timeout)
        s.timeout_s = (ms + 999) // 1000  # whole seconds, never rounded to "none"
    if delay is not None and run_at is not None:
        raise InvalidJob("run_at", "give delay or run_at, not both")
    if delay is not None:
        s.delay_ms = _ms("delay", delay)
    if run_at is not None:
        s.run_at_ms = _run_at_ms(run_at)
    if retry_base is not None:
        s.retry_base_ms = _ms("retry_base", retry_base)
    if retry_cap is not None:
        s.retry_cap_ms = _ms("retry_cap", retry_cap)
    if key is not None:
        if not isinstance(key, str):
            raise InvalidJob("key", "the idempotency key must be a string")
        try:
            kl = len(key.encode("utf-8"))
        except UnicodeEncodeError:
            kl = -1
        if not 1 <= kl <= _KEY_MAX:
            raise InvalidJob("key", "the idempotency key must be 1..%d bytes of UTF-8" % _KEY_MAX)
        s.idempotency_key = key
    if traceparent is not None:
        if not isinstance(traceparent, str) or not _TRACEPARENT_RE.fullmatch(traceparent):
            raise InvalidJob("traceparent", '"%.64s" is not a W3C traceparent' % (traceparent,))
        s.traceparent = traceparent
    s.payload_json = encode_payload(payload, payload_max)
    return s


# ---- encoding ----


def _jstr(s: str) -> str:
    """s as a JSON string, escaped as libjobd's put_str does: only '"', '\\'
    and control characters (as \\u00XX); the rest is kept as UTF-8."""
    if s.isalnum() and s.isascii():
        return '"' + s + '"'
    out = []
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _seconds_text(ms: int) -> str:
    """ms as a JSON number of seconds: 1500 -> 1.5, 2000 -> 2."""
    whole, frac = divmod(ms, 1000)
    if not frac:
        return str(whole)
    return ("%d.%03d" % (whole, frac)).rstrip("0")


def encode(s: JobSpec, job_id: str, created_ms: int, created_at: Optional[str] = None) -> str:
    """The v1 envelope of spec s with this id and creation time, as the
    compact JSON text libjobd writes (field order included)."""
    parts = [
        '{"v":1,"id":"', job_id, '","queue":"', s.queue, '","type":"', s.type,
        '","payload":', s.payload_json, ',"priority":', str(s.priority),
    ]
    if s.max_attempts:
        parts += (',"max_attempts":', str(s.max_attempts))
    parts += (',"created_at":"', created_at or format_time(created_ms), '"')
    if s.timeout_s:
        parts += (',"timeout_s":', str(s.timeout_s))
    if s.retry_base_ms:
        parts += (',"retry_base_s":', _seconds_text(s.retry_base_ms))
    if s.retry_cap_ms:
        parts += (',"retry_cap_s":', _seconds_text(s.retry_cap_ms))
    run_at = s.run_at(created_ms)
    if run_at:
        parts += (',"run_at":"', format_time(run_at), '"')
    if s.idempotency_key is not None:
        parts += (',"idempotency_key":', _jstr(s.idempotency_key))
    if s.traceparent is not None:
        parts += (',"traceparent":"', s.traceparent, '"')
    parts.append("}")
    return "".join(parts)


# ---- reading a stored job ----

_C_INT = re.compile(r"\s*[+-]?\d+")
_C_FLOAT = re.compile(r"\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan)", re.I)


def _c_int(v: str) -> int:
    m = _C_INT.match(v)
    return int(m.group(0)) if m else 0


def _c_float(v: str) -> float:
    m = _C_FLOAT.match(v)
    return float(m.group(0)) if m else 0.0


def _json_or_string(v: str) -> Any:
    try:
        return json.loads(v)
    except ValueError:
        return v


def status_from_hash(h: Mapping[str, str], job_id: str, queue: str) -> Optional[Dict[str, Any]]:
    """The status object of a job hash (HGETALL, decoded), the same object
    ``jobctl status --json`` prints (envelope_status in envelope.c), or None
    for an empty hash (no such job)."""
    if not h:
        return None
    text = h.get("env")
    env: Any = None
    if text is not None:
        try:
            env = json.loads(text)
        except ValueError:
            env = None
        if not isinstance(env, dict):
            env = {"raw_envelope": text}
    else:
        # A record with no envelope (garbage; it goes dead when claimed) is
        # still shown: its id, queue and state.
        env = {"id": job_id, "queue": queue}
    env.update(attempt=0, progress=0.0, checkpoint=None, result=None, error=None,
               worker=None, started_at=None, finished_at=None)
    for f, v in h.items():
        if f in ("state", "error", "worker"):
            env[f] = v
        elif f == "attempt":
            env[f] = _c_int(v)
        elif f == "progress":
            env[f] = _c_float(v)
        elif f in ("checkpoint", "result"):
            env[f] = _json_or_string(v)
        elif f in ("started_at", "finished_at", "lease_until", "run_at"):
            env[f] = format_time(_c_int(v))
        elif f == "cancel":
            env["cancel_requested"] = True
    return env


@dataclass(frozen=True)
class JobStatus:
    """A job's envelope and state. ``data`` is the whole status object, the
    same as ``jobctl status --json`` prints; the attributes are its common
    fields."""

    id: str
    queue: str
    type: Optional[str]
    state: Optional[str]
    attempt: int
    progress: float
    payload: Any
    checkpoint: Any
    result: Any
    error: Optional[str]
    worker: Optional[str]
    priority: Optional[int]
    created_at: Optional[str]
    started_at: Optional[str]
    finished_at: Optional[str]
    data: Dict[str, Any] = field(repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        """True once the job succeeded, is dead or was canceled."""
        return self.state in TERMINAL_STATES

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "JobStatus":
        return cls(
            id=d.get("id", ""), queue=d.get("queue", ""), type=d.get("type"),
            state=d.get("state"), attempt=d.get("attempt", 0), progress=d.get("progress", 0.0),
            payload=d.get("payload"), checkpoint=d.get("checkpoint"), result=d.get("result"),
            error=d.get("error"), worker=d.get("worker"), priority=d.get("priority"),
            created_at=d.get("created_at"), started_at=d.get("started_at"),
            finished_at=d.get("finished_at"), data=d)


class Event(NamedTuple):
    """One change of a watched job, as :meth:`watch` yields it.

    ``kind`` is ``"state"`` (the first event, read when the watch began, and
    every state change) or ``"progress"``; ``state`` and ``progress`` are the
    job's state and progress (0..1) after the change.
    """

    id: str
    kind: str
    state: str
    progress: float

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def apply_message(ev: Event, message: str) -> Optional[Event]:
    """The event a message on the job's channel makes of the previous one
    (wait.c's apply_message), or None if it changes nothing we know."""
    if ev.terminal:
        return None
    if message.startswith("progress"):
        p = ev.progress
        if message[8:9] == ":":
            p = _c_float(message[9:])
        # claim.lua publishes nothing: progress is how a watcher learns that
        # a job it saw queued now runs.
        st = "active" if ev.state in ("queued", "scheduled") else ev.state
        return Event(ev.id, "progress", st, p)
    if message in STATES:
        return Event(ev.id, "state", message, 1.0 if message == "succeeded" else ev.progress)
    return None


def parse_stats(reply: List[Any]) -> Dict[str, Any]:
    """One queue's stats.lua reply as jobctl stats --json shows it."""
    out: Dict[str, Any] = {s: int(reply[i]) for i, s in enumerate(STATES)}
    oldest = int(reply[6])
    out["oldest_age_s"] = None if oldest < 0 else oldest / 1000.0
    kv = reply[7]
    out["counters"] = {kv[i]: _c_int(kv[i + 1]) for i in range(0, len(kv) - 1, 2)}
    return out
