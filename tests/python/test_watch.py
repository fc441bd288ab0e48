"""AsyncClient.watch: progress and the terminal state over pub/sub, one
shared subscriber connection, and a broken pub/sub connection survived."""
import asyncio

import jobd
from conftest import py_handler

HANDLERS = {"py.steps": py_handler("steps")}


async def run_jobd(env, handlers=HANDLERS):
    """jobd --once in a child process, awaited without blocking the loop."""
    args = env.jobd_args(handlers, "default", ["--once", "--sync-interval", "20ms"])
    log = open(env.tmp / "jobd-watch.log", "w")
    p = await asyncio.create_subprocess_exec(*args, env=env.env(), stdout=log,
                                             stderr=asyncio.subprocess.STDOUT)
    log.close()
    return p


def count_evals(c):
    calls = []
    real = c._eval

    async def counted(name, *a):
        calls.append(name)
        return await real(name, *a)

    c._eval = counted
    return calls


def test_watch_sees_progress_and_the_end_without_polling(redis_url, prefix, env):
    async def main():
        async with jobd.AsyncClient(redis_url, prefix=prefix) as c:
            i = await c.submit("default", "py.steps", {"n": 4, "sleep": 0.15})
            calls = count_evals(c)
            events = []
            seen_first = asyncio.Event()

            async def watcher():
                async for ev in c.watch(i, timeout=30):
                    events.append(ev)
                    seen_first.set()

            task = asyncio.ensure_future(watcher())
            await asyncio.wait_for(seen_first.wait(), 10)
            p = await run_jobd(env)
            await asyncio.wait_for(task, 30)
            assert await p.wait() == 0
            return i, events, calls

    i, events, calls = asyncio.run(main())
    assert events[0] == jobd.Event(i, "state", "queued", 0.0)
    assert events[-1].state == "succeeded" and events[-1].terminal and events[-1].progress == 1.0
    progress = [e.progress for e in events if e.kind == "progress"]
    assert len(progress) >= 2 and progress == sorted(progress), events
    assert all(e.state == "active" for e in events if e.kind == "progress")
    # The state was read once; every later event came by pub/sub.
    assert calls == ["watch"]


def test_watches_share_one_subscriber_connection(redis_url, prefix, raw):
    name = "jobd-test-%s" % prefix[-8:]

    async def main():
        async with jobd.AsyncClient(redis_url, prefix=prefix, client_name=name) as c:
            ids = [await c.submit("q", "t") for _ in range(5)]
            gens = [c.watch(i, timeout=20) for i in ids]
            firsts = [await g.__anext__() for g in gens]
            assert [f.state for f in firsts] == ["queued"] * 5
            subs = [x for x in raw.client_list() if x["name"] == name and int(x["sub"]) > 0]
            assert len(subs) == 1 and int(subs[0]["sub"]) == 5, subs
            # Kill the pub/sub connection: every watch subscribes again on a
            # new one and still sees the end of its job.
            raw.client_kill_filter(_id=subs[0]["id"])
            for i in ids:
                assert await c.cancel(i) == "canceled"
            lasts = [await g.__anext__() for g in gens]
            for g in gens:
                await g.aclose()
            return lasts

    lasts = asyncio.run(main())
    assert [e.state for e in lasts] == ["canceled"] * 5


def test_async_wait_and_errors(redis_url, prefix):
    async def main():
        async with jobd.AsyncClient(redis_url, prefix=prefix) as c:
            i = await c.submit("q", "t")
            try:
                await c.wait(i, timeout=0.2)
            except jobd.WaitTimeout as e:
                assert e.state == "queued"
            else:
                raise AssertionError("no timeout")
            try:
                await c.status("nope")
            except jobd.JobNotFound:
                pass
            else:
                raise AssertionError("found")
            waiter = asyncio.ensure_future(c.wait(i, timeout=10))
            await asyncio.sleep(0)
            await c.cancel(i)
            st = await waiter
            assert st.state == "canceled"
            try:
                await c.submit("q", "t", priority=11)
            except jobd.InvalidJob as e:
                assert e.field == "priority"
            else:
                raise AssertionError("accepted")

    asyncio.run(main())
