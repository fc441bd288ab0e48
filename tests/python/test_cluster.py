"""The Python client on a Redis Cluster and through Sentinel, with jobd
(tests/harness/cluster-fixture.sh: primaries on JOBD_TEST_CLUSTER_BASE..+2,
a replica each on +3..+5; sentinel-fixture.sh: Sentinels on
JOBD_TEST_SENTINEL_BASE+2..+4 naming "mymaster"). ctest runs this file
alone (RESOURCE_LOCK cluster and sentinel); it fails nothing over, and
lists every node as a seed since other tests may have moved the primaries."""
import asyncio
import json
import threading

import pytest
from redis.cluster import ClusterNode, RedisCluster

import jobd
from conftest import Env, need_env


@pytest.fixture
def cluster_url():
    base = int(need_env("JOBD_TEST_CLUSTER_BASE"))
    return "redis+cluster://" + ",".join("127.0.0.1:%d" % (base + i) for i in range(6))


@pytest.fixture
def sentinel_url():
    base = int(need_env("JOBD_TEST_SENTINEL_BASE"))
    return "redis+sentinel://%s/mymaster" % ",".join("127.0.0.1:%d" % (base + i)
                                                     for i in (2, 3, 4))


@pytest.fixture
def raw_cluster():
    base = int(need_env("JOBD_TEST_CLUSTER_BASE"))
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", base + i) for i in range(6)],
                      decode_responses=True)
    yield rc
    rc.close()


def three_queues(rc):
    """Three queue names whose slots sit on three different primaries."""
    seen, out = set(), []
    for i in range(1000):
        q = "pq%d" % i
        node = rc.get_node_from_key("{%s}" % q).name
        if node not in seen:
            seen.add(node)
            out.append(q)
        if len(out) == 3:
            return out
    raise AssertionError("the cluster has fewer than three primaries")


def submit_run_check(url, prefix, tmp_path, queues, use_async):
    """Submits 3 jobs per queue from Python, has jobd --once (on the same
    URL) run them, and checks status, wait and stats from Python."""
    jobs = [{"queue": q, "type": "noop", "payload": {"i": i}} for i in range(3) for q in queues]
    if use_async:
        async def submit():
            async with jobd.AsyncClient(url, prefix=prefix) as c:
                return await c.submit_many(jobs)
        ids = asyncio.run(submit())
    else:
        with jobd.Client(url, prefix=prefix) as c:
            ids = c.submit_many(jobs)
            assert c.status(ids[0]).state == "queued"
    env = Env(url, prefix, tmp_path)
    rc = env.run_once(queues=",".join(queues), extra=["--redis", url, "--concurrency", "4"])
    assert rc == 0, env.last_log.read_text()

    def check(statuses, stats):
        assert [s.state for s in statuses] == ["succeeded"] * len(ids)
        assert [s.queue for s in statuses] == [j["queue"] for j in jobs]
        assert sorted(stats) == sorted(queues)
        for q in queues:
            assert stats[q]["succeeded"] == 3 and stats[q]["queued"] == 0, stats
        return stats

    if use_async:
        async def read():
            async with jobd.AsyncClient(url, prefix=prefix) as c:
                st = [await c.wait(i, timeout=20) for i in ids]
                return st, await c.stats()
        stats = check(*asyncio.run(read()))
    else:
        with jobd.Client(url, prefix=prefix) as c:
            stats = check([c.wait(i, timeout=20) for i in ids], c.stats())
            assert [c.status(i).state for i in ids] == ["succeeded"] * len(ids)
    ctl = json.loads(env.jobctl("--redis", url, "stats", "--json").stdout)
    assert {q: ctl[q]["succeeded"] for q in queues} == {q: stats[q]["succeeded"]
                                                        for q in queues}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_cluster_submit_on_three_nodes_jobd_runs_them(cluster_url, raw_cluster, prefix,
                                                      tmp_path, use_async):
    queues = three_queues(raw_cluster)
    submit_run_check(cluster_url, prefix, tmp_path, queues, use_async)
    # The layout check wrote both version keys, each on its own node.
    assert raw_cluster.get("%s:{:global}:schema" % prefix) == "2"
    assert raw_cluster.get("%s:schema" % prefix) == "2"
    for q in queues:
        assert raw_cluster.zcard("%s:{%s}:succeeded" % (prefix, q)) == 3


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_sentinel_submit_jobd_runs_them(sentinel_url, prefix, tmp_path, use_async):
    submit_run_check(sentinel_url, prefix, tmp_path, ["sa", "sb"], use_async)


def test_cluster_batch_spans_chunks_and_queues(cluster_url, raw_cluster, prefix):
    queues = three_queues(raw_cluster)
    jobs = [{"queue": queues[i % 3], "type": "noop", "key": "k%d" % (i % 1401)}
            for i in range(1500)]
    with jobd.Client(cluster_url, prefix=prefix) as c:
        ids = c.submit_many(jobs)
        # The same key in the same queue: the first job's id.
        assert ids[1401:] == ids[:99] and len(set(ids)) == 1401
        # A node's script cache flushed: the enqueue is loaded again.
        raw_cluster.script_flush()  # (every primary)
        more = c.submit_many([{"queue": q, "type": "noop"} for q in queues])
        assert c.stats() and all(c.status(i).state == "queued" for i in more)
    for q in queues:
        assert raw_cluster.zcard("%s:{%s}:ready" % (prefix, q)) == 467 + 1


def test_cluster_watch_sees_the_terminal_state(cluster_url, raw_cluster, prefix, tmp_path):
    q = three_queues(raw_cluster)[1]
    env = Env(cluster_url, prefix, tmp_path)
    with jobd.Client(cluster_url, prefix=prefix) as c:
        i = c.submit(q, "noop")
        seen = []
        ready = threading.Event()

        def watch():
            for ev in c.watch(i, timeout=30):
                seen.append(ev.state)
                ready.set()

        t = threading.Thread(target=watch)
        t.start()
        try:
            assert ready.wait(10)
            assert env.run_once(queues=q, extra=["--redis", cluster_url]) == 0
        finally:
            t.join(35)
        assert seen[0] == "queued" and seen[-1] == "succeeded", seen

        # The async client's shared subscriber, through one node.
        j = c.submit(q, "noop")

        async def awatch():
            async with jobd.AsyncClient(cluster_url, prefix=prefix) as ac:
                states = []
                async for ev in ac.watch(j, timeout=30):
                    states.append(ev.state)
                    if len(states) == 1:
                        run = asyncio.get_running_loop().run_in_executor(
                            None, lambda: env.run_once(queues=q, extra=["--redis", cluster_url]))
                assert await run == 0
                return states

        states = asyncio.run(awatch())
        assert states[0] == "queued" and states[-1] == "succeeded", states
