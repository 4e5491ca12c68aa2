"""A Redis lock that makes one scheduler process the leader; a standby takes over when it lapses."""

from __future__ import annotations

import logging
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


class LeaderLock:
    """Held by at most one process at a time; `hold()` takes or renews it and says whether we lead."""

    def __init__(self, client: redis.Redis, key: str, ttl_s: int):
        self.client = client
        self.key = key
        self.ttl_ms = ttl_s * 1000
        self.token = uuid.uuid4().hex
        self.leading = False
        self._renew = client.register_script(_RENEW)

    def hold(self) -> bool:
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
        return held

    def release(self) -> None:
        if self.leading and self.client.get(self.key) == self.token.encode():
            self.client.delete(self.key)
        self.leading = False
