"""The exceptions of the jobd package.

Every error this package raises on purpose derives from :class:`JobdError`,
and maps onto libjobd's codes (``include/jobd/client.h``) and jobctl's exit
statuses, so that a service and a shell script see the same failures:

==========================  ================  ==========================
exception                   libjobd           jobctl exit status
==========================  ================  ==========================
InvalidJob                  JOBD_EINVAL/EJSON 2 (usage)
PayloadTooLarge             JOBD_ETOOBIG      2 (usage)
JobNotFound                 JOBD_ENOTFOUND    3
JobStateError               JOBD_ESTATE       1
BatchExists                 JOBD_ESTATE       1
BatchError                  JOBD_ESTATE       1
BatchNotFound               JOBD_ENOTFOUND    3
WaitTimeout                 JOBD_ETIMEDOUT    4
RedisUnavailable            JOBD_ECONN        69
SchemaMismatch              JOBD_ESCHEMA      69
RedisError                  JOBD_EREDIS       1
ConfigError                 JOBD_EINVAL (URL) 2
==========================  ================  ==========================
"""
from __future__ import annotations

from typing import Optional, Sequence

__all__ = [
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
]


class JobdError(Exception):
    """Base class of every jobd error."""


class InvalidJob(JobdError, ValueError):
    """A job was refused before anything was written to Redis.

    ``field`` names the offending argument or envelope field (``"payload"``,
    ``"priority"``, ...); ``index`` is the job's position in a
    :meth:`submit_many` call (0-based), or None for a single submit.
    """

    def __init__(self, field: str, message: str, index: Optional[int] = None) -> None:
        self.field = field
        self.index = index
        self.reason = message
        where = "job %d: " % index if index is not None else ""
        super().__init__("%s%s: %s" % (where, field, message))

    def at(self, index: int) -> "InvalidJob":
        """The same error, naming the job's position in a batch."""
        e = type(self)(self.field, self.reason, index)
        return e


class PayloadTooLarge(InvalidJob):
    """The payload's compact JSON text is over the size limit (1 MiB by default)."""


class JobNotFound(JobdError, LookupError):
    """No queue holds a job with this id (or its record expired)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__("no such job: %s" % job_id)


class JobStateError(JobdError):
    """The job is not in a state that allows the operation (cancel of a
    finished job, retry of a job that is not dead)."""

    def __init__(self, job_id: str, state: str, message: str) -> None:
        self.job_id = job_id
        self.state = state
        super().__init__(message)


class BatchError(JobdError):
    """A named batch ran into what Redis holds: its name is taken
    (:class:`BatchExists`, nothing written), or jobs with chosen ids that
    exist already (``job_ids``; the batch's earlier chunks were written and
    the rest was not, as libjobd's ``jobd_batch_submit``). ``name`` is the
    batch's name."""

    def __init__(self, name: str, message: str, job_ids: Sequence[str] = ()) -> None:
        self.name = name
        self.job_ids = list(job_ids)
        super().__init__(message)


class BatchExists(BatchError):
    """A batch of this name was submitted before: a name is used once.
    Nothing was written."""

    def __init__(self, name: str) -> None:
        super().__init__(name, 'batch "%s" exists already' % name)


class BatchNotFound(JobdError, LookupError):
    """No batch of this name (or its record was deleted)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__('no batch named "%s"' % name)


class WaitTimeout(JobdError, TimeoutError):
    """A wait ran out of time before the job ended. ``state`` is the last
    state seen."""

    def __init__(self, job_id: str, timeout: float, state: Optional[str]) -> None:
        self.job_id = job_id
        self.state = state
        super().__init__(
            "timed out after %gs waiting for job %s (last seen %s)" % (timeout, job_id, state)
        )


class RedisUnavailable(JobdError, ConnectionError):
    """Redis is unreachable, the connection broke, or Redis refused the
    credentials (jobctl exits 69 for these)."""


class SchemaMismatch(JobdError):
    """Redis holds a jobd layout version other than the one this package
    speaks (PREFIX:{:global}:schema); nothing was changed."""


class RedisError(JobdError):
    """Redis answered a command with an error."""


class ConfigError(JobdError, ValueError):
    """A bad Redis URL, or a password file that cannot be read."""
