"""The wire shapes of the ops API beyond those domain/ops defines (jobs, failures, workers, schedule, audit):
request bodies, query strings, and the composite answers. The OpenAPI document is built from these."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from domain.ops.jobs import Failure, Job
from domain.ops.operators import AuditEntry
from domain.ops.schedule import Leader, ScheduledJob
from domain.ops.series import Minute
from domain.ops.workers import WorkerProcess

Limit = Annotated[int, msgspec.Meta(ge=1, le=200, description="How many at most (1-200).")]
Offset = Annotated[int, msgspec.Meta(ge=0, le=1_000_000, description="How many to skip.")]


class Error(msgspec.Struct, frozen=True):
    """Every error of the ops API: a machine-readable code, a sentence, and for 422 the fields at fault."""

    error: str
    message: str
    errors: dict[str, list[str]] = {}


class SignIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An operator's email and password, as they sign in to the RosettaChat web app."""

    email: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class Confirm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The confirmation step of an action that loses or re-runs jobs: `confirm` must be true."""

    confirm: Literal[True]


class Operator(msgspec.Struct, frozen=True):
    """The signed-in operator."""

    id: int
    email: str | None
    name: str | None


class QueueView(msgspec.Struct, frozen=True):
    """One queue now and over the last hour: `depth` messages waiting, `delayed` in its delay queue, `dead`
    dead-lettered, `latency_s` the age of the oldest waiting message (null when none waits); per minute over
    the last five whole minutes, jobs `processed` (finished, failed or not) and `failed`; runtime p50/p95 (ms)
    over the hour; `minutes` the hour minute by minute, oldest first, the current one last: its jobs, and the
    depth, delayed, dead and latency a worker sampled in it (null where none did: see Minute)."""

    name: str
    depth: int
    delayed: int
    dead: int
    latency_s: float | None
    paused: bool
    processed_per_min: float
    failed_per_min: float
    p50_ms: float | None
    p95_ms: float | None
    minutes: list[Minute]


class Overview(msgspec.Struct, frozen=True):
    """What the dashboard polls: every queue, every live worker process, and when this was read (Unix s)."""

    at: float
    queues: list[QueueView]
    workers: list[WorkerProcess]


class Workers(msgspec.Struct, frozen=True):
    workers: list[WorkerProcess]


class Failures(msgspec.Struct, frozen=True):
    """Failed jobs, the latest failure first; `dead` counts every dead letter of the queues asked about."""

    items: list[Failure]
    dead: int


class Jobs(msgspec.Struct, frozen=True):
    """Jobs; `total` counts all there are (of a queue's delayed jobs), or those found (a search)."""

    items: list[Job]
    total: int


class Schedule(msgspec.Struct, frozen=True):
    """The scheduler's leader and its periodic jobs (each appears once the leader has run it)."""

    leader: Leader
    jobs: list[ScheduledJob]


class AuditLog(msgspec.Struct, frozen=True):
    items: list[AuditEntry]
    total: int


class Done(msgspec.Struct, frozen=True):
    """An action's outcome: what was done, to what, and how many jobs it touched."""

    action: str
    target: str
    count: int


class FailedQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    queue: str | None = None
    state: Literal["dead", "retrying"] = "dead"
    limit: Limit = 50
    offset: Offset = 0


class PageQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    limit: Limit = 50
    offset: Offset = 0


class SearchQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    q: Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="A message id, part of an actor's "
                                   "name, or part of an argument's value.")]
    limit: Limit = 50
