"""The realtime hub of one API worker process: one Redis pub/sub connection on `rt:notify`, the map of the
users connected here to their connections, and the heartbeat that keeps them marked active.

Every event is encoded once per dialect (each reader already got its own language's event from the
publisher) and offered to each connection's queue; nothing here awaits a client.
"""

from __future__ import annotations

import asyncio
import json
import logging

import redis
import redis.asyncio as aioredis

from domain.realtime import Keys
from handlers import redis_client
from handlers.realtime import render
from handlers.realtime.connection import SHUTDOWN, Connection
from handlers.realtime.streams import Streams, now_ms
from models import Guest, Token, utcnow

logger = logging.getLogger(__name__)

TOKEN_REVOKED = (4009, "token_revoked")
#: Disconnects within this long are marked seen together.
SEEN_BATCH_S = 0.05


class TooManyConnections(Exception):
    """The user holds realtime.max_connections_per_user connections on this process already."""


class Hub:
    """Connections of this process by user, fed from Redis pub/sub."""

    def __init__(self, settings):
        self.config = settings.realtime
        self.keys = Keys(settings.redis.namespace)
        self.redis_url = settings.redis_url
        self.users: dict[int, set[Connection]] = {}
        self.redis = None
        self.streams: Streams | None = None
        self._tasks: list[asyncio.Task] = []
        self._gone: set[int] = set()  # users whose last connection here just ended, to mark seen
        self._marking: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self.redis = redis_client.client(self.redis_url)
        self.streams = Streams(self.redis, self.keys, self.config.replay_window_s)
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._heartbeat())]
        try:
            await asyncio.wait_for(self._subscribed.wait(), 5)
        except asyncio.TimeoutError:
            logger.warning("Realtime: not subscribed to %s yet; clients catch up once it is.", self.keys.notify)

    async def stop(self) -> None:
        """Close every client 1012 (they resume on another process), mark them seen now, stop listening."""
        connections = [conn for conns in self.users.values() for conn in conns]
        for conn in connections:
            conn.close(*SHUTDOWN)
        if connections:
            await asyncio.sleep(0.2)  # the close frames go out
        try:
            await self.streams.touch(list(self.users))
        except redis.RedisError as e:
            logger.warning("Realtime: could not mark the users of closed connections seen: %s", e)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.redis.aclose()

    def add(self, conn: Connection) -> None:
        conns = self.users.setdefault(conn.user_id, set())
        if len(conns) >= self.config.max_connections_per_user:
            raise TooManyConnections()
        conns.add(conn)

    def remove(self, conn: Connection) -> None:
        conns = self.users.get(conn.user_id)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        if not conns:
            del self.users[conn.user_id]
        # Seen now: the publisher keeps writing its stream for a replay_window_s, so it can resume. The
        # disconnects of one moment (a network blip, a load balancer draining) go in one pipeline.
        self._gone.add(conn.user_id)
        if self._marking is None:
            self._marking = asyncio.get_running_loop().create_task(self._mark_gone())

    async def _mark_gone(self) -> None:
        await asyncio.sleep(SEEN_BATCH_S)
        users, self._gone, self._marking = list(self._gone), set(), None
        try:
            await self.streams.touch(users)
        except redis.RedisError as e:
            logger.warning("Realtime: could not mark %d users seen at disconnect: %s", len(users), e)

    async def publish_typing(self, event: dict, user_ids: list[int]) -> None:
        """An ephemeral event: published to every process, never stored, no seq."""
        if user_ids:
            await self.redis.publish(self.keys.notify, json.dumps({"to": [[u, None] for u in user_ids],
                                                                   "event": event}))

    def dispatch(self, raw: bytes) -> None:
        """One notification: offer its event to the connections here of the users it names."""
        note = json.loads(raw)
        event, tails = note["event"], {}
        for user_id, seq in note["to"]:
            for conn in self.users.get(user_id, ()):
                tail = tails.get(conn.dialect)
                if tail is None:
                    tail = tails[conn.dialect] = render.event_tail(event, conn.dialect)
                conn.offer(seq, event["type"], tail, event.get("ts"))

    async def _listen(self) -> None:
        lost = False
        while True:
            client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.notify)
                self._subscribed.set()
                if lost:  # notifications may have gone by meanwhile: every connection re-reads its stream
                    for conn in [conn for conns in self.users.values() for conn in conns]:
                        conn.catch_up()
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self.dispatch(message["data"])
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                logger.warning("Realtime: the pub/sub connection failed (%s); reconnecting.", e)
                lost = True
                await asyncio.sleep(1)
            finally:
                await pubsub.aclose()
                await client.aclose()

    async def _heartbeat(self) -> None:
        """Every heartbeat_s: mark the users here seen, keep their streams, notice a lost epoch, and close
        connections whose token was revoked or whose guest's room closed."""
        window_ms = self.config.replay_window_s * 1000
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                epochs = await self.streams.touch(list(self.users), forget_before_ms=now_ms() - 2 * window_ms)
            except redis.RedisError as e:
                logger.warning("Realtime: heartbeat could not reach Redis: %s", e)
                continue
            for user_id, epoch in epochs.items():
                for conn in list(self.users.get(user_id, ())):
                    if conn.epoch is not None and epoch != conn.epoch:
                        conn.catch_up()
            self._close_revoked()

    def _close_revoked(self) -> None:
        connections = [conn for conns in self.users.values() for conn in conns]
        tokens = {conn.token_id for conn in connections if conn.token_id}
        guests = {conn.guest_id for conn in connections if conn.guest_id}
        now = utcnow()
        dead = set()
        if tokens:
            dead |= {token_id for (token_id,) in Token.select(Token.id).where(
                Token.id.in_(tokens) & (Token.revoked_at.is_null(False) | (Token.expires_at <= now))).tuples()}
        if guests:
            dead |= {guest_id for (guest_id,) in Guest.select(Guest.id).where(
                Guest.id.in_(guests) & (Guest.revoked_at.is_null(False) | (Guest.expires_at <= now))).tuples()}
        for conn in connections:
            if conn.token_id in dead or conn.guest_id in dead:
                conn.close(*TOKEN_REVOKED)
