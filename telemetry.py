"""What every Sector process shares to be watched: the Prometheus metrics (in prometheus-client's
multiprocess mode), the request id of what it is doing now, and the JSON log format.

Imports nothing of Sector's but `config`, so providers, actors and handlers all may use it.

Multiprocess mode: each process writes its counts into mmap'ed files of its own under `[metrics] dir`
(Sanic and Dramatiq run several processes each), and a scrape adds them up. prometheus-client picks the
mode when it is first imported, from PROMETHEUS_MULTIPROC_DIR, so this module sets that first; it is
`[metrics] dir` in every Sector process, whatever the environment said.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import random
import re
import time
from pathlib import Path
from typing import Iterable

from config import settings

METRICS_DIR: Path = settings().metrics_dir
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
METRICS_DIR.mkdir(parents=True, exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess  # noqa: E402

logger = logging.getLogger(__name__)

# Buckets are few on purpose: each is a value in every process's file for every label set.
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_JOB_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600)
_PROVIDER_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Its `_count` is the count of requests (a counter beside it would cost each request another write).
HTTP_DURATION = Histogram("sector_http_request_duration_seconds", "HTTP requests answered, by route template and "
                          "status, and the time from routing each to its answer.", ("method", "route", "status"),
                          buckets=_HTTP_BUCKETS)
JOBS = Counter("sector_jobs", "Actor messages processed, by outcome: success, retried (it failed and will "
                              "run again), failed (it failed for good: dead-lettered), skipped.",
               ("actor", "queue", "outcome"))
JOB_DURATION = Histogram("sector_job_duration_seconds", "How long processing an actor message took.",
                         ("actor", "queue", "outcome"), buckets=_JOB_BUCKETS)
PROVIDER_CALLS = Counter("sector_provider_calls", "Requests to outside services (mail, OAuth, translation "
                                                  "engines, push gateways).", ("provider", "operation"))
PROVIDER_ERRORS = Counter("sector_provider_errors", "Requests to outside services that failed: `unanswered` "
                                                    "(timeout, unreachable), `4xx` or `5xx` (its answer).",
                          ("provider", "operation", "error"))
PROVIDER_DURATION = Histogram("sector_provider_call_duration_seconds", "How long a request to an outside service "
                                                                       "took.", ("provider", "operation"),
                              buckets=_PROVIDER_BUCKETS)


def clear_dead_processes() -> None:
    """Delete the metrics files of processes that no longer run (a previous run's): called by the commands
    that start the others (`app.py dev`, `serve`, `worker`). Files of live processes stay, so a `serve`
    restarted beside a running `worker` keeps the worker's counts."""
    removed = 0
    for path in METRICS_DIR.glob("*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not _running(int(pid)):
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        logger.debug("Removed %d metrics files of processes that have exited.", removed)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def process_exited(pid: int) -> None:
    """Tell prometheus-client that a child process exited (its live gauges stop counting)."""
    multiprocess.mark_process_dead(pid, str(METRICS_DIR))


def registry() -> CollectorRegistry:
    """A registry of every process's metrics, added up; collectors of our own may be registered on it."""
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected, path=str(METRICS_DIR))
    return collected


class ProviderCall:
    """Counts one request to an outside service, its time, and whether it failed: the code set `status` to
    the answer's (HTTP or SMTP) error status, or, without one, the block raised (no answer).

        with ProviderCall("fcm", "send") as call:
            response = await client.request(...)
            call.status = response.status
    """

    __slots__ = ("provider", "operation", "status", "_started")

    def __init__(self, provider: str, operation: str):
        self.provider, self.operation = provider, operation
        self.status = 0

    def __enter__(self) -> ProviderCall:
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind, exception, traceback) -> None:
        PROVIDER_DURATION.labels(self.provider, self.operation).observe(time.perf_counter() - self._started)
        PROVIDER_CALLS.labels(self.provider, self.operation).inc()
        if self.status >= 400:
            PROVIDER_ERRORS.labels(self.provider, self.operation, "5xx" if self.status >= 500 else "4xx").inc()
        elif kind is not None:
            PROVIDER_ERRORS.labels(self.provider, self.operation, "unanswered").inc()


# Request ids.

#: The request id of what this thread or task is doing: the HTTP request it answers, or the request that
#: caused the job it runs. A job caused by several requests (a group-committed batch) holds them
#: comma-separated.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("sector_request_id", default=None)

#: The job this thread runs: (actor, message id, queue).
job: contextvars.ContextVar[tuple[str, str, str] | None] = contextvars.ContextVar("sector_job", default=None)

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

#: The most request ids one message names: a batch of many requests names its first ones.
JOINED_MAX = 16


def request_id_from(header: str | None) -> str:
    """The client's X-Request-Id when it is a sane one (at most 128 of A-Z a-z 0-9 . _ -), else a new one:
    32 random hex digits, like a uuid4's. They need to be unique, not unguessable: Python's generator (seeded
    from the OS, again in every forked process) costs a tenth of uuid4's system call."""
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return f"{random.getrandbits(128):032x}"


def joined(ids: Iterable[str | None]) -> str | None:
    """Request ids as one value, each once and in order (at most JOINED_MAX); None when there are none."""
    unique = dict.fromkeys(part for value in ids if value for part in value.split(","))
    return ",".join(list(unique)[:JOINED_MAX]) or None


# Logs.

#: Attributes a log call may pass in `extra` that a JSON line carries as fields of their own.
LOG_FIELDS = ("method", "route", "status", "duration_ms", "actor", "message_id", "queue", "outcome")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ms), level, logger, message, process; request_id and the job's
    actor, message_id and queue when known; the fields of LOG_FIELDS a call passed; exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                "process": record.process}
        if (rid := getattr(record, "request_id", None) or request_id.get()) is not None:
            line["request_id"] = rid
        if (current := job.get()) is not None:
            line["actor"], line["message_id"], line["queue"] = current
        for name in LOG_FIELDS:
            if (value := record.__dict__.get(name)) is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)
