"""Request ids across actor messages, and a metric sample and a log line for every job.

A message sent while handling a request, or while running a job that has one, carries its request id
(`options["request_id"]`), so the log lines of everything a request caused can be found by its id.
"""

from __future__ import annotations

import logging
import time

from dramatiq import Middleware
from dramatiq.middleware import Retries

import telemetry

logger = logging.getLogger("sector.jobs")


class JobTelemetry(Middleware):
    """The request id and job of a message in `telemetry.request_id` and `telemetry.job` while it runs; when
    it is done, `sector_jobs_total` and `sector_job_duration_seconds` by actor, queue and outcome, and one
    log line. Add it before Retries (`install`): its after-hooks then run after Retries decided whether the
    message runs again (outcome `retried`) or failed for good (`failed`)."""

    def __init__(self):
        self._started: dict[str, float] = {}  # message id -> when it started (perf_counter)

    def before_enqueue(self, broker, message, delay):
        if "request_id" not in message.options and (rid := telemetry.request_id.get()) is not None:
            message.options["request_id"] = rid

    def before_process_message(self, broker, message):
        self._started[message.message_id] = time.perf_counter()
        telemetry.request_id.set(message.options.get("request_id"))
        telemetry.job.set((message.actor_name, message.message_id, _queue(message)))

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is None:
            self._done(message, "success")
        else:
            self._done(message, "failed" if message.failed else "retried")

    def after_skip_message(self, broker, message):
        self._done(message, "skipped")

    def _done(self, message, outcome: str) -> None:
        started = self._started.pop(message.message_id, None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        actor, queue = message.actor_name, _queue(message)
        telemetry.JOBS.labels(actor, queue, outcome).inc()
        telemetry.JOB_DURATION.labels(actor, queue, outcome).observe(seconds)
        logger.info("Job %s %s on %s: %s in %.1f ms.", actor, message.message_id, queue, outcome, seconds * 1000,
                    extra={"actor": actor, "message_id": message.message_id, "queue": queue, "outcome": outcome,
                           "duration_ms": round(seconds * 1000, 2)})
        telemetry.request_id.set(None)
        telemetry.job.set(None)


def _queue(message) -> str:
    """The queue a message belongs to; a delayed one's `<queue>.DQ` counts as its queue."""
    name = message.queue_name
    return name[:-3] if name.endswith(".DQ") else name


def install(broker) -> None:
    """Add JobTelemetry to `broker`, before Retries (see JobTelemetry)."""
    broker.add_middleware(JobTelemetry(), before=Retries)
