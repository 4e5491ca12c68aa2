"""A user's realtime stream in Redis as the API processes read it: open it (the epoch, the top seq, when the
user was last seen), read what a client missed, keep it alive while the user is connected, and list the
channels to refetch after a resync."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass

from peewee import fn

from domain.realtime import Keys
from models import Channel, ChannelMember, Membership, Message

# KEYS: active, epoch, stream, seq. ARGV: user id, now ms, window s, epoch candidate.
# The same rule as the publisher's (actors/realtime.py): a new epoch starts an empty stream. Marks the
# user seen now (so the publisher writes for it from here on) and gives when it was seen before.
_OPEN = """
local seen = redis.call('zscore', KEYS[1], ARGV[1])
redis.call('zadd', KEYS[1], ARGV[2], ARGV[1])
local created = 0
if redis.call('set', KEYS[2], ARGV[4], 'NX', 'EX', ARGV[3]) then
  redis.call('del', KEYS[3], KEYS[4])
  created = 1
else
  redis.call('expire', KEYS[2], ARGV[3])
  redis.call('expire', KEYS[3], ARGV[3])
  redis.call('expire', KEYS[4], ARGV[3])
end
local first = redis.call('xrange', KEYS[3], '-', '+', 'COUNT', 1)
local first_id = false
if #first > 0 then first_id = first[1][1] end
return {redis.call('get', KEYS[2]), created, tonumber(redis.call('get', KEYS[4]) or '0'), seen or false, first_id}
"""

_BATCH = 500


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Opened:
    """A user's stream as a session starts on it."""

    epoch: str
    created: bool  # no epoch was there: nothing of this user's is in Redis
    top: int  # the last seq given out
    first: int | None  # the oldest seq still in the stream
    seen_ms: int | None  # when the user was last connected, before now


@dataclass(frozen=True)
class Resume:
    """Where a client says it stopped: the epoch and seq of its last event, and that event's time."""

    epoch: str
    last_seq: int
    last_ts: int | None


class Streams:
    """One deployment's streams, read through an asyncio Redis client."""

    def __init__(self, redis, keys: Keys, window_s: int):
        self.redis, self.keys, self.window_s = redis, keys, window_s
        self._open = redis.register_script(_OPEN)

    async def open(self, user_id: int) -> Opened:
        k = self.keys
        epoch, created, top, seen, first = await self._open(
            keys=[k.active, k.epoch(user_id), k.stream(user_id), k.seq(user_id)],
            args=[user_id, now_ms(), self.window_s, secrets.token_hex(8)])
        return Opened(epoch.decode(), bool(created), int(top), _seq(first) if first else None,
                      int(float(seen)) if seen else None)

    def problem(self, opened: Opened, resume: Resume) -> str | None:
        """Why the client cannot resume from `resume` (a resync_required reason), or None if it can."""
        if opened.created:
            return "unknown_user_stream"
        if opened.epoch != resume.epoch:
            return "epoch_changed"
        if opened.seen_ms is None or opened.seen_ms < now_ms() - self.window_s * 1000:
            return "window_exceeded"  # events went unwritten while it was away
        if resume.last_seq > opened.top:
            return "epoch_changed"
        if resume.last_seq < opened.top and (opened.first is None or opened.first > resume.last_seq + 1):
            return "window_exceeded"
        return None

    async def after(self, user_id: int, seq: int) -> list[tuple[int, bytes]]:
        """The (seq, event JSON) entries after `seq`, oldest first."""
        found: list[tuple[int, bytes]] = []
        start = f"{seq + 1}-0"
        while True:
            batch = await self.redis.xrange(self.keys.stream(user_id), min=start, max="+", count=_BATCH)
            found += [(_seq(entry_id), fields[b"e"]) for entry_id, fields in batch]
            if len(batch) < _BATCH:
                return found
            start = f"{found[-1][0] + 1}-0"

    async def epoch(self, user_id: int) -> str | None:
        value = await self.redis.get(self.keys.epoch(user_id))
        return value.decode() if value else None

    async def touch(self, user_ids: list[int], *, forget_before_ms: int | None = None) -> dict[int, str | None]:
        """Mark these users seen now and keep their streams for another window (dropping users gone for
        longer from `rt:active`); returns each one's epoch now."""
        if not user_ids:
            return {}
        k, pipe = self.keys, self.redis.pipeline(transaction=False)
        pipe.zadd(k.active, dict.fromkeys(user_ids, now_ms()))
        if forget_before_ms is not None:
            pipe.zremrangebyscore(k.active, "-inf", forget_before_ms)
        for user_id in user_ids:
            for key in (k.epoch(user_id), k.stream(user_id), k.seq(user_id)):
                pipe.expire(key, self.window_s)
            pipe.get(k.epoch(user_id))
        answers = (await pipe.execute())[2 if forget_before_ms is not None else 1:]
        return {user_id: answers[4 * i + 3].decode() if answers[4 * i + 3] else None
                for i, user_id in enumerate(user_ids)}


def _seq(entry_id) -> int:
    return int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).partition("-")[0])


def channels_changed(user_id: int, since_ms: int | None) -> list[tuple]:
    """(channel id, workspace id, direct) of the channels the user reads with messages posted, edited or
    deleted after `since_ms` (all it reads when None): what a client refetches after a resync."""
    mine = Membership.select(Membership.workspace).where(Membership.user == user_id)
    managed = mine.where(Membership.role.in_(("owner", "admin", "guest")))
    entered = ChannelMember.select(ChannelMember.channel).where(ChannelMember.user == user_id)
    readable = (((Channel.kind != "direct") & Channel.workspace.in_(mine)
                 & ((Channel.visibility == "public") | Channel.workspace.in_(managed) | Channel.id.in_(entered)))
                | ((Channel.kind == "direct") & Channel.id.in_(entered)))
    query = Channel.select(Channel.id, Channel.workspace, Channel.kind).where(readable)
    if since_ms is not None:
        since = dt.datetime.fromtimestamp(since_ms / 1000, dt.timezone.utc).replace(tzinfo=None)
        active = (Message.select(fn.DISTINCT(Message.channel))
                  .where((Message.created_at > since) | (Message.edited_at > since) | (Message.deleted_at > since)))
        query = query.where(Channel.id.in_(active))
    return [(channel_id, workspace_id, kind == "direct") for channel_id, workspace_id, kind in query.tuples()]
