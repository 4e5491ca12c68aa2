"""Worker side of the operations dashboard: what each consumer process tells Redis about its jobs.

Cost on the job path: two dict operations, a clock read and a locked counter increment per job (about
a microsecond); no Redis round trip. Counts are batched in memory and one thread per process flushes
them every second in one pipelined call, with the process's heartbeat. Only rare paths talk to Redis
at once: a failing job (its failure record, one pipelined call), a job that succeeds after failing
(its record is dropped), and a delayed message falling due (is it one an operator ran early?).

The same thread samples the queues for the dashboard's depth and latency charts: once a minute
(`[ops] queue_sample_s`) every process tries to claim the minute (one SET NX), and the one that wins
reads every queue (actors/queues.py, two round trips) and writes the gauges into the minute's series
(one more). The queues are shared, so one sample a minute serves every host; a single process claiming
keeps the cost flat however many workers run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import traceback

import redis
from dramatiq import Middleware
from dramatiq.common import q_name
from dramatiq.errors import ActorNotFound
from dramatiq.middleware import SkipMessage

import config
from actors.queues import snapshot
from domain.ops import series
from domain.ops.keys import FAILURE_TTL_S, FAILURES_MAX, SERIES_TTL_S, Keys
from domain.ops.redaction import named_arguments, redact_arguments

logger = logging.getLogger(__name__)

#: Tracebacks longer than this are cut (from the top: the failing frame is at the bottom).
TRACEBACK_MAX_CHARS = 16_000
#: How often a consumer looks at the paused queues (one SMEMBERS per process, whatever its consumers).
PAUSE_CHECK_S = 0.5


class PauseFlags:
    """Which queues operators paused, as this process last saw: read from Redis at most every PAUSE_CHECK_S."""

    def __init__(self, every_s: float = PAUSE_CHECK_S):
        self.every_s = every_s
        self._paused: frozenset[str] = frozenset()
        self._checked = -every_s
        self._lock = threading.Lock()

    def is_paused(self, client: redis.Redis, namespace: str, queue_name: str) -> bool:
        now = time.monotonic()
        if now - self._checked >= self.every_s:
            with self._lock:
                if now - self._checked >= self.every_s:
                    self._paused = frozenset(name.decode() for name in client.smembers(Keys(namespace).paused))
                    self._checked = now
        return queue_name in self._paused


pause_flags = PauseFlags()


class _Counts:
    """This process's unflushed counts: (queue, minute) -> {field: n}."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], dict[str, int]] = {}

    def add(self, queue: str, runtime_ms: float, failed: bool) -> None:
        minute = int(time.time() // 60)
        bucket = f"h{series.bucket_of(runtime_ms)}"
        with self._lock:
            fields = self._counts.setdefault((queue, minute), {})
            fields["p"] = fields.get("p", 0) + 1
            fields[bucket] = fields.get(bucket, 0) + 1
            if failed:
                fields["f"] = fields.get("f", 0) + 1

    def take(self) -> dict[tuple[str, int], dict[str, int]]:
        with self._lock:
            counts, self._counts = self._counts, {}
            return counts

    def give_back(self, counts: dict[tuple[str, int], dict[str, int]]) -> None:
        with self._lock:
            for slot, fields in counts.items():
                mine = self._counts.setdefault(slot, {})
                for name, n in fields.items():
                    mine[name] = mine.get(name, 0) + n


class OpsMiddleware(Middleware):
    """Per-queue series, the worker registry, failure records and early runs of delayed messages.

    Parameters:
      flush_every_s(float): How often the process writes its counts to Redis. Defaults to 1.
      heartbeat_every_s(float): How often the process renews its registration. Defaults to 2.
      worker_ttl_s(float): A registration lapses this long after its last heartbeat. Defaults to 10.
      queue_sample_s(float): How often one process (of all, on every host) samples the queues' gauges into
        the series. Defaults to `[ops] queue_sample_s` (60), read when the worker boots.

    A process registers only once it boots as a consumer (`after_worker_boot`), so API and scheduler
    processes, which import the same broker to enqueue, never appear among the workers.
    """

    def __init__(self, *, flush_every_s: float = 1.0, heartbeat_every_s: float = 2.0, worker_ttl_s: float = 10.0,
                 queue_sample_s: float | None = None):
        self.flush_every_s = flush_every_s
        self.heartbeat_every_s = heartbeat_every_s
        self.worker_ttl_s = worker_ttl_s
        self.queue_sample_s = queue_sample_s
        self._sampled_at: int | None = None  # the start of the last sampling slot this process tried to claim
        self._counts = _Counts()
        self._started: dict[str, float] = {}  # message id -> perf_counter at start
        self._held_delayed: set[str] = set()  # ids of delayed messages this process holds until their eta
        self._totals = {"processed": 0, "failed": 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registration: dict | None = None

    # The registry and the flush thread.

    def after_worker_boot(self, broker, worker):
        queues = sorted(worker.consumer_whitelist or {q for q in broker.get_declared_queues()})
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._registration = {"id": self.worker_id, "host": socket.gethostname(), "pid": os.getpid(),
                              "queues": queues, "threads": worker.worker_threads, "started_at": time.time()}
        self._keys = Keys(broker.namespace)
        self._client = broker.client
        if self.queue_sample_s is None:  # read at boot: only consumer processes sample
            self.queue_sample_s = config.settings().ops.queue_sample_s
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sector-ops", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker, worker):
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._flush()
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.delete(self._keys.worker(self.worker_id))
                pipe.zrem(self._keys.workers, self.worker_id)
                pipe.execute()
        except redis.RedisError as e:
            logger.warning("Could not unregister worker %s (its entry lapses by itself): %s", self.worker_id, e)

    def _run(self) -> None:
        last_beat = 0.0
        while not self._stop.wait(self.flush_every_s):
            self._flush()
            if time.monotonic() - last_beat >= self.heartbeat_every_s:
                self._heartbeat()
                last_beat = time.monotonic()
            self._sample_queues()

    def _flush(self) -> None:
        counts = self._counts.take()
        if not counts:
            return
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for (queue, minute), fields in counts.items():
                    key = self._keys.minute(queue, minute)
                    for name, n in fields.items():
                        pipe.hincrby(key, name, n)
                    pipe.expire(key, SERIES_TTL_S)
                pipe.execute()
        except redis.RedisError as e:
            logger.warning("Could not write the job counts of worker %s; keeping them for the next try: %s",
                           self.worker_id, e)
            self._counts.give_back(counts)

    def _heartbeat(self) -> None:
        now = time.time()
        entry = {**self._registration, "heartbeat_at": now, "in_flight": len(self._started), **self._totals}
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.set(self._keys.worker(self.worker_id), json.dumps(entry), ex=int(self.worker_ttl_s))
                pipe.zadd(self._keys.workers, {self.worker_id: int(now * 1000)})
                pipe.zremrangebyscore(self._keys.workers, 0, int((now - self.worker_ttl_s) * 1000))
                pipe.execute()
        except redis.RedisError as e:
            logger.warning("Could not send the heartbeat of worker %s: %s", self.worker_id, e)

    def _sample_queues(self) -> None:
        """Record every queue's depth, delayed, dead and latency into the series, once a slot (a minute by
        default) for all processes: the first to claim the slot (SET NX) samples, the others learn it is
        taken and wait for the next. Processes sharing the queues need one sample, not one each, and the
        claim keeps that to one round trip per process per slot. With no worker running nothing samples:
        the dashboard then shows the live values only (docs/operations.md)."""
        now = time.time()
        slot_at = int(now // self.queue_sample_s * self.queue_sample_s)
        if slot_at == self._sampled_at:
            return
        self._sampled_at = slot_at  # tried once a slot, won or not, so Redis down costs no retry a second
        # Held past the slot's end, so a host whose clock lags by up to a slot finds it claimed still.
        claim_ttl_s = max(2, math.ceil(2 * self.queue_sample_s))
        try:
            if not self._client.set(self._keys.sampled(slot_at), self.worker_id, nx=True, ex=claim_ttl_s):
                return
            series.record_gauges(self._client, self._keys, snapshot(self._client, self._keys.namespace), now)
        except redis.RedisError as e:
            logger.warning("Worker %s could not sample the queues' depth and latency for the dashboard: %s",
                           self.worker_id, e)
        except Exception:  # a sample is worth less than the counts this thread also flushes: keep it running
            logger.exception("Worker %s failed to sample the queues' depth and latency for the dashboard.",
                             self.worker_id)

    # The job path.

    def before_process_message(self, broker, message):
        if message.options.get("ops_ran_now"):
            logger.info("Skipping message %s: an operator ran it before it fell due.", message.message_id)
            raise SkipMessage()
        self._started[message.message_id] = time.perf_counter()

    def after_skip_message(self, broker, message):
        self._started.pop(message.message_id, None)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        started = self._started.pop(message.message_id, None)
        if started is None:
            return
        failed = exception is not None
        self._counts.add(message.queue_name, (time.perf_counter() - started) * 1000, failed)
        self._totals["failed" if failed else "processed"] += 1
        if failed:
            self._record_failure(broker, message, exception)
        elif message.options.get("retries") or message.options.get("ops_retried"):
            self._forget_failure(broker, message)

    def _record_failure(self, broker, message, exception) -> None:
        keys = Keys(broker.namespace)
        now_ms = int(time.time() * 1000)
        try:
            fn = broker.get_actor(message.actor_name).fn
        except ActorNotFound:  # still recorded, with its arguments unnamed
            fn = None
        arguments = redact_arguments(named_arguments(fn, message.args, message.kwargs) if fn else
                                     {"args": list(message.args), **message.kwargs})
        text = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__, limit=30))
        record = {"message_id": message.message_id, "actor": message.actor_name, "queue": q_name(message.queue_name),
                  "redis_id": message.options.get("redis_message_id", ""), "arguments": json.dumps(arguments),
                  "exception": f"{type(exception).__name__}: {exception}"[:2000],
                  "traceback": text[-TRACEBACK_MAX_CHARS:], "last_failed_at": now_ms,
                  "dead": "0", "retries": message.options.get("retries", 0)}
        key = keys.failure(message.message_id)
        try:
            with broker.client.pipeline(transaction=False) as pipe:
                pipe.hset(key, mapping=record)
                pipe.hsetnx(key, "first_failed_at", now_ms)
                pipe.hincrby(key, "attempts", 1)
                pipe.expire(key, FAILURE_TTL_S)
                for index in (keys.failures, keys.failures_of(record["queue"])):
                    pipe.zadd(index, {message.message_id: now_ms})
                    pipe.zremrangebyrank(index, 0, -FAILURES_MAX - 1)
                pipe.execute()
        except redis.RedisError as e:
            logger.warning("Could not record the failure of message %s: %s", message.message_id, e)

    def after_nack(self, broker, message):
        # Dramatiq gave up on it (Retries runs its after-hooks after ours, so this is where we learn it).
        key = Keys(broker.namespace).failure(message.message_id)
        try:
            with broker.client.pipeline(transaction=False) as pipe:
                pipe.hset(key, "dead", "1")
                pipe.expire(key, FAILURE_TTL_S)
                pipe.execute()
        except redis.RedisError as e:
            logger.warning("Could not mark message %s as dead: %s", message.message_id, e)

    def _forget_failure(self, broker, message) -> None:
        """A message that failed before has now succeeded: it is no longer a failed job."""
        keys = Keys(broker.namespace)
        try:
            with broker.client.pipeline(transaction=False) as pipe:
                pipe.delete(keys.failure(message.message_id))
                pipe.zrem(keys.failures, message.message_id)
                pipe.zrem(keys.failures_of(q_name(message.queue_name)), message.message_id)
                pipe.execute()
        except redis.RedisError as e:
            logger.warning("Could not clear the failure record of message %s: %s", message.message_id, e)

    # Delayed messages an operator ran early (domain/ops/jobs.py run_now).

    def before_delay_message(self, broker, message):
        self._held_delayed.add(message.message_id)

    def before_enqueue(self, broker, message, delay):
        # The worker holding a delayed message enqueues it on its queue once due; if an operator ran it
        # already, this copy is tagged so that whichever worker takes it skips it.
        if delay is not None or message.message_id not in self._held_delayed:
            return
        self._held_delayed.discard(message.message_id)
        try:
            if broker.client.delete(Keys(broker.namespace).ran_now(message.message_id)):
                message.options["ops_ran_now"] = True
        except redis.RedisError as e:
            logger.warning("Could not check whether message %s was run early: %s", message.message_id, e)
