"""jobd for Python: submit, watch and manage jobd jobs, and write handlers.

    import jobd
    client = jobd.Client("redis://127.0.0.1:6379/0")
    job_id = client.submit("default", "index.docs", {"path": "/data/a"}, priority=7)
    print(client.wait(job_id, timeout=60).state)

``jobd.Client`` (blocking) and ``jobd.AsyncClient`` (asyncio) run the Lua
scripts of ``schema/redis/`` and write the envelopes of
``schema/job.v1.schema.json``, like libjobd and jobctl. ``jobd.handler``
implements the exec handler protocol (schema/handler-protocol.md) and needs
only the standard library: importing it does not import redis-py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .envelope import DEFAULT_PRIORITY, PAYLOAD_MAX, STATES, TERMINAL_STATES, Event, JobStatus
from .errors import (
    BatchError,
    BatchExists,
    BatchNotFound,
    ConfigError,
    InvalidJob,
    JobdError,
    JobNotFound,
    JobStateError,
    PayloadTooLarge,
    RedisError,
    RedisUnavailable,
    SchemaMismatch,
    WaitTimeout,
)

if TYPE_CHECKING:  # imported lazily below; type checkers see them here
    from .aio import AsyncClient
    from .client import Client

__version__ = "0.1.0"

__all__ = [
    "Client",
    "AsyncClient",
    "Event",
    "JobStatus",
    "JobdError",
    "InvalidJob",
    "PayloadTooLarge",
    "JobNotFound",
    "JobStateError",
    "BatchError",
    "BatchExists",
    "BatchNotFound",
    "WaitTimeout",
    "RedisUnavailable",
    "SchemaMismatch",
    "RedisError",
    "ConfigError",
    "PAYLOAD_MAX",
    "DEFAULT_PRIORITY",
    "STATES",
    "TERMINAL_STATES",
]


def __getattr__(name: str) -> Any:
    # The clients need redis-py; handlers (jobd.handler) must not.
    if name == "Client":
        from .client import Client

        return Client
    if name == "AsyncClient":
        from .aio import AsyncClient

        return AsyncClient
    raise AttributeError("module 'jobd' has no attribute %r" % name)
