"""What the Redis queues hold right now: waiting, delayed and dead-lettered messages, and how long the
oldest has waited. Read for /metrics and the ops dashboard; it never changes a queue.

Dramatiq's Redis broker (dramatiq/brokers/redis.py, redis/dispatch.lua) keeps, under its namespace:

- `<ns>:<queue>`: a list of the ids of the messages waiting, oldest first (enqueue RPUSHes, fetch LPOPs);
- `<ns>:<queue>.msgs`: a hash of id -> message of every message of the queue not yet acked, so the
  waiting ones and those in flight (fetched by a worker, their ids in its `<ns>:__acks__.<worker>.<queue>`
  set, until it acks them);
- `<ns>:<queue>.DQ` and `<ns>:<queue>.DQ.msgs`: the same for its delay queue (retries, delayed sends);
  a worker fetches a delayed message early and holds it until its eta, so it leaves the list but stays
  in the hash until the worker moves it to `<queue>`;
- `<ns>:<queue>.XQ` and `.XQ.msgs`: dead letters, a sorted set by when they died, and their hash.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Iterable

import redis

#: Every queue Sector's actors read from.
QUEUES = ("writes", "messages", "translation", "push", "webhooks", "email", "expiry")


@dataclass(frozen=True)
class QueueState:
    name: str
    depth: int          # messages waiting (ready) in the queue
    delayed: int        # in its delay queue (`<queue>.DQ`)
    dead: int           # dead-lettered (`<queue>.XQ`)
    oldest_age_s: float | None  # age of the oldest waiting message, None when empty


def snapshot(client: redis.Redis, namespace: str, queues: Iterable[str] = QUEUES) -> list[QueueState]:
    """The state of each queue, in two round trips: the counts and the head of each queue, then the head
    messages themselves (for their age)."""
    names = list(queues)
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            key = f"{namespace}:{name}"
            pipe.llen(key)
            pipe.hlen(f"{key}.DQ.msgs")  # the delay list, and those a worker holds until their eta
            pipe.zcard(f"{key}.XQ")
            pipe.lindex(key, 0)
        counts = pipe.execute()
    heads = {name: counts[4 * i + 3] for i, name in enumerate(names) if counts[4 * i + 3] is not None}
    messages = {}
    if heads:
        with client.pipeline(transaction=False) as pipe:
            for name, message_id in heads.items():
                pipe.hget(f"{namespace}:{name}.msgs", message_id)
            messages = dict(zip(heads, pipe.execute()))
    now_ms = time.time() * 1000
    return [QueueState(name=name, depth=counts[4 * i], delayed=counts[4 * i + 1], dead=counts[4 * i + 2],
                       oldest_age_s=_age_s(messages.get(name), now_ms))
            for i, name in enumerate(names)]


def _age_s(raw: bytes | None, now_ms: float) -> float | None:
    """How long a message has been ready: since it was sent, or since its eta when it was delayed (a retry
    keeps its first timestamp). None when there is none (the queue is empty, or a worker just took it)."""
    if raw is None:
        return None
    try:
        message = json.loads(raw)
        ready_ms = max(float(message["message_timestamp"]), float(message.get("options", {}).get("eta") or 0))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return max(0.0, (now_ms - ready_ms) / 1000)
