"""Reading jobs out of the broker's Redis: failed and dead-lettered ones with their failure records,
delayed ones, and a search over everything the queues hold.

Dramatiq's Redis broker keeps a queue's waiting (and running) messages in `<queue>.msgs`, its delayed
ones (retries in backoff among them) in `<queue>.DQ.msgs`, and its dead letters in `<queue>.XQ.msgs`
with `<queue>.XQ` ordering them by when they died; each hash maps a per-enqueue redis id to the
message. The worker middleware (actors/ops.py) adds a failure record per failing message id.
Arguments are always shown, and searched, redacted (domain/ops/redaction.py).
"""

from __future__ import annotations

import json

import msgspec
from dramatiq import Message
from dramatiq.errors import ActorNotFound

from domain.ops.keys import Keys
from domain.ops.redaction import named_arguments, redact_arguments

#: The most entries of one hash a delayed list or a search reads; past that it says it stopped short.
SCAN_MAX = 10_000
_RECORD_FIELDS = ("actor", "queue", "arguments", "exception", "attempts", "first_failed_at", "last_failed_at",
                  "dead", "redis_id")


class Job(msgspec.Struct, frozen=True):
    """A message somewhere in the queues: `state` is queued (waiting or running), delayed or dead."""

    message_id: str
    queue: str
    actor: str
    arguments: dict
    state: str
    enqueued_at: float
    eta: float | None
    retries: int


class Failure(msgspec.Struct, frozen=True):
    """A failed job: `dead` once Dramatiq gave up on it (its dead letter waits for an operator), `retrying`
    while its retries go on. Times are Unix seconds; traceback is None in lists (ask for the one job)."""

    message_id: str
    queue: str
    actor: str
    arguments: dict
    state: str
    exception: str | None
    attempts: int
    first_failed_at: float | None
    last_failed_at: float | None
    traceback: str | None = None


