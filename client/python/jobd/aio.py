"""jobd.AsyncClient: the asyncio client, on redis-py's redis.asyncio.

The same operations as :class:`jobd.Client`, as coroutines, plus
:meth:`AsyncClient.watch`, an async iterator of a job's events -- what an
API endpoint turns into a Server-Sent Events stream.

DESIGN: an AsyncClient holds one connection pool (``max_connections``) for
commands and ONE more connection for pub/sub, shared by every watch of the
client: a web worker streaming the progress of a thousand jobs holds
``max_connections + 1`` connections, not a thousand. A reader task owns that
connection's input and hands each message to the watches of its channel.
A watch subscribes first, waits for Redis to confirm the subscription, then
marks the job watched and reads its state (watch.lua), so no change falls in
between (wait.c does the same). If the pub/sub connection breaks, every
watch subscribes again on a new one and reads the state again, so a short
loss of the connection costs no event a caller needs (the state read after
it is the truth); only if Redis stays away does a watch raise
:class:`RedisUnavailable`.
"""
from __future__ import annotations

import asyncio
import random
from collections import deque
from contextlib import asynccontextmanager
from typing import (Any, AsyncIterator, Deque, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Set, Tuple)

import redis.asyncio as aredis
import redis.exceptions as rexc
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from . import _batch as B
from . import _proto as P
from . import envelope as E
from ._base import BaseClient
from .errors import (BatchExists, BatchNotFound, InvalidJob, JobdError, JobNotFound,
                     RedisUnavailable, WaitTimeout)
from .schema import script
from .url import CLUSTER, SENTINEL

__all__ = ["AsyncClient"]


