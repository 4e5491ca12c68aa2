"""The Dramatiq broker, built from config: Redis with consumers that wake on enqueue.

Stock Dramatiq's Redis consumer sleeps with a growing backoff (up to the worker timeout,
1 s) whenever its queue is empty, which put 309-370 ms (p50) on an idle write here. Polling
faster costs ~12% of a core per idle process at 10 ms. Instead every enqueue also pushes a
token onto a per-queue wake-up list, and an idle consumer waits for it with BLPOP: an idle
worker starts a message within about a millisecond and burns no CPU while it waits.
"""

from __future__ import annotations

import heapq
import logging
import time

import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff
from dramatiq.errors import ConnectionClosed

from actors.ops import pause_flags
from config import Settings

logger = logging.getLogger(__name__)

#: Tokens beyond this many are dropped; a consumer needs only one to wake.
WAKE_TOKENS_MAX = 256

#: How long a consumer whose prefetch is full waits before looking again. Worker threads ack
#: from their own threads, so a slot frees any moment; Dramatiq's growing backoff (up to the
#: worker timeout, 1 s) would leave threads idle meanwhile.
FULL_RECHECK_S = 0.002

#: The shortest wait for a delayed message falling due (its thread moves it on after the wait).
DUE_WAIT_MIN_S = 0.005

#: How long a consumer of a paused queue (actors/ops.py) waits before it looks again; with the flag's
#: cache (0.5 s) a resume is obeyed within about 0.6 s.
PAUSED_WAIT_S = 0.1


def wake_key(namespace: str, queue_name: str) -> str:
    return f"{namespace}:wake:{queue_name}"


class WakingRedisBroker(RedisBroker):
    """A RedisBroker whose idle consumers block on a wake-up list instead of sleeping."""

    @property
    def consumer_class(self):
        return _WakingConsumer

    def consume(self, queue_name, prefetch=1, timeout=5000):
        return _WakingConsumer(self, queue_name, prefetch, timeout)

    def enqueue(self, message, *, delay=None):
        message = super().enqueue(message, delay=delay)
        key = wake_key(self.namespace, message.queue_name)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.lpush(key, 1)
            pipe.ltrim(key, 0, WAKE_TOKENS_MAX - 1)
            pipe.execute()
        return message


class _WakingConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, but its idle wait ends as soon as a message is enqueued, or when a
    delayed message it fetched falls due.

    A delayed message (a room's expiry) waits in its worker thread until its eta, and that thread only
    looks at it between two calls of this consumer, so an idle wait of up to the worker timeout would
    make it late by as much. The consumer of a delay queue keeps the etas of what it handed out and not
    yet acked, and waits no longer than until the first.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._etas: list[tuple[int, str]] = []  # (eta in ms, message id) of delayed messages handed out

    def __next__(self):
        if self.message_cache:
            return self._noted(super().__next__())
        if self.outstanding_message_count >= self.prefetch:
            time.sleep(FULL_RECHECK_S)
            return None
        try:
            if pause_flags.is_paused(self.broker.client, self.broker.namespace, self.queue_name):
                time.sleep(PAUSED_WAIT_S)
                return None
            messages = self.broker.do_fetch(self.queue_name, self.prefetch - self.outstanding_message_count)
            if messages:
                self.message_cache = messages
                return self._noted(super().__next__())
            self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
            wait_s = min(backoff_ms / 1000, self._until_due_s())
            self.broker.client.blpop([wake_key(self.broker.namespace, self.queue_name)], timeout=wait_s)
            return None
        except redis.ConnectionError as e:
            raise ConnectionClosed(e) from None

    def _noted(self, message):
        eta = message.options.get("eta") if message is not None else None
        if eta is not None:
            heapq.heappush(self._etas, (eta, message.message_id))
        return message

    def _until_due_s(self) -> float:
        """Seconds until the first delayed message still held falls due (a little at least: BLPOP's 0 is forever)."""
        while self._etas and self._etas[0][1] not in self.queued_message_ids:  # moved on and acked
            heapq.heappop(self._etas)
        if not self._etas:
            return float("inf")
        return max(DUE_WAIT_MIN_S, (self._etas[0][0] - time.time() * 1000) / 1000)


def build_broker(settings: Settings, middleware=None) -> WakingRedisBroker:
    """The broker every Sector process shares, from [redis] and [workers] settings."""
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=2,
        # Longer than the longest BLPOP a consumer issues.
        socket_timeout=max(10, settings.workers.idle_timeout_ms / 1000 * 3),
        health_check_interval=30,
    )
    broker = WakingRedisBroker(
        client=client,
        namespace=f"{settings.redis.namespace}:dramatiq",
        heartbeat_timeout=settings.workers.heartbeat_timeout_ms,
        maintenance_chance=settings.workers.maintenance_chance,
        middleware=middleware,
    )
    logger.debug("Built Redis broker on %r.", settings.redis_url)
    return broker
