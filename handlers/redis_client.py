"""The asyncio Redis clients of an API process.

Each has a bounded pool that makes a burst wait for a free connection: redis-py's default pool refuses
the 101st concurrent command at once ("Too many connections"), which a thousand WebSocket clients
connecting together, or as many requests checking a throttle, would reach (bench/realtime.py did).
"""

from __future__ import annotations

import redis.asyncio as aioredis

#: Connections one client opens at most; a command waits up to WAIT_S for one of them.
MAX_CONNECTIONS = 64
WAIT_S = 10


def client(url: str, *, socket_timeout: float | None = 5) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=WAIT_S,
                                                    socket_connect_timeout=2, socket_timeout=socket_timeout)
    return aioredis.Redis.from_pool(pool)
