"""The scheduler's periodic jobs as the dashboard shows them: recorded by the leader at each run
(scheduler/jobs.py), with the lock that says who leads (scheduler/leader.py)."""

from __future__ import annotations

import json
import time

import msgspec

from domain.ops.keys import Keys


class ScheduledJob(msgspec.Struct, frozen=True):
    """A periodic job: when it last ran and how that went (`sent`, or the error), when it runs next, and which
    scheduler ran it (host:pid and its lock token's first 8 characters, as its log lines name it)."""

    name: str
    every_s: float | None
    last_run_at: float | None
    outcome: str | None
    next_run_at: float | None
    ran_by: str | None


class Leader(msgspec.Struct, frozen=True):
    """The scheduler holding the lock (its token's first 8 characters) and for how much longer, if any does."""

    token: str | None
    expires_in_s: float | None
    host: str | None


def record_run(client, keys: Keys, name: str, *, outcome: str, every_s: float | None, next_run_at: float | None,
               ran_by: str) -> None:
    """Note one run of a periodic job (called by the leading scheduler)."""
    client.hset(keys.schedule, name, json.dumps({"every_s": every_s, "last_run_at": time.time(), "outcome": outcome,
                                                 "next_run_at": next_run_at, "ran_by": ran_by}))


def read(client, keys: Keys) -> list[ScheduledJob]:
    jobs = []
    for name, raw in sorted(client.hgetall(keys.schedule).items()):
        entry = json.loads(raw)
        jobs.append(ScheduledJob(name.decode(), entry.get("every_s"), entry.get("last_run_at"), entry.get("outcome"),
                                 entry.get("next_run_at"), entry.get("ran_by")))
    return jobs


def leader(client, lock_key: str, jobs: list[ScheduledJob]) -> Leader:
    """Who holds the scheduler's lock; its host comes from the latest run recorded under its token."""
    with client.pipeline(transaction=False) as pipe:
        pipe.get(lock_key)
        pipe.pttl(lock_key)
        token, ttl_ms = pipe.execute()
    if token is None:
        return Leader(None, None, None)
    short = token.decode()[:8]
    host = next((job.ran_by.split(" ")[0] for job in sorted(jobs, key=lambda j: -(j.last_run_at or 0))
                 if job.ran_by and short in job.ran_by), None)
    return Leader(short, ttl_ms / 1000 if ttl_ms and ttl_ms > 0 else None, host)
