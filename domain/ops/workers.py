"""The worker registry as the dashboard reads it: each consumer process's last heartbeat (actors/ops.py)."""

from __future__ import annotations

import json
import time

import msgspec

from domain.ops.keys import Keys


class WorkerProcess(msgspec.Struct, frozen=True):
    """A Dramatiq consumer process: where it runs, what it consumes, and what it has done since it started."""

    id: str
    host: str
    pid: int
    queues: list[str]
    threads: int
    started_at: float
    heartbeat_age_s: float
    in_flight: int
    processed: int
    failed: int


def read(client, keys: Keys) -> list[WorkerProcess]:
    """Live worker processes (their registration not lapsed), by host and pid."""
    ids = [i.decode() for i in client.zrange(keys.workers, 0, -1)]
    if not ids:
        return []
    now = time.time()
    out = []
    for raw in client.mget([keys.worker(i) for i in ids]):
        if raw is None:
            continue  # its heartbeats stopped; the index forgets it at the next heartbeat of another
        entry = json.loads(raw)
        out.append(WorkerProcess(entry["id"], entry["host"], entry["pid"], entry["queues"], entry["threads"],
                                 entry["started_at"], round(max(0.0, now - entry["heartbeat_at"]), 3),
                                 entry["in_flight"], entry["processed"], entry["failed"]))
    return sorted(out, key=lambda w: (w.host, w.pid))
