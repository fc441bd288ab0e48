"""What Client and AsyncClient share: options, and turning keyword
arguments or batch items into checked job specs."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from . import _batch as B
from . import envelope as E
from .errors import InvalidJob
from .url import RedisURL, parse_url

# Batch item fields: the submit() keyword names, and the envelope / jobctl
# batch-line names for the same things (jobctl submit --batch).
_ALIASES = {
    "idempotency_key": "key",
    "delay_s": "delay",
    "timeout_s": "timeout",
    "retry_base_s": "retry_base",
    "retry_cap_s": "retry_cap",
}
_FIELDS = {
    "queue", "type", "payload", "priority", "delay", "run_at", "max_attempts", "timeout",
    "key", "traceparent", "id", "retry_base", "retry_cap",
}


class BaseClient:
    """Options common to both clients (see Client for their meaning)."""

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        prefix: str = "jobd",
        password_file: Optional[str] = None,
        timeout: float = 5.0,
        max_connections: int = 10,
        payload_max: int = E.PAYLOAD_MAX,
        client_name: Optional[str] = None,
    ) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("prefix must be a non-empty string")
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self.url: RedisURL = parse_url(url, password_file)
        self.prefix = prefix
        self.timeout = float(timeout)
        self.max_connections = int(max_connections)
        self.payload_max = int(payload_max)
        self._where = self.url.describe()
        self._conn_kwargs: Dict[str, Any] = dict(self.url.connection_kwargs(),
                                                 client_name=client_name)
        if not self.url.is_unix:  # (redis-py's unix connections take no such option)
            self._conn_kwargs["socket_connect_timeout"] = self.timeout

    @staticmethod
    def env_options() -> Dict[str, Any]:
        """url and prefix from JOBD_REDIS_URL and JOBD_PREFIX, as jobctl
        reads them."""
        opts: Dict[str, Any] = {"url": os.environ.get("JOBD_REDIS_URL") or None}
        if os.environ.get("JOBD_PREFIX"):
            opts["prefix"] = os.environ["JOBD_PREFIX"]
        return opts

    def __repr__(self) -> str:
        return "<%s %s prefix=%r>" % (type(self).__name__, self._where, self.prefix)

    def _spec(self, queue: str, type: str, payload: Any, **kw: Any) -> E.JobSpec:
        return E.make_spec(queue, type, payload, payload_max=self.payload_max, **kw)

    @staticmethod
    def _fields(job: Mapping[str, Any]) -> Dict[str, Any]:
        out = {}
        for k, v in job.items():
            name = _ALIASES.get(k, k)
            if name not in _FIELDS:
                raise InvalidJob(str(k), "unknown field")
            out[name] = v
        return out

    def _specs(self, jobs: Iterable[Mapping[str, Any]], defaults: Mapping[str, Any],
               check: Optional[Callable[[E.JobSpec], None]] = None) -> List[E.JobSpec]:
        """Checks every job before anything is sent: one bad job fails the
        batch, naming its index, with nothing written. check(spec) may
        refuse more (raising InvalidJob)."""
        base = self._fields(defaults)
        out = []
        for i, job in enumerate(jobs):
            try:
                if not isinstance(job, Mapping):
                    raise InvalidJob("job", "must be a mapping with queue, type, payload, ...")
                kw = dict(base)
                kw.update(self._fields(job))
                queue = kw.pop("queue", None)
                type_ = kw.pop("type", None)
                payload = kw.pop("payload", None)
                spec = self._spec(queue, type_, payload, **kw)  # type: ignore[arg-type]
                if check is not None:
                    check(spec)
                out.append(spec)
            except InvalidJob as e:
                raise e.at(i) from None
        return out

    def _batch_specs(self, jobs: Iterable[Mapping[str, Any]], batch: Any, on_complete: Any,
                     defaults: Mapping[str, Any]
                     ) -> Tuple[str, Optional[str], str, List[E.JobSpec]]:
        """A named batch's checks (jobd_batch_submit's, before anything is
        written): (name, completion type or None, completion queue, specs)."""
        name = B.check_name(batch)
        on_type, on_queue = B.split_on_complete(on_complete)
        specs = self._specs(jobs, defaults, B.check_spec)
        if not specs:
            raise InvalidJob("jobs", "a batch needs at least one job")
        return name, on_type, on_queue or specs[0].queue, specs

    @staticmethod
    def _no_batch(on_complete: Any) -> None:
        if on_complete is not None:
            raise InvalidJob("on_complete", "goes with batch=NAME (a named batch)")

    @staticmethod
    def _batch_name(name: Any) -> str:
        if not isinstance(name, str):
            raise InvalidJob("batch", "must be a string")
        return name
