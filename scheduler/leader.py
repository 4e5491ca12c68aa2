"""A Redis lock that makes one scheduler process the leader; a standby takes over when it lapses."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import redis

logger = logging.getLogger(__name__)

# Renew only if we still hold the lock: compare-and-expire in one step.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

# Release only if we still hold the lock: compare-and-delete in one step.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaderLock:
    """Held by at most one process at a time; `hold()` takes or renews it and says whether we lead."""

    def __init__(self, client: redis.Redis, key: str, ttl_s: int):
        self.client = client
        self.key = key
        self.ttl_ms = ttl_s * 1000
        self.token = uuid.uuid4().hex
        self.leading = False
        self._held_until = 0.0  # monotonic: when the lock we last took or renewed lapses
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def leads(self) -> bool:
        """Whether we hold the lock now: held at the last `hold()`, and not lapsed since. A process that
        stalled past the TTL (a long pause, Redis unreachable) may have lost it to a standby without
        knowing yet, so it stops as the lock lapses, not at its next renewal."""
        return self.leading and time.monotonic() < self._held_until

    def hold(self) -> bool:
        asked = time.monotonic()
        try:
            held = bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms])) or bool(
                self.client.set(self.key, self.token, nx=True, px=self.ttl_ms)
            )
        except redis.RedisError as e:
            logger.warning("Could not reach Redis for the scheduler lock: %s", e)
            held = False
        if held != self.leading:
            logger.info("Scheduler %s %s the lead.", self.token[:8], "took" if held else "lost")
        self.leading = held
        if held:
            self._held_until = asked + self.ttl_ms / 1000  # from before the call: Redis set it later than that
        return held

    def keep(self, stop: threading.Event) -> None:
        """Hold the lead, or stand by for it, until `stop` is set. The leader renews every third of the
        TTL; a standby tries again the moment the leader's lock is due to lapse (its PTTL), so a leader
        killed -9 is replaced within the TTL of its last renewal, not a polling interval later."""
        while not stop.is_set():
            self.hold()
            stop.wait(self._next_try())

    def _next_try(self) -> float:
        renew_s = self.ttl_ms / 3000
        if self.leading:
            return renew_s
        try:
            left_ms = self.client.pttl(self.key)
        except redis.RedisError:
            return renew_s
        if left_ms == -2:  # gone between our try and now: released, so try again at once
            return 0.01
        return renew_s if left_ms < 0 else min(renew_s, left_ms / 1000 + 0.005)

    def release(self) -> None:
        if self.leading:
            try:
                self._release(keys=[self.key], args=[self.token])
            except redis.RedisError as e:
                logger.warning("Could not release the scheduler lock (it lapses by itself): %s", e)
        self.leading = False