class _BlockingSentinelPool(SentinelConnectionPool, aredis.BlockingConnectionPool):
    """The primary's connections, found through Sentinel, in a pool whose
    callers wait for a free connection (as on a single Redis)."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        # (Sentinel's pool drops the idle connections when the primary
        # changed: those waiting in the queue, not those in use.)
        if inuse_connections:
            await aredis.BlockingConnectionPool.disconnect(self)
            return
        for conn in list(self.pool._queue):  # type: ignore[attr-defined]
            if conn is not None:
                await _quietly(conn.disconnect())

_LOST = object()  # put in a watch's queue when the pub/sub connection broke
_RESUBSCRIBE_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0)  # then RedisUnavailable


class _Subscriber:
    """One pub/sub connection shared by the watches of a client."""

    def __init__(self, redis_client: Any, where: str) -> None:
        # An aredis.Redis, or a callable making one per connection (a
        # cluster: any node will do, PUBLISH reaching every node).
        self._redis = redis_client
        self._made: Optional["aredis.Redis"] = None
        self._where = where
        self._ps: Optional[Any] = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._listeners: Dict[str, Set["asyncio.Queue[Any]"]] = {}
        # One future per SUBSCRIBE sent and not yet confirmed, per channel, in
        # order: Redis confirms them in the order it got them.
        self._pending: Dict[str, Deque["asyncio.Future[None]"]] = {}
        self._lock: Optional[asyncio.Lock] = None

    async def subscribe(self, channel: str, q: "asyncio.Queue[Any]") -> None:
        """Adds q as a listener of channel; returns once Redis confirmed the
        subscription (messages published from then on reach q)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._ps is None:
                r = self._redis
                if callable(r):
                    if self._made is not None:
                        await _quietly(self._made.connection_pool.disconnect())
                    r = self._made = r()
                self._ps = r.pubsub()
                self._listeners, self._pending = {}, {}
            ps = self._ps
            fut: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
            self._listeners.setdefault(channel, set()).add(q)
            self._pending.setdefault(channel, deque()).append(fut)
            try:
                await ps.subscribe(channel)
            except (rexc.RedisError, OSError) as e:
                self._broken(ps, e)
                raise P.translate(e, self._where, "SUBSCRIBE") from e
            if self._task is None:
                self._task = asyncio.ensure_future(self._read(ps))
        await fut

    async def unsubscribe(self, channel: str, q: "asyncio.Queue[Any]") -> None:
        """Removes q; the last listener of a channel unsubscribes it."""
        ls = self._listeners.get(channel)
        if ls is None:
            return
        ls.discard(q)
        if ls or self._pending.get(channel) or self._ps is None:
            return
        del self._listeners[channel]
        try:
            await self._ps.unsubscribe(channel)
        except (rexc.RedisError, OSError):
            pass  # the reader sees the broken connection too

    async def _read(self, ps: Any) -> None:
        try:
            while True:
                resp = await ps.parse_response(block=True)
                msg = await ps.handle_message(resp) if resp is not None else None
                if msg is None:
                    continue
                kind = msg["type"]
                channel = P.text(msg["channel"])
                if kind == "message":
                    data = P.text(msg["data"])
                    for q in list(self._listeners.get(channel, ())):
                        q.put_nowait(data)
                elif kind == "subscribe":
                    dq = self._pending.get(channel)
                    if dq:
                        fut = dq.popleft()
                        if not dq:
                            del self._pending[channel]
                        if not fut.done():
                            fut.set_result(None)
                    if not dq and not self._listeners.get(channel):
                        # Its watch gave up (timed out) before the
                        # confirmation came: nobody listens any more.
                        self._listeners.pop(channel, None)
                        asyncio.ensure_future(_quietly(ps.unsubscribe(channel)))
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: B902 - every failure ends this connection
            self._broken(ps, e)

    def _broken(self, ps: Any, e: BaseException) -> None:
        """The connection is gone: every watch on it starts over."""
        if self._ps is not ps:
            return
        err = P.translate(e, self._where, "pub/sub")
        for dq in self._pending.values():
            for fut in dq:
                if not fut.done():
                    fut.set_exception(err)
        for ls in self._listeners.values():
            for q in ls:
                q.put_nowait(_LOST)
        self._ps, self._task = None, None
        self._listeners, self._pending = {}, {}
        asyncio.ensure_future(_quietly(ps.reset()))

    async def close(self) -> None:
        task, ps = self._task, self._ps
        self._ps, self._task = None, None
        if task is not None:
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: B902 - cancelled, or it had failed
                pass
        if ps is not None:
            await _quietly(ps.reset())
        for ls in self._listeners.values():
            for q in ls:
                q.put_nowait(_LOST)
        self._listeners, self._pending = {}, {}
        if self._made is not None:
            await _quietly(self._made.connection_pool.disconnect())
            self._made = None


async def _quietly(aw: Any) -> None:
    try:
        await aw
    except BaseException:  # noqa: B902 - closing a broken connection
        pass


