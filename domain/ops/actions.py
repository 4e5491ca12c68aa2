"""What an operator can do to jobs and queues: retry, delete and purge dead letters, run a delayed job
now, pause and resume a queue. Each takes the message out of Redis in one atomic step first, so two
operators clicking at once act once; the caller writes the audit row (domain/ops/audit.py).
"""

from __future__ import annotations

import dataclasses
import logging
import time

from dramatiq import Message

from domain.errors import Conflict, NotFound
from domain.ops.jobs import JobStore
from domain.ops.keys import FAILURE_TTL_S

logger = logging.getLogger(__name__)

# Take one message out of a hash (and its ordering list or sorted set): its data, or nil if it was gone.
_TAKE = """
local data = redis.call('hget', KEYS[1], ARGV[1])
if not data then return false end
redis.call('hdel', KEYS[1], ARGV[1])
if ARGV[2] == 'zset' then redis.call('zrem', KEYS[2], ARGV[1]) else redis.call('lrem', KEYS[2], 1, ARGV[1]) end
return data
"""
# Options of a failed attempt that a fresh run must not carry.
_SPENT_OPTIONS = ("eta", "retries", "traceback", "requeue_timestamp", "redis_message_id", "ops_ran_now")


class Actions:
    """Operator actions on the jobs of `store` (a JobStore); `enqueue` is the broker's."""

    def __init__(self, store: JobStore):
        self.store = store
        self.keys = store.keys
        self.client = store.client
        self._take = self.client.register_script(_TAKE)

    def check_queue(self, queue: str) -> str:
        if queue not in self.store.queues:
            raise NotFound(f"There is no queue {queue!r}; the queues are {', '.join(self.store.queues)}.")
        return queue

    # Dead letters.

    def retry(self, message_id: str) -> str:
        """Send a dead job again with its actor, arguments and a fresh retry budget; returns its queue."""
        queue, data = self._take_dead(message_id)
        self._send_again(Message.decode(data), queue)
        return queue

    def retry_all(self, queue: str) -> int:
        """Retry every dead job of a queue; returns how many."""
        count = 0
        while True:
            rids = self.client.zrange(self.keys.dead(self.check_queue(queue)), 0, 99)
            if not rids:
                return count
            for rid in rids:
                data = self._take(keys=[self.keys.dead_messages(queue), self.keys.dead(queue)], args=[rid, "zset"])
                if data is None:
                    self.client.zrem(self.keys.dead(queue), rid)  # an id without data: nothing to send
                    continue
                self._send_again(Message.decode(data), queue)
                count += 1

    def delete(self, message_id: str) -> str:
        """Drop a dead job and its failure record; returns its queue."""
        queue, _ = self._take_dead(message_id)
        self._forget(message_id, queue)
        return queue

    def purge(self, queue: str) -> int:
        """Drop every dead job of a queue, and their failure records; returns how many."""
        self.check_queue(queue)
        rids = self.client.zrange(self.keys.dead(queue), 0, -1)
        datas = self.client.hmget(self.keys.dead_messages(queue), rids) if rids else []
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.dead(queue), self.keys.dead_messages(queue))
            pipe.execute()
        for data in datas:
            if data is not None:
                self._forget(Message.decode(data).message_id, queue)
        return len(rids)

    def _take_dead(self, message_id: str) -> tuple[str, bytes]:
        found = self.store.find_dead(message_id)
        if found is None:
            if self.client.exists(self.keys.failure(message_id)):
                raise Conflict("This job is not dead: its retries go on (run it now from the delayed jobs).")
            raise NotFound("There is no dead job with this id.")
        queue, rid = found
        data = self._take(keys=[self.keys.dead_messages(queue), self.keys.dead(queue)], args=[rid, "zset"])
        if data is None:
            raise NotFound("There is no dead job with this id (someone else just took it).")
        return queue, data

    def _send_again(self, message: Message, queue: str) -> None:
        options = {k: v for k, v in message.options.items() if k not in _SPENT_OPTIONS}
        # Marked retrying before the send: the worker may fail it (and mark it dead) before we would get back.
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.failure(message.message_id), "dead", "0")
            pipe.expire(self.keys.failure(message.message_id), FAILURE_TTL_S)
            pipe.execute()
        # A fresh timestamp: the queue's latency (and any age limit) counts from this send, not the first.
        self.store.broker.enqueue(dataclasses.replace(message, queue_name=queue, message_timestamp=_now_ms(),
                                                      options={**options, "ops_retried": True}))
        logger.info("Operator sent job %s (%s) again on queue %r.", message.message_id, message.actor_name, queue)

    def _forget(self, message_id: str, queue: str) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.failure(message_id))
            pipe.zrem(self.keys.failures, message_id)
            pipe.zrem(self.keys.failures_of(queue), message_id)
            pipe.execute()

    # Delayed jobs.

    def run_now(self, queue: str, message_id: str) -> str:
        """Send a delayed job to its queue now; returns the queue. A worker that holds it until its eta
        (Dramatiq's workers prefetch delayed messages) finds the ran-now mark then, and its copy is skipped."""
        key = self.keys.delayed_messages(self.check_queue(queue))
        for rid, data in self.store._scan(key):
            if message_id.encode() not in data:
                continue
            message = Message.decode(data)
            if message.message_id != message_id:
                continue
            if self._take(keys=[key, self.keys.delayed(queue)], args=[rid, "list"]) is None:
                break
            eta_s = (message.options.get("eta") or 0) / 1000
            self.client.set(self.keys.ran_now(message_id), 1, ex=int(max(0, eta_s - time.time()) + 3600))
            options = {k: v for k, v in message.options.items() if k not in ("eta", "redis_message_id")}
            self.store.broker.enqueue(dataclasses.replace(message, queue_name=queue, message_timestamp=_now_ms(),
                                                          options=options))
            logger.info("Operator ran delayed job %s (%s) now on queue %r.", message_id, message.actor_name, queue)
            return queue
        raise NotFound("There is no delayed job with this id on this queue.")

    # Pausing.

    def pause(self, queue: str) -> None:
        self.client.sadd(self.keys.paused, self.check_queue(queue))

    def resume(self, queue: str) -> None:
        self.client.srem(self.keys.paused, self.check_queue(queue))

    def paused(self) -> set[str]:
        return {name.decode() for name in self.client.smembers(self.keys.paused)}


def _now_ms() -> int:
    return int(time.time() * 1000)
