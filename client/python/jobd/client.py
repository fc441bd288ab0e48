"""jobd.Client: the blocking client, on redis-py.

The same operations as libjobd's (include/jobd/client.h), running the same
Lua scripts (schema/redis/) and writing the same envelopes. One Client holds
a connection pool and may be shared by threads; a wait or watch takes one
more connection of its own (pub/sub) while it runs.
"""
from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import redis
import redis.exceptions as rexc
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel, SentinelConnectionPool

from . import _batch as B
from . import _proto as P
from . import envelope as E
from ._base import BaseClient
from .errors import BatchExists, BatchNotFound, InvalidJob, JobdError, JobNotFound, WaitTimeout
from .schema import script
from .url import CLUSTER, SENTINEL

__all__ = ["Client"]


class _BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """The primary's connections, found through Sentinel, in a pool whose
    callers wait for a free connection (as on a single Redis)."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        # (Sentinel's pool drops the idle connections when the primary
        # changed; the blocking pool knows no such argument.)
        if inuse_connections:
            redis.BlockingConnectionPool.disconnect(self)
            return
        for conn in list(self.pool.queue):
            if conn is not None:
                conn.disconnect()


class Client(BaseClient):
    """A blocking jobd client.

    ``url``: ``redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]``,
    ``unix://[USER[:PASSWORD]@]/path.sock[?db=N]``,
    ``redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...]`` (a Redis
    Cluster through any of these nodes) or
    ``redis+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,...]/MASTER[/DB]``
    (None: the default, ``redis://127.0.0.1:6379/0``). ``password_file``: read when the URL has
    no password (default ``$JOBD_REDIS_PASSWORD_FILE``). ``prefix``: the key
    prefix (jobctl's ``--prefix``). ``timeout``: seconds for connecting and
    for each command. ``max_connections``: the pool's size; a caller waits
    (up to ``timeout``) for a free connection (on a cluster, redis-py keeps
    a pool per node that grows as needed). ``payload_max``: the payload
    limit in bytes (1 MiB, as jobd's default).

    Connects at once: checks the layout version under ``PREFIX:{:global}:schema`` and
    loads the scripts, raising :class:`RedisUnavailable` or
    :class:`SchemaMismatch` (like ``jobd_client_new``).
    """

    def __init__(self, url: Optional[str] = None, **options: Any) -> None:
        super().__init__(url, **options)
        self._cluster = self.url.kind == CLUSTER
        if self._cluster:
            # Every key of a queue carries its hash tag and the global keys
            # {:global}, so each script call touches one slot: RedisCluster
            # routes EVALSHA by its KEYS and follows MOVED itself.
            self._r = RedisCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in self.url.hosts],
                socket_timeout=self.timeout, **self._conn_kwargs)
            self._pool = None
            self._sub = self._r  # its pubsub() subscribes through one node
            self._sub_pool = None
        elif self.url.kind == SENTINEL:
            sentinel = Sentinel(self.url.hosts, sentinel_kwargs={
                "socket_timeout": self.timeout, "socket_connect_timeout": self.timeout})
            self._r = sentinel.master_for(
                self.url.master, connection_pool_class=_BlockingSentinelPool,
                max_connections=self.max_connections, timeout=self.timeout,
                socket_timeout=self.timeout, **self._conn_kwargs)
            self._pool = self._r.connection_pool
            self._sub = sentinel.master_for(self.url.master, socket_timeout=None,
                                            **self._conn_kwargs)
            self._sub_pool = self._sub.connection_pool
        else:
            cls = redis.UnixDomainSocketConnection if self.url.is_unix else redis.Connection
            self._pool = redis.BlockingConnectionPool(
                connection_class=cls, max_connections=self.max_connections,
                timeout=self.timeout, socket_timeout=self.timeout, **self._conn_kwargs)
            self._r = redis.Redis(connection_pool=self._pool)
            # Subscribers block for as long as a wait lasts: no read timeout.
            self._sub_pool = redis.ConnectionPool(connection_class=cls, socket_timeout=None,
                                                  **self._conn_kwargs)
            self._sub = redis.Redis(connection_pool=self._sub_pool)
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_env(cls, **options: Any) -> "Client":
        """A client on ``$JOBD_REDIS_URL`` with prefix ``$JOBD_PREFIX``, as
        jobctl reads them; options override."""
        return cls(**{**cls.env_options(), **options})

    def close(self) -> None:
        """Closes every connection. The client cannot be used afterwards."""
        if self._cluster:
            self._r.close()
            return
        self._pool.disconnect()
        self._sub_pool.disconnect()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- plumbing ----

    @contextmanager
    def _op(self, what: str) -> Iterator[None]:
        try:
            yield
        except JobdError:
            raise
        except (rexc.RedisError, OSError) as e:
            raise P.translate(e, self._where, what) from e

    def _connect(self) -> None:
        with self._op("schema check"):
            for key in P.schema_keys(self.prefix):
                pipe = self._r.pipeline(transaction=False)
                pipe.set(key, P.REDIS_SCHEMA, nx=True)
                pipe.get(key)
                _, value = pipe.execute()
                P.schema_result(key, value)
        # (One pipeline per key: on a cluster the two keys sit on different
        # nodes, and a cluster pipeline sends each key's pair to its node.)
        with self._op("SCRIPT LOAD"):
            if self._cluster:  # SCRIPT LOAD goes to every primary
                for name in P.CLIENT_SCRIPTS:
                    self._r.script_load(script(name).text)
                return
            pipe = self._r.pipeline(transaction=False)
            for name in P.CLIENT_SCRIPTS:
                pipe.script_load(script(name).text)
            pipe.execute()

    def _eval(self, name: str, queue: str, *args: Any) -> Any:
        """Runs a script; on NOSCRIPT (Redis restarted or failed over) loads
        it again and runs it once more."""
        cmd = P.evalsha(name, self.prefix, queue, *args)
        with self._op(name):
            try:
                return self._r.execute_command(*cmd)
            except rexc.ResponseError as e:
                if not P.is_noscript(e):
                    raise
                self._r.script_load(script(name).text)
                return self._r.execute_command(*cmd)

    def _find_queue(self, job_id: str) -> str:
        """The queue holding job_id: one SMEMBERS, then EXISTS per queue."""
        if not isinstance(job_id, str) or not job_id:
            raise InvalidJob("id", "must be a non-empty string")
        with self._op("find job"):
            queues = sorted(P.text(q) for q in self._r.smembers(P.global_key(self.prefix, "queues")))
            pipe = self._r.pipeline(transaction=False)
            for q in queues:
                pipe.exists(P.job_key(self.prefix, q, job_id))
            for q, hit in zip(queues, pipe.execute()):
                if hit:
                    return q
        raise JobNotFound(job_id)

    # ---- submitting ----

    def submit(self, queue: str, type: str, payload: Any = None, **options: Any) -> str:
        """Submits one job; returns its id (the first job's id when the
        idempotency key was used before in this queue: nothing new is made).

        ``payload``: any JSON-serialisable value (at most ``payload_max``
        bytes as compact JSON). Options: ``priority`` 0..9 (default 5,
        higher first), ``delay`` (seconds or timedelta) or ``run_at`` (aware
        datetime, Unix seconds or RFC 3339), ``max_attempts`` 1..1000,
        ``timeout`` (seconds, per attempt), ``key`` (idempotency key),
        ``traceparent`` (W3C), ``id`` (choose the id), ``retry_base`` and
        ``retry_cap`` (backoff, seconds).

        Raises :class:`InvalidJob` (nothing written), RedisUnavailable,
        RedisError.
        """
        spec = self._spec(queue, type, payload, **options)
        return self._submit([spec])[0][0]

    def submit_many(self, jobs: Iterable[Mapping[str, Any]], *, batch: Optional[str] = None,
                    on_complete: Optional[str] = None, **defaults: Any) -> List[str]:
        """Submits many jobs, pipelined: enqueue calls of up to 500 jobs of
        one queue, 8 in flight. Each job is a mapping with ``queue``,
        ``type``, ``payload`` and any option of :meth:`submit` (or its name
        in a ``jobctl submit --batch`` line: ``idempotency_key``,
        ``delay_s``, ``timeout_s``, ...); ``defaults`` apply to every job
        that does not set them. Returns the ids in order.

        Every job is checked before anything is sent: one bad job raises
        :class:`InvalidJob` naming its index, and nothing is written.

        ``batch=NAME`` makes them a named batch (``jobctl submit --batch
        FILE --name NAME``), which may span queues; see
        :meth:`batch_status`. A name is used once: a reused one raises
        :class:`BatchExists` and writes nothing. Its jobs take no
        idempotency key (the name is the key: InvalidJob). ``on_complete``
        (``"TYPE"`` or ``"TYPE:QUEUE"``, the queue defaulting to the first
        job's): once every job of the batch has ended, jobd enqueues one
        job of that type, exactly once, whose payload is the summary
        ``{"batch", "total", "counts": {"succeeded", "dead", "canceled"},
        "ids", "ids_truncated"}``. A named batch is sent one call per 500
        jobs, not pipelined. A job whose chosen ``id`` exists raises
        :class:`BatchError`; the chunks before it stay written."""
        if batch is None:
            self._no_batch(on_complete)
            specs = self._specs(jobs, defaults)
            return self._submit(specs)[0] if specs else []
        name, on_type, on_queue, specs = self._batch_specs(jobs, batch, on_complete, defaults)
        key = B.record_key(self.prefix, name)
        with self._op("batch record"):
            # The record first, claimed with HSETNX: a name is used once.
            if not self._r.hsetnx(key, "created_at", E.now_ms()):
                raise BatchExists(name)
            self._r.execute_command("HSET", key, *B.record_fields(specs, on_type, on_queue))
        ids: List[str] = [""] * len(specs)
        qkey = P.global_key(self.prefix, "queues")
        if on_type:  # the completion job's queue is listed like any other
            with self._op("SADD"):
                self._r.sadd(qkey, on_queue)
        for first, count in B.chunks(specs):
            queue = specs[first].queue
            with self._op("SADD"):
                self._r.sadd(qkey, queue)
            reply = self._eval("batch", queue, *B.chunk_args(name, specs, first, count, ids))
            B.chunk_result(name, reply, first, count, ids)
        return ids

    def _submit(self, specs: Sequence[E.JobSpec]) -> Tuple[List[str], List[bool]]:
        if self._cluster:
            return self._submit_cluster(specs)
        n = len(specs)
        ids: List[str] = [""] * n
        created: List[bool] = [False] * n
        qkey = P.global_key(self.prefix, "queues")
        with self._op("enqueue"):
            conn = self._pool.get_connection("EVALSHA")
            ok = False
            try:
                inflight: deque = deque()
                refused: List[Tuple[int, int, List[Any]]] = []

                def read_head() -> None:
                    first, count, args = inflight.popleft()
                    try:
                        reply = conn.read_response()
                    except rexc.ResponseError as e:
                        if count and P.is_noscript(e):
                            refused.append((first, count, args))
                            return
                        raise
                    if count:
                        created[first:first + count] = P.enqueue_reply(reply, first, count, ids)

                # Each call is written as soon as it is built, with at most
                # SUBMIT_WINDOW unanswered, so Redis runs one chunk while we
                # encode the next (client.c client_submit).
                for first, count in P.plan(specs):
                    if len(inflight) == P.SUBMIT_WINDOW:
                        read_head()
                    if count:
                        args = P.enqueue_command(self.prefix, specs, first, count, ids)
                    else:
                        args = ["SADD", qkey, specs[first].queue]
                    conn.send_packed_command([P.resp(args)])
                    inflight.append((first, count, args))
                while inflight:
                    read_head()
                if refused:
                    # The script cache was flushed: load it and send the
                    # refused chunks once more.
                    conn.send_command("SCRIPT", "LOAD", script("enqueue").text)
                    conn.read_response()
                    for first, count, args in refused:
                        conn.send_packed_command([P.resp(args)])
                    for first, count, args in refused:
                        created[first:first + count] = P.enqueue_reply(
                            conn.read_response(), first, count, ids)
                ok = True
            finally:
                # A failure may leave replies unread: that connection goes.
                if not ok:
                    conn.disconnect()
                self._pool.release(conn)
        return ids, created

    def _submit_cluster(self, specs: Sequence[E.JobSpec]) -> Tuple[List[str], List[bool]]:
        """_submit on a Redis Cluster: per queue, a cluster pipeline of its
        enqueue calls (all to the queue's node), SUBMIT_WINDOW calls at a time;
        the queue's registration goes first, to the {:global} node."""
        n = len(specs)
        ids: List[str] = [""] * n
        created: List[bool] = [False] * n
        qkey = P.global_key(self.prefix, "queues")
        with self._op("enqueue"):
            runs = list(P.plan(specs))
            for w in range(0, len(runs), P.SUBMIT_WINDOW):
                window = runs[w:w + P.SUBMIT_WINDOW]
                pipe = self._r.pipeline()
                sent = []
                for first, count in window:
                    if count:
                        args = P.enqueue_command(self.prefix, specs, first, count, ids)
                    else:
                        args = ["SADD", qkey, specs[first].queue]
                    pipe.execute_command(*args)
                    sent.append((first, count, args))
                replies = pipe.execute(raise_on_error=False)
                for (first, count, args), reply in zip(sent, replies):
                    if isinstance(reply, Exception):
                        if not (count and P.is_noscript(reply)):
                            raise reply
                        # The node's script cache was flushed: load, resend.
                        self._r.script_load(script("enqueue").text)
                        reply = self._r.execute_command(*args)
                    if count:
                        created[first:first + count] = P.enqueue_reply(reply, first, count, ids)
        return ids, created

    # ---- inspecting and managing ----

    def status(self, job_id: str) -> E.JobStatus:
        """The job's envelope and state. Raises :class:`JobNotFound`."""
        queue = self._find_queue(job_id)
        with self._op("HGETALL"):
            h = P.decode_hash(self._r.hgetall(P.job_key(self.prefix, queue, job_id)))
        d = E.status_from_hash(h, job_id, queue)
        if d is None:
            raise JobNotFound(job_id)
        return E.JobStatus.from_dict(d)

    def cancel(self, job_id: str) -> str:
        """Cancels a job. Returns ``"canceled"`` when it ended at once (it was
        queued or scheduled) or ``"requested"`` when it is running (its
        worker stops it at its next lease extension). Raises JobNotFound, or
        JobStateError when it has already finished."""
        queue = self._find_queue(job_id)
        return P.cancel_result(job_id, self._eval("cancel", queue, job_id, P.TTL_DEAD_MS))

    def retry(self, job_id: str) -> None:
        """Puts a dead job back to queued with fresh attempts. Raises
        JobNotFound, or JobStateError when it is not dead."""
        queue = self._find_queue(job_id)
        P.retry_result(job_id, self._eval("retry", queue, job_id, P.RETRY_SLICE))

    def retry_dead(self, queue: str) -> int:
        """Puts every dead job of queue back; returns how many."""
        E.make_spec(queue, "x")  # checks the name
        with self._op("ZCARD"):
            slices = self._r.zcard("%s:{%s}:dead" % (self.prefix, queue)) // P.RETRY_SLICE + 1
        total = 0
        for _ in range(slices):
            moved = int(self._eval("retry", queue, "", P.RETRY_SLICE))
            total += moved
            if moved == 0:
                break
        return total

    def batch_status(self, name: str) -> Dict[str, Any]:
        """A named batch: what ``jobctl batch status NAME --json`` prints,
        ``{"name", "total", "counts": {state: n}, "progress" (the mean of
        its jobs', 0..1), "done" (every job ended), "completion" (the
        completion job's id once jobd enqueued it, else None), "queues"}``.
        Raises :class:`BatchNotFound`."""
        name = self._batch_name(name)
        with self._op("batch status"):
            qtext, cq = self._r.hmget(B.record_key(self.prefix, name), "queues",
                                      "on_complete_queue")
            queues = B.record_queues(qtext)
            if queues is None:
                raise BatchNotFound(name)
            parts = []
            for q in queues:
                if not isinstance(q, str):
                    continue
                ids = self._r.lrange(B.part_key(self.prefix, q, name) + ":ids", 0, -1)
                pipe = self._r.pipeline(transaction=False)
                for i in ids:
                    pipe.hmget(P.job_key(self.prefix, q, P.text(i)), "state", "progress")
                parts.append(pipe.execute() if ids else [])
            completion = None
            if cq:
                completion = self._r.hget(B.part_key(self.prefix, P.text(cq), name),
                                          "completion")
        return B.summary(name, queues, parts, completion)

    def queues(self) -> List[str]:
        """Names of the queues that ever received a job."""
        with self._op("SMEMBERS"):
            return sorted(P.text(q) for q in self._r.smembers(P.global_key(self.prefix, "queues")))

    def stats(self) -> Dict[str, Dict[str, Any]]:
        """Per queue: a count per state, ``oldest_age_s`` (None if nothing
        waits) and ``counters`` -- what ``jobctl stats --json`` prints."""
        return {q: E.parse_stats(self._stats_reply(q)) for q in self.queues()}

    def _stats_reply(self, queue: str) -> List[Any]:
        r = self._eval("stats", queue)
        return [r[i] for i in range(7)] + [[P.text(x) for x in r[7]]]

    # ---- waiting ----

    def watch(self, job_id: str, timeout: Optional[float] = None) -> Iterator[E.Event]:
        """Yields the job's state, then every change (progress, state) until
        it ends: a generator over :class:`Event`. Pub/sub, no polling: it
        subscribes to the job's channel, then marks the job watched and reads
        its state (watch.lua), so no change falls in between. Raises
        JobNotFound, :class:`WaitTimeout` after ``timeout`` seconds,
        RedisUnavailable if the connection breaks."""
        deadline = None if timeout is None else time.monotonic() + timeout
        queue = self._find_queue(job_id)
        channel = P.event_channel(self.prefix, queue, job_id)
        ev: Optional[E.Event] = None

        def remaining() -> Optional[float]:
            if deadline is None:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(job_id, timeout or 0, ev.state if ev else None)
            return left

        ps = self._sub.pubsub()
        try:
            with self._op("SUBSCRIBE"):
                ps.subscribe(channel)
                while True:  # the subscription is live once Redis confirms it
                    m = ps.get_message(timeout=_tick(remaining()))
                    if m and m["type"] == "subscribe":
                        break
            ev = P.watch_event(job_id, self._eval("watch", queue, job_id))
            yield ev
            while not ev.terminal:
                with self._op("pub/sub"):
                    m = ps.get_message(timeout=_tick(remaining()))
                if m and m["type"] == "message":
                    nxt = E.apply_message(ev, P.text(m["data"]))
                    if nxt is not None:
                        ev = nxt
                        yield ev
        finally:
            try:
                ps.close()
            except (rexc.RedisError, OSError):
                pass

    def wait(self, job_id: str, timeout: Optional[float] = None) -> E.JobStatus:
        """Waits until the job ends (succeeded, dead or canceled) and returns
        its status. Raises :class:`WaitTimeout`, JobNotFound,
        RedisUnavailable."""
        for _ in self.watch(job_id, timeout):
            pass
        return self.status(job_id)


def _tick(left: Optional[float]) -> float:
    # get_message(timeout=None) would block with no way to see the deadline.
    return 1.0 if left is None else min(left, 1.0)

