"""The trivial actor that bench/idle_consumer.py runs in `dramatiq` worker subprocesses.

A worker imports this module with, in its environment:
  BENCH_BROKER     "stock" (dramatiq's RedisBroker) or "waking" (Sector's WakingRedisBroker)
  BENCH_REDIS_URL  the Redis to use
  BENCH_NAMESPACE  the broker's key namespace, one per configuration so they never share a queue
  dramatiq_worker_timeout  (read by dramatiq.worker at import) the longest idle wait, in ms

The `probe` actor notes when it started and pushes (probe id, start - send time) to a result list.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

QUEUE = "probe"
ACTOR = "probe"


def make_broker(kind: str, url: str, namespace: str) -> RedisBroker:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
    if kind == "stock":
        return RedisBroker(client=client, namespace=namespace)
    if kind == "waking":
        # Importing actors.broker runs actors/__init__, which builds Sector's own broker from
        # config (its Redis client connects lazily, so nothing happens) and registers Sector's
        # actors on it; this module then installs its own broker, which the worker uses.
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from actors.broker import WakingRedisBroker

        return WakingRedisBroker(client=client, namespace=namespace)
    raise ValueError(f"unknown broker kind {kind!r}")


def results_key(namespace: str) -> str:
    return f"{namespace}:probe-results"


if "BENCH_BROKER" in os.environ:
    broker = make_broker(os.environ["BENCH_BROKER"], os.environ["BENCH_REDIS_URL"], os.environ["BENCH_NAMESPACE"])
    dramatiq.set_broker(broker)

    @dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, max_retries=0)
    def probe(probe_id: int, sent_ns: int) -> None:
        started_ns = time.time_ns()
        broker.client.rpush(results_key(broker.namespace), json.dumps([probe_id, started_ns - sent_ns]))
