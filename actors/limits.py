"""Limits on calls to an outside service that every worker process shares, kept in Redis.

`Gate(name, concurrency, rate_per_s)` hands out slots: at most `concurrency` calls in flight at
once and at most `rate_per_s` started a second, across all workers; `pause(seconds)` holds every
worker back (a service's 429 with Retry-After). Redis keeps the time, so hosts' clocks do not
matter. A slot is a lease: a worker that dies holding one frees it when the lease runs out.
A worker waiting for a slot sleeps on a wake-up list that every release pushes to.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import redis

# KEYS: leases (sorted set: token -> expiry ms), next start allowed (ms), paused until (ms).
# ARGV: lease ms, concurrency, ms between starts (0: no rate limit), token.
# Returns 0 when the slot is taken, -1 when all are in use, else ms to wait (rate or pause).
_ACQUIRE = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then return paused - now end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
local spacing = tonumber(ARGV[3])
if spacing > 0 then
  local next_start = tonumber(redis.call('GET', KEYS[2]) or '0')
  if next_start > now then return next_start - now end
  redis.call('SET', KEYS[2], now + spacing, 'PX', spacing + 1000)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[4])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 0
"""

# KEYS: paused until. ARGV: ms. Moves the pause later, never earlier.
_PAUSE = """
local now = redis.call('TIME')
local until_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
if until_ms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
"""

#: Longest a waiter sleeps before it looks again, in case a wake-up was missed (a holder died).
RECHECK_S = 0.05


class Gate:
    def __init__(self, client: redis.Redis, key: str, *, concurrency: int, rate_per_s: float = 0,
                 lease_s: float = 60):
        self.client = client
        self.keys = [f"{key}:leases", f"{key}:next", f"{key}:paused"]
        self.wake_key = f"{key}:wake"
        self.concurrency = max(1, concurrency)
        self.spacing_ms = int(1000 / rate_per_s) if rate_per_s > 0 else 0
        self.lease_ms = int(lease_s * 1000)
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)

    @contextlib.contextmanager
    def slot(self):
        """Wait for a slot and hold it for the block."""
        token = uuid.uuid4().hex
        while True:
            wait_ms = self._acquire(keys=self.keys, args=[self.lease_ms, self.concurrency, self.spacing_ms, token])
            if wait_ms == 0:
                break
            if wait_ms < 0:
                self.client.blpop([self.wake_key], timeout=RECHECK_S)
            else:
                time.sleep(wait_ms / 1000)
        try:
            yield
        finally:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.zrem(self.keys[0], token)
                pipe.lpush(self.wake_key, 1)
                pipe.ltrim(self.wake_key, 0, self.concurrency - 1)
                pipe.execute()

    def pause(self, seconds: float) -> None:
        """No slot is handed out for `seconds` from now (already held ones run on)."""
        self._pause(keys=[self.keys[2]], args=[max(1, int(seconds * 1000))])
