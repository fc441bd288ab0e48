"""An API tier in front of jobd: FastAPI + jobd.AsyncClient.

    JOBD_REDIS_URL=redis://127.0.0.1:6379/0 \\
        uvicorn --app-dir deploy/examples fastapi_app:app --workers 4

    POST /index               body: any JSON object (the job's payload);
                              header Idempotency-Key: repeated requests with the
                              same key get the first job's id. 202 {"id": ...}
    GET  /jobs/{id}           the job's status (as `jobctl status --json`)
    GET  /jobs/{id}/events    Server-Sent Events: the job's state, then every
                              progress and state change, until it ends

Each uvicorn worker is its own process with its own AsyncClient, made at
startup and closed at shutdown: its pool holds JOBD_POOL_SIZE connections
(default 8) for commands, plus one pub/sub connection that every event
stream of the worker shares. Pools multiply by workers: 4 workers x (8 + 1)
connections to Redis, whatever the number of open streams.

Environment: JOBD_REDIS_URL, JOBD_PREFIX, JOBD_REDIS_PASSWORD_FILE (as
jobctl), JOBD_POOL_SIZE, JOBD_API_QUEUE (default "default"), JOBD_API_TYPE
(default "index.docs").
"""
import json
import os
import sys
from typing import Any, AsyncIterator, Dict, Optional

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import StreamingResponse

try:
    import jobd
except ImportError:  # in the source tree, without the package installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "client", "python"))
    import jobd

QUEUE = os.environ.get("JOBD_API_QUEUE", "default")
TYPE = os.environ.get("JOBD_API_TYPE", "index.docs")

app = FastAPI(title="jobd example API tier")


@app.on_event("startup")
async def open_client() -> None:
    # One client per worker process, sized for that worker.
    app.state.jobs = jobd.AsyncClient.from_env(
        max_connections=int(os.environ.get("JOBD_POOL_SIZE", "8")))
    await app.state.jobs.connect()  # fail at start, not at the first request


@app.on_event("shutdown")
async def close_client() -> None:
    await app.state.jobs.close()


def jobs(request: Request) -> "jobd.AsyncClient":
    return request.app.state.jobs


@app.post("/index", status_code=202)
async def submit_index(request: Request, doc: Dict[str, Any],
                       idempotency_key: Optional[str] = Header(None)) -> Dict[str, str]:
    try:
        job_id = await jobs(request).submit(QUEUE, TYPE, doc, key=idempotency_key)
    except jobd.InvalidJob as e:
        raise HTTPException(status_code=422, detail=str(e))
    return {"id": job_id}


@app.get("/jobs/{job_id}")
async def job_status(request: Request, job_id: str) -> Dict[str, Any]:
    try:
        return (await jobs(request).status(job_id)).data
    except jobd.JobNotFound:
        raise HTTPException(status_code=404, detail="no such job")


def sse(event: "jobd.Event") -> bytes:
    data = json.dumps({"id": event.id, "state": event.state, "progress": event.progress})
    return ("event: %s\ndata: %s\n\n" % (event.kind, data)).encode()


@app.get("/jobs/{job_id}/events")
async def job_events(request: Request, job_id: str) -> StreamingResponse:
    events = jobs(request).watch(job_id)
    try:
        first = await events.__anext__()  # 404 before the stream starts
    except jobd.JobNotFound:
        await events.aclose()
        raise HTTPException(status_code=404, detail="no such job")

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield sse(first)
            async for ev in events:
                yield sse(ev)
        finally:
            await events.aclose()  # unsubscribe now, also when the client left

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