class AsyncClient(BaseClient):
    """An asyncio jobd client; the options are :class:`jobd.Client`'s.

    ``max_connections`` sizes this client's pool: in a web server, make one
    client per worker process (e.g. in the app's lifespan) and size it for
    that worker, since pools multiply by workers; watches share one more
    connection. Nothing connects until the first call or :meth:`connect`,
    which checks the layout version (``PREFIX:{:global}:schema``) and loads the
    scripts. Close it with :meth:`close` (or ``async with``).
    """

    def __init__(self, url: Optional[str] = None, **options: Any) -> None:
        super().__init__(url, **options)
        self._cluster = self.url.kind == CLUSTER
        self._pool: Any = None
        self._sub_pool: Any = None
        if self._cluster:
            # Each script call touches one slot (a queue's hash tag, or
            # {:global}): RedisCluster routes EVALSHA by its KEYS.
            self._r: Any = RedisCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in self.url.hosts],
                socket_timeout=self.timeout, **self._conn_kwargs)
            self._subscriber = _Subscriber(self._sub_node, self._where)
        elif self.url.kind == SENTINEL:
            sentinel = Sentinel(self.url.hosts, sentinel_kwargs={
                "socket_timeout": self.timeout, "socket_connect_timeout": self.timeout})
            self._r = sentinel.master_for(
                self.url.master, connection_pool_class=_BlockingSentinelPool,
                max_connections=self.max_connections, timeout=self.timeout,
                socket_timeout=self.timeout, **self._conn_kwargs)
            self._pool = self._r.connection_pool
            sub = sentinel.master_for(self.url.master, socket_timeout=None,
                                      max_connections=4, **self._conn_kwargs)
            self._sub_pool = sub.connection_pool
            self._subscriber = _Subscriber(sub, self._where)
        else:
            cls = (aredis.UnixDomainSocketConnection if self.url.is_unix
                   else aredis.Connection)
            self._pool = aredis.BlockingConnectionPool(
                connection_class=cls, max_connections=self.max_connections,
                timeout=self.timeout, socket_timeout=self.timeout, **self._conn_kwargs)
            self._r = aredis.Redis(connection_pool=self._pool)
            # The pub/sub connection waits as long as a watch lasts: no read timeout.
            self._sub_pool = aredis.ConnectionPool(connection_class=cls, socket_timeout=None,
                                                   max_connections=4, **self._conn_kwargs)
            self._subscriber = _Subscriber(aredis.Redis(connection_pool=self._sub_pool),
                                           self._where)
        self._ready = False
        self._connect_lock: Optional[asyncio.Lock] = None

    def _sub_node(self) -> "aredis.Redis":
        """A connection for the watches on a cluster: PUBLISH is broadcast
        to every node, so one node hears every job's channel. A node the
        cluster knows now (the first seed before the first command)."""
        nodes = self._r.get_primaries() if not self._r._initialize else []
        n = random.choice(nodes) if nodes else None  # (after a failure: likely another)
        host, port = (n.host, n.port) if n else random.choice(self.url.hosts)
        return aredis.Redis(host=host, port=port, socket_timeout=None, **self._conn_kwargs)

    @classmethod
    def from_env(cls, **options: Any) -> "AsyncClient":
        """A client on ``$JOBD_REDIS_URL`` with prefix ``$JOBD_PREFIX``."""
        return cls(**{**cls.env_options(), **options})

    async def connect(self) -> "AsyncClient":
        """Checks the layout version and loads the scripts (once). Raises
        RedisUnavailable or SchemaMismatch. Returns the client."""
        if self._ready:
            return self
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._ready:
                return self
            async with self._op("schema check"):
                for key in P.schema_keys(self.prefix):
                    pipe = self._r.pipeline(transaction=False)
                    pipe.set(key, P.REDIS_SCHEMA, nx=True)
                    pipe.get(key)
                    _, value = await pipe.execute()
                    P.schema_result(key, value)
            async with self._op("SCRIPT LOAD"):
                if self._cluster:  # SCRIPT LOAD goes to every primary
                    for name in P.CLIENT_SCRIPTS:
                        await self._r.script_load(script(name).text)
                else:
                    pipe = self._r.pipeline(transaction=False)
                    for name in P.CLIENT_SCRIPTS:
                        pipe.script_load(script(name).text)
                    await pipe.execute()
            self._ready = True
        return self

    async def close(self) -> None:
        """Ends every watch and closes every connection."""
        await self._subscriber.close()
        if self._cluster:
            await self._r.close()
            return
        await self._pool.disconnect()
        await self._sub_pool.disconnect()

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ---- plumbing ----

    @asynccontextmanager
    async def _op(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except JobdError:
            raise
        except (rexc.RedisError, OSError) as e:
            raise P.translate(e, self._where, what) from e

    async def _eval(self, name: str, queue: str, *args: Any) -> Any:
        await self.connect()
        cmd = P.evalsha(name, self.prefix, queue, *args)
        async with self._op(name):
            try:
                return await self._r.execute_command(*cmd)
            except rexc.ResponseError as e:
                if not P.is_noscript(e):
                    raise
                await self._r.script_load(script(name).text)
                return await self._r.execute_command(*cmd)

    async def _find_queue(self, job_id: str) -> str:
        if not isinstance(job_id, str) or not job_id:
            raise InvalidJob("id", "must be a non-empty string")
        await self.connect()
        async with self._op("find job"):
            queues = sorted(P.text(q) for q in await self._r.smembers(P.global_key(self.prefix, "queues")))
            pipe = self._r.pipeline(transaction=False)
            for q in queues:
                pipe.exists(P.job_key(self.prefix, q, job_id))
            for q, hit in zip(queues, await pipe.execute()):
                if hit:
                    return q
        raise JobNotFound(job_id)

    # ---- submitting ----

    async def submit(self, queue: str, type: str, payload: Any = None, **options: Any) -> str:
        """Submits one job; returns its id. See :meth:`jobd.Client.submit`."""
        spec = self._spec(queue, type, payload, **options)
        return (await self._submit([spec]))[0][0]

    async def submit_many(self, jobs: Iterable[Mapping[str, Any]], *,
                          batch: Optional[str] = None, on_complete: Optional[str] = None,
                          **defaults: Any) -> List[str]:
        """Submits many jobs, pipelined, or with ``batch=NAME`` (and
        ``on_complete``) as a named batch. See
        :meth:`jobd.Client.submit_many`."""
        if batch is None:
            self._no_batch(on_complete)
            specs = self._specs(jobs, defaults)
            return (await self._submit(specs))[0] if specs else []
        name, on_type, on_queue, specs = self._batch_specs(jobs, batch, on_complete, defaults)
        await self.connect()
        key = B.record_key(self.prefix, name)
        async with self._op("batch record"):
            # The record first, claimed with HSETNX: a name is used once.
            if not await self._r.hsetnx(key, "created_at", E.now_ms()):
                raise BatchExists(name)
            await self._r.execute_command("HSET", key, *B.record_fields(specs, on_type, on_queue))
        ids: List[str] = [""] * len(specs)
        qkey = P.global_key(self.prefix, "queues")
        if on_type:  # the completion job's queue is listed like any other
            async with self._op("SADD"):
                await self._r.sadd(qkey, on_queue)
        for first, count in B.chunks(specs):
            queue = specs[first].queue
            async with self._op("SADD"):
                await self._r.sadd(qkey, queue)
            reply = await self._eval("batch", queue,
                                     *B.chunk_args(name, specs, first, count, ids))
            B.chunk_result(name, reply, first, count, ids)
        return ids

    async def _submit(self, specs: Sequence[E.JobSpec]) -> Tuple[List[str], List[bool]]:
        await self.connect()
        if self._cluster:
            return await self._submit_cluster(specs)
        n = len(specs)
        ids: List[str] = [""] * n
        created: List[bool] = [False] * n
        qkey = P.global_key(self.prefix, "queues")
        async with self._op("enqueue"):
            conn = await self._pool.get_connection("EVALSHA")
            ok = False
            try:
                inflight: deque = deque()
                refused: List[Tuple[int, int, List[Any]]] = []

                async def read_head() -> None:
                    first, count, args = inflight.popleft()
                    try:
                        reply = await conn.read_response()
                    except rexc.ResponseError as e:
                        if count and P.is_noscript(e):
                            refused.append((first, count, args))
                            return
                        raise
                    if count:
                        created[first:first + count] = P.enqueue_reply(reply, first, count, ids)

                for first, count in P.plan(specs):
                    if len(inflight) == P.SUBMIT_WINDOW:
                        await read_head()
                    if count:
                        args = P.enqueue_command(self.prefix, specs, first, count, ids)
                    else:
                        args = ["SADD", qkey, specs[first].queue]
                    await conn.send_packed_command([P.resp(args)])
                    inflight.append((first, count, args))
                while inflight:
                    await read_head()
                if refused:
                    await conn.send_command("SCRIPT", "LOAD", script("enqueue").text)
                    await conn.read_response()
                    for first, count, args in refused:
                        await conn.send_packed_command([P.resp(args)])
                    for first, count, args in refused:
                        created[first:first + count] = P.enqueue_reply(
                            await conn.read_response(), first, count, ids)
                ok = True
            finally:
                if not ok:  # replies may be left unread: that connection goes
                    await conn.disconnect()
                await self._pool.release(conn)
        return ids, created

    async def _submit_cluster(self, specs: Sequence[E.JobSpec]
                              ) -> Tuple[List[str], List[bool]]:
        """_submit on a Redis Cluster: cluster pipelines of SUBMIT_WINDOW
        calls, each sent to its queue's node (see Client._submit_cluster)."""
        n = len(specs)
        ids: List[str] = [""] * n
        created: List[bool] = [False] * n
        qkey = P.global_key(self.prefix, "queues")
        async with self._op("enqueue"):
            runs = list(P.plan(specs))
            for w in range(0, len(runs), P.SUBMIT_WINDOW):
                pipe = self._r.pipeline()
                sent = []
                for first, count in runs[w:w + P.SUBMIT_WINDOW]:
                    if count:
                        args = P.enqueue_command(self.prefix, specs, first, count, ids)
                    else:
                        args = ["SADD", qkey, specs[first].queue]
                    pipe.execute_command(*args)
                    sent.append((first, count, args))
                replies = await pipe.execute(raise_on_error=False)
                for (first, count, args), reply in zip(sent, replies):
                    if isinstance(reply, Exception):
                        if not (count and P.is_noscript(reply)):
                            raise reply
                        await self._r.script_load(script("enqueue").text)
                        reply = await self._r.execute_command(*args)
                    if count:
                        created[first:first + count] = P.enqueue_reply(reply, first, count, ids)
        return ids, created

    # ---- inspecting and managing ----

    async def status(self, job_id: str) -> E.JobStatus:
        """The job's envelope and state. Raises JobNotFound."""
        queue = await self._find_queue(job_id)
        async with self._op("HGETALL"):
            h = P.decode_hash(await self._r.hgetall(P.job_key(self.prefix, queue, job_id)))
        d = E.status_from_hash(h, job_id, queue)
        if d is None:
            raise JobNotFound(job_id)
        return E.JobStatus.from_dict(d)

    async def cancel(self, job_id: str) -> str:
        """Cancels a job: ``"canceled"`` or ``"requested"``. See Client.cancel."""
        queue = await self._find_queue(job_id)
        return P.cancel_result(job_id, await self._eval("cancel", queue, job_id, P.TTL_DEAD_MS))

    async def retry(self, job_id: str) -> None:
        """Puts a dead job back to queued. See Client.retry."""
        queue = await self._find_queue(job_id)
        P.retry_result(job_id, await self._eval("retry", queue, job_id, P.RETRY_SLICE))

    async def retry_dead(self, queue: str) -> int:
        """Puts every dead job of queue back; returns how many."""
        E.make_spec(queue, "x")
        await self.connect()
        async with self._op("ZCARD"):
            n = await self._r.zcard("%s:{%s}:dead" % (self.prefix, queue))
        total = 0
        for _ in range(n // P.RETRY_SLICE + 1):
            moved = int(await self._eval("retry", queue, "", P.RETRY_SLICE))
            total += moved
            if moved == 0:
                break
        return total

    async def batch_status(self, name: str) -> Dict[str, Any]:
        """A named batch, as ``jobctl batch status NAME --json``. See
        :meth:`jobd.Client.batch_status`. Raises BatchNotFound."""
        name = self._batch_name(name)
        await self.connect()
        async with self._op("batch status"):
            qtext, cq = await self._r.hmget(B.record_key(self.prefix, name), "queues",
                                            "on_complete_queue")
            queues = B.record_queues(qtext)
            if queues is None:
                raise BatchNotFound(name)
            parts = []
            for q in queues:
                if not isinstance(q, str):
                    continue
                ids = await self._r.lrange(B.part_key(self.prefix, q, name) + ":ids", 0, -1)
                pipe = self._r.pipeline(transaction=False)
                for i in ids:
                    pipe.hmget(P.job_key(self.prefix, q, P.text(i)), "state", "progress")
                parts.append(await pipe.execute() if ids else [])
            completion = None
            if cq:
                completion = await self._r.hget(B.part_key(self.prefix, P.text(cq), name),
                                                "completion")
        return B.summary(name, queues, parts, completion)

    async def queues(self) -> List[str]:
        await self.connect()
        async with self._op("SMEMBERS"):
            return sorted(P.text(q) for q in await self._r.smembers(P.global_key(self.prefix, "queues")))

    async def stats(self) -> Dict[str, Dict[str, Any]]:
        """Per queue figures, as ``jobctl stats --json``."""
        out = {}
        for q in await self.queues():
            r = await self._eval("stats", q)
            out[q] = E.parse_stats([r[i] for i in range(7)] + [[P.text(x) for x in r[7]]])
        return out

    # ---- waiting ----

    async def watch(self, job_id: str, timeout: Optional[float] = None
                    ) -> AsyncIterator[E.Event]:
        """Yields the job's state, then every change, until it ends (the
        last event is terminal). Pub/sub on the client's shared subscriber
        connection, no polling. Raises JobNotFound, WaitTimeout after
        ``timeout`` seconds, RedisUnavailable when Redis stays unreachable.

        Close it early with ``aclose()`` (or ``contextlib.aclosing``) to
        unsubscribe at once."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        queue = await self._find_queue(job_id)
        channel = P.event_channel(self.prefix, queue, job_id)
        last: Optional[E.Event] = None
        lost = 0

        def left() -> Optional[float]:
            if deadline is None:
                return None
            t = deadline - loop.time()
            if t <= 0:
                raise WaitTimeout(job_id, timeout or 0, last.state if last else None)
            return t

        while True:
            q: "asyncio.Queue[Any]" = asyncio.Queue()
            try:
                try:
                    await asyncio.wait_for(self._subscriber.subscribe(channel, q), left())
                    ev = P.watch_event(job_id, await self._eval("watch", queue, job_id))
                except asyncio.TimeoutError:
                    left()
                    raise
                except RedisUnavailable:
                    ev = None
                if ev is not None:
                    lost = 0
                    if last is None or (ev.state, ev.progress) != (last.state, last.progress):
                        last = ev
                        yield ev
                    while not ev.terminal:
                        try:
                            m = await asyncio.wait_for(q.get(), left())
                        except asyncio.TimeoutError:
                            left()
                            raise
                        if m is _LOST:
                            break
                        nxt = E.apply_message(ev, m)
                        if nxt is not None:
                            ev = last = nxt
                            yield ev
                    if ev.terminal:
                        return
            finally:
                await self._subscriber.unsubscribe(channel, q)
            # The pub/sub connection broke: subscribe again on a new one.
            if lost == len(_RESUBSCRIBE_DELAYS):
                raise RedisUnavailable(
                    "Redis at %s: the pub/sub connection broke and could not be made again "
                    "while watching job %s" % (self._where, job_id))
            await asyncio.sleep(_RESUBSCRIBE_DELAYS[lost])
            lost += 1

    async def wait(self, job_id: str, timeout: Optional[float] = None) -> E.JobStatus:
        """Waits until the job ends and returns its status. Raises
        WaitTimeout, JobNotFound, RedisUnavailable."""
        events = self.watch(job_id, timeout)
        try:
            async for _ in events:
                pass
        finally:
            await events.aclose()
        return await self.status(job_id)
