"""Rate limits in Redis: a fixed-window counter per (action, key), shared by every HTTP process.

Over the limit, a request gets 429 with Retry-After: the seconds until its window ends.
"""

from __future__ import annotations

import hashlib

from domain.errors import TooManyAttempts

# INCR the counter, start its window on the first hit; answer the count and the window's seconds left.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('TTL', KEYS[1])}
"""


def client_ip(request) -> str:
    return request.remote_addr or request.ip


def _key(request, action: str, subject: str) -> str:
    # Hashed: the keys name email addresses, which have no business being readable in Redis.
    digest = hashlib.sha256(subject.casefold().encode()).hexdigest()[:32]
    return f"{request.app.ctx.settings.redis.namespace}:throttle:{action}:{digest}"


async def _count(request, key: str) -> tuple[int, int]:
    raw = await request.app.ctx.redis.get(key)
    return (int(raw) if raw else 0), await request.app.ctx.redis.ttl(key)


async def check(request, action: str, limits: dict[str, int]) -> None:
    """Refuse if any subject (an email, an IP) has used up its limit for `action` in this window."""
    for subject, limit in limits.items():
        count, ttl = await _count(request, _key(request, action, subject))
        if count >= limit:
            raise TooManyAttempts(retry_after=max(ttl, 1))


async def hit(request, action: str, limits: dict[str, int]) -> None:
    """Count one attempt against each subject, refusing if that goes over any limit."""
    window = request.app.ctx.settings.throttle.window_s
    over = 0
    for subject, limit in limits.items():
        count, ttl = await request.app.ctx.redis.eval(_HIT, 1, _key(request, action, subject), window)
        if count > limit:
            over = max(over, ttl, 1)
    if over:
        raise TooManyAttempts(retry_after=over)


async def clear(request, action: str, subject: str) -> None:
    await request.app.ctx.redis.delete(_key(request, action, subject))