class JobStore:
    """The jobs of one deployment, read through `broker` (its client, namespace and actors)."""

    def __init__(self, broker, queues):
        self.broker = broker
        self.client = broker.client
        self.keys = Keys(broker.namespace)
        self.queues = tuple(queues)

    def job(self, data: bytes, state: str) -> Job:
        message = Message.decode(data)
        return Job(message.message_id, message.queue_name.removesuffix(".DQ"), message.actor_name,
                   self.arguments(message.actor_name, message.args, message.kwargs), state,
                   message.message_timestamp / 1000, _seconds(message.options.get("eta")),
                   int(message.options.get("retries", 0)))

    def arguments(self, actor_name: str, args, kwargs) -> dict:
        try:
            fn = self.broker.get_actor(actor_name).fn
        except ActorNotFound:
            return redact_arguments({"args": list(args), **kwargs})
        return redact_arguments(named_arguments(fn, args, kwargs))

    # Failed jobs.

    def dead(self, queue: str, limit: int, offset: int = 0) -> list[Failure]:
        """A queue's dead letters, the latest first, with what their failure records say."""
        ids = self.client.zrevrange(self.keys.dead(queue), offset, offset + limit - 1, withscores=True)
        if not ids:
            return []
        datas = self.client.hmget(self.keys.dead_messages(queue), [rid for rid, _ in ids])
        messages = [(Message.decode(data), died) for data, (_, died) in zip(datas, ids) if data is not None]
        records = self._records([m.message_id for m, _ in messages])
        return [self._failure(message, records.get(message.message_id), died / 1000) for message, died in messages]

    def retrying(self, queue: str | None, limit: int) -> list[Failure]:
        """Jobs whose last attempt failed and that Dramatiq will try again, the latest failure first."""
        index = self.keys.failures_of(queue) if queue else self.keys.failures
        ids = [i.decode() for i in self.client.zrevrange(index, 0, 499)]
        records = self._records(ids)
        out = []
        for message_id in ids:
            record = records.get(message_id)
            if record is not None and record.get("dead") == "0":
                out.append(self._from_record(message_id, record, "retrying"))
                if len(out) >= limit:
                    break
        return out

    def failure(self, message_id: str) -> Failure | None:
        """One failed job with its traceback, or None if no record or dead letter has this id."""
        record = {k.decode(): v.decode() for k, v in self.client.hgetall(self.keys.failure(message_id)).items()}
        found = self.find_dead(message_id, record)
        if found is not None:
            queue, rid = found
            data = self.client.hget(self.keys.dead_messages(queue), rid)
            died = self.client.zscore(self.keys.dead(queue), rid)
            if data is not None:
                return self._failure(Message.decode(data), record or None, (died or 0) / 1000, with_traceback=True)
        if not record:
            return None
        state = "retrying" if record.get("dead") == "0" else "dead"
        return msgspec.structs.replace(self._from_record(message_id, record, state), traceback=record.get("traceback"))

    def find_dead(self, message_id: str, record: dict | None = None) -> tuple[str, str] | None:
        """(queue, redis id) of a message's dead letter: straight from its failure record, else by a scan."""
        if record is None:
            queue, rid = (v.decode() if v else None
                          for v in self.client.hmget(self.keys.failure(message_id), ["queue", "redis_id"]))
            record = {"queue": queue, "redis_id": rid}
        queue, rid = record.get("queue"), record.get("redis_id")
        if queue and rid and self.client.hexists(self.keys.dead_messages(queue), rid):
            return queue, rid
        for queue in self.queues:
            for rid, data in self._scan(self.keys.dead_messages(queue)):
                if message_id.encode() in data and Message.decode(data).message_id == message_id:
                    return queue, rid.decode()
        return None

    def _records(self, message_ids: list[str]) -> dict[str, dict[str, str]]:
        if not message_ids:
            return {}
        with self.client.pipeline(transaction=False) as pipe:
            for message_id in message_ids:
                pipe.hmget(self.keys.failure(message_id), _RECORD_FIELDS)
            rows = pipe.execute()
        return {message_id: {name: value.decode() for name, value in zip(_RECORD_FIELDS, row) if value is not None}
                for message_id, row in zip(message_ids, rows) if any(value is not None for value in row)}

    def _failure(self, message: Message, record: dict | None, died_s: float, with_traceback: bool = False) -> Failure:
        """A dead letter, with its failure record if it has one (else what Dramatiq's Retries kept)."""
        record = record or {}
        traceback = (record.get("traceback") or message.options.get("traceback")) if with_traceback else None
        return Failure(message.message_id, message.queue_name.removesuffix(".DQ"), message.actor_name,
                       self.arguments(message.actor_name, message.args, message.kwargs), "dead",
                       record.get("exception"), int(record.get("attempts") or message.options.get("retries", 0) or 1),
                       _seconds(record.get("first_failed_at")), _seconds(record.get("last_failed_at")) or died_s,
                       traceback)

    def _from_record(self, message_id: str, record: dict, state: str) -> Failure:
        return Failure(message_id, record.get("queue", ""), record.get("actor", ""),
                       json.loads(record.get("arguments") or "{}"), state, record.get("exception"),
                       int(record.get("attempts") or 0), _seconds(record.get("first_failed_at")),
                       _seconds(record.get("last_failed_at")))

    # Delayed jobs and search.

    def delayed(self, queue: str, limit: int) -> list[Job]:
        """A queue's delayed messages (retries in backoff among them), the first due first."""
        jobs = [self.job(data, "delayed") for _, data in self._scan(self.keys.delayed_messages(queue))]
        return sorted(jobs, key=lambda job: job.eta or 0)[:limit]

    def search(self, term: str, limit: int) -> list[Job]:
        """Jobs whose message id is `term`, whose actor's name contains it, or one of whose (redacted)
        argument values contains it; queued, delayed and dead ones, in that order per queue."""
        needle = term.casefold()
        found = []
        for queue in self.queues:
            for key, state in ((self.keys.messages(queue), "queued"), (self.keys.delayed_messages(queue), "delayed"),
                               (self.keys.dead_messages(queue), "dead")):
                for _, data in self._scan(key):
                    job = self.job(data, state)
                    if (job.message_id == term or needle in job.actor.casefold()
                            or needle in json.dumps(job.arguments, ensure_ascii=False).casefold()):
                        found.append(job)
                        if len(found) >= limit:
                            return found
        return found

    def _scan(self, key: str):
        """(redis id, data) of a hash's entries, at most SCAN_MAX of them."""
        for n, entry in enumerate(self.client.hscan_iter(key, count=500)):
            if n >= SCAN_MAX:
                return
            yield entry


def _seconds(ms) -> float | None:
    return int(ms) / 1000 if ms not in (None, "") else None
