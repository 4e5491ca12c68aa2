"""The Redis keys of the operations state, under the broker's namespace (`<[redis] namespace>:dramatiq`),
beside the queues they describe."""

from __future__ import annotations

from dataclasses import dataclass

#: How long a minute of a queue's series is kept; the dashboard shows the last hour.
SERIES_TTL_S = 2 * 3600
#: How long a failure record is kept (as long as Dramatiq keeps a dead letter: 7 days).
FAILURE_TTL_S = 7 * 86400
#: At most this many failure records; the oldest go first.
FAILURES_MAX = 2000


@dataclass(frozen=True)
class Keys:
    """Key names of one deployment's operations state; `namespace` is the broker's."""

    namespace: str

    @property
    def paused(self) -> str:
        """A set of the queue names whose consumers stop fetching."""
        return f"{self.namespace}:ops:paused"

    def minute(self, queue: str, minute: int) -> str:
        """A hash of one queue's minute (Unix time // 60): the job counts p, f and h<bucket> runtimes, and the
        gauges depth, delayed, dead and oldest_age_s sampled in it (domain/ops/series.py)."""
        return f"{self.namespace}:ops:ts:{queue}:{minute}"

    def sampled(self, at: int) -> str:
        """Claimed (SET NX) by the one worker process that samples the queue gauges of the slot starting at
        `at` (Unix seconds), so that however many processes run, each slot is sampled once."""
        return f"{self.namespace}:ops:sampled:{at}"

    @property
    def workers(self) -> str:
        """A sorted set of worker process ids by their last heartbeat (Unix ms)."""
        return f"{self.namespace}:ops:workers"

    def worker(self, worker_id: str) -> str:
        """One worker process's registration (JSON), expiring when its heartbeats stop."""
        return f"{self.namespace}:ops:worker:{worker_id}"

    @property
    def failures(self) -> str:
        """A sorted set of message ids by their last failure (Unix ms)."""
        return f"{self.namespace}:ops:failures"

    def failures_of(self, queue: str) -> str:
        """The same, for one queue's messages."""
        return f"{self.namespace}:ops:failures:{queue}"

    def failure(self, message_id: str) -> str:
        """A hash of one message's failures: actor, queue, args, exception, traceback, attempts, times."""
        return f"{self.namespace}:ops:failure:{message_id}"

    def ran_now(self, message_id: str) -> str:
        """Set when an operator ran a delayed message early, so the copy a worker still holds is skipped."""
        return f"{self.namespace}:ops:ran-now:{message_id}"

    @property
    def schedule(self) -> str:
        """A hash of the scheduler's periodic jobs: name -> JSON of the last run, its outcome, the next run."""
        return f"{self.namespace}:ops:schedule"

    def queue(self, queue: str) -> str:
        """Dramatiq's list of a queue's waiting message ids (its `.msgs` hash holds their data)."""
        return f"{self.namespace}:{queue}"

    def messages(self, queue: str) -> str:
        return f"{self.namespace}:{queue}.msgs"

    def delayed(self, queue: str) -> str:
        return f"{self.namespace}:{queue}.DQ"

    def delayed_messages(self, queue: str) -> str:
        return f"{self.namespace}:{queue}.DQ.msgs"

    def dead(self, queue: str) -> str:
        """Dramatiq's dead letters of a queue: a sorted set of redis message ids by when they died."""
        return f"{self.namespace}:{queue}.XQ"

    def dead_messages(self, queue: str) -> str:
        return f"{self.namespace}:{queue}.XQ.msgs"
