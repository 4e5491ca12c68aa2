"""Publishing realtime events (domain/realtime.py, docs/realtime.md) to each reader's stream in Redis.

The write actor publishes the events of what it committed right after the commit, before the relay
sends the other follow-ups; the `messages` actors the outbox sends the same follow-ups to publish
them again, which covers a crash in between: each event id is published once (a dedupe key in the
same Lua call), so the second is a no-op. The translation actor publishes each reader language's
translation (with an outbox row of its own for a crash before it did), the room expiry its `room.expired`.

One Lua call an event does it all atomically: the dedupe key, then for each reader connected now or
within the replay window (`rt:active`) the next seq (INCR), XADD `<seq>-0` capped at about
`replay_max_events`, the window's EXPIRE, and at the end one PUBLISH telling every API process which
users got which seq. Readers away for longer get nothing written: their client resyncs.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from functools import cache

import dramatiq
import redis

from config import settings
from domain import realtime as rt
from models import Channel, Message, Room, Translation, User

logger = logging.getLogger(__name__)

# KEYS: dedupe, active, notify. ARGV: event JSON, window s, maxlen, now ms, epoch candidate, key prefix,
# then the readers' user ids. A user whose epoch is new (first event, or the key was lost) starts a fresh
# stream; one whose seq went backwards (its counter lost) too, under a new epoch: its client resyncs.
# Four calls a reader (a fan-out to 1,000 readers spent 14 ms in here with seven): their last-seen scores
# come in one ZMSCORE, and the keys' time to live is set when a key is made (the epoch with it; the stream
# and its counter once TTL finds none), then extended by the API processes while the user is connected
# and once more at disconnect (handlers/realtime/streams.py `touch`), which is all a resume needs: a user
# away for longer than the window is not written to any more.
_PUBLISH = """
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then return -1 end
local window = tonumber(ARGV[2])
local since = tonumber(ARGV[4]) - window * 1000
local users, seen = {}, {}
for i = 7, #ARGV do users[#users + 1] = ARGV[i] end
for first = 1, #users, 1000 do
  local scores = redis.call('zmscore', KEYS[2], unpack(users, first, math.min(first + 999, #users)))
  for j = 1, #scores do seen[first + j - 1] = scores[j] end
end
local to = {}
for i = 1, #users do
  if seen[i] and tonumber(seen[i]) >= since then
    local user = users[i]
    local base = ARGV[6] .. ':u:' .. user
    if redis.call('set', base .. ':epoch', ARGV[5], 'NX', 'EX', window) then
      redis.call('del', base, base .. ':seq')
    end
    local seq = redis.call('incr', base .. ':seq')
    local added = redis.pcall('xadd', base, 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', ARGV[1])
    if type(added) == 'table' and added['err'] then
      redis.call('del', base)
      redis.call('set', base .. ':epoch', ARGV[5], 'EX', window)
      redis.call('set', base .. ':seq', 1)
      seq = 1
      redis.call('xadd', base, 'MAXLEN', '~', ARGV[3], '1-0', 'e', ARGV[1])
    end
    if redis.call('ttl', base) < 0 then
      redis.call('expire', base, window)
      redis.call('expire', base .. ':seq', window)
    end
    to[#to + 1] = {tonumber(user), seq}
  end
end
if #to > 0 then
  redis.call('publish', KEYS[3], '{"to":' .. cjson.encode(to) .. ',"event":' .. ARGV[1] .. '}')
end
return #to
"""


@cache
def _client() -> redis.Redis:
    from actors import broker  # the worker's own connection pool
    return broker.client


@cache
def _script():
    return _client().register_script(_PUBLISH)


def keys() -> rt.Keys:
    return rt.Keys(settings().redis.namespace)


def publish(event: dict, user_ids) -> int:
    """Append the event to the streams of these users (those connected, or within the window); returns
    how many got it, -1 when this event id was published already."""
    if event["ts"] is None:
        event = {**event, "ts": int(time.time() * 1000)}
    config, k = settings().realtime, keys()
    users = sorted(set(user_ids))
    if not users:
        return 0
    return _script()(keys=[k.dedupe(event["id"]), k.active, k.notify],
                     args=[json.dumps(event, separators=(",", ":")), config.replay_window_s,
                           config.replay_max_events, int(time.time() * 1000), secrets.token_hex(8), k.prefix, *users])


_TYPES = {"message_posted": rt.MESSAGE_CREATED, "message_edited": rt.MESSAGE_UPDATED,
          "message_deleted": rt.MESSAGE_DELETED}


def publish_messages(kind: str, message_ids: list[str]) -> int:
    """The events of messages posted, edited or deleted (outbox kinds); returns how many were published."""
    type_ = _TYPES[kind]
    ids = [uuid.UUID(m) for m in message_ids]
    rows = (Message.select(Message, Channel, User).join(Channel).switch(Message).join(User)
            .where(Message.id.in_(ids)))
    # An edit published after the message was deleted (its actor answered first, then published) would
    # bring the message back on a client that had the deletion: its message.deleted says it all.
    events = [(message, _message_event(type_, message)) for message in rows
              if not (type_ == rt.MESSAGE_UPDATED and message.deleted_at is not None)]
    if not events:
        return 0
    # The messages actors publish what the write actor did already, unless it crashed or Redis failed it:
    # those published already are passed over before their readers are looked up (reading a channel of
    # thousands costs more than the rest of a publish).
    with _client().pipeline(transaction=False) as pipe:
        for _, event in events:
            pipe.exists(keys().dedupe(event["id"]))
        done = pipe.execute()
    readers: dict[uuid.UUID, dict[int, str]] = {}
    published = 0
    for (message, event), published_already in zip(events, done):
        if published_already:
            continue
        if message.channel_id not in readers:
            readers[message.channel_id] = rt.readers(message.channel)
        published += publish(event, readers[message.channel_id]) > 0
    return published


def _message_event(type_: str, message: Message) -> dict:
    if type_ == rt.MESSAGE_DELETED:
        return rt.event(type_, message.id.hex, {"id": message.id.hex, "channel_id": message.channel_id.hex,
                                               "workspace_id": _hex(message.channel.workspace_id),
                                               "direct": message.channel.kind == "direct",
                                               "version": message.version}, ts=message.deleted_at)
    # An update's id names the revision (every change bumps it): a body edit and a pin are events of their
    # own, and so is a pin again after an unpin.
    version = message.version if type_ == rt.MESSAGE_CREATED else f"{message.version}.{message.revision}"
    return rt.event(type_, message.id.hex, rt.message_data(message, message.author), version=version,
                    ts=message.edited_at or message.created_at)


def publish_translations(done: list[tuple[uuid.UUID, int, dict[str, str]]]) -> None:
    """For each (message id, version, {reader tag: text}) stored, one event a language, to its readers."""
    rows = {m.id: m for m in Message.select(Message, Channel).join(Channel)
            .where(Message.id.in_([message_id for message_id, _, _ in done]))}
    readers: dict[uuid.UUID, dict[int, str]] = {}
    for message_id, version, texts in done:
        message = rows.get(message_id)
        if message is None or not texts:
            continue
        if message.channel_id not in readers:
            readers[message.channel_id] = rt.readers(message.channel)
        for tag, text in texts.items():
            wanting = [user for user, language in readers[message.channel_id].items() if language == tag]
            event = rt.event(rt.TRANSLATION_COMPLETED, f"{message_id.hex}:{tag}",
                             {"id": message_id.hex, "channel_id": message.channel_id.hex,
                              "workspace_id": _hex(message.channel.workspace_id),
                              "direct": message.channel.kind == "direct", "version": version, "language": tag,
                              "display_content": text}, version=version)
            publish(event, wanting)


def publish_stored_translations(message_ids: list[str]) -> None:
    """The translation events of these messages' current versions, from the translations stored."""
    ids = [uuid.UUID(m) for m in message_ids]
    versions = dict(Message.select(Message.id, Message.version).where(
        Message.id.in_(ids) & Message.deleted_at.is_null()).tuples())
    texts: dict[uuid.UUID, dict[str, str]] = {}
    for message_id, language, body in (Translation.select(Translation.message, Translation.language,
                                                          Translation.body)
                                       .join(Message).where(Message.id.in_(list(versions))
                                                            & (Translation.version == Message.version)).tuples()):
        texts.setdefault(uuid.UUID(str(message_id)), {})[language] = body
    publish_translations([(message_id, version, texts[message_id])
                          for message_id, version in versions.items() if message_id in texts])


def publish_room_expired(room_ids: list[uuid.UUID]) -> None:
    for room in Room.select(Room, Channel).join(Channel).where(Room.id.in_(room_ids)):
        publish(rt.event(rt.ROOM_EXPIRED, room.id.hex, {"room_id": room.id.hex, "channel_id": room.channel_id.hex,
                                                        "workspace_id": _hex(room.workspace_id)},
                         ts=room.expired_at), rt.readers(room.channel))


@dramatiq.actor(queue_name="messages", max_retries=8, min_backoff=500, max_backoff=60_000, time_limit=60_000)
def publish_announced(event: dict, users: list[int]) -> None:
    """An event a write command announced (domain/realtime.py `announce`), to the readers it named."""
    publish(event, users)


def publish_committed(rows) -> None:
    """Publish the events of the outbox rows a commit stored. If Redis is down, the actors the relay sends
    the same rows to (`messages`, `publish_announced`) publish them later."""
    for row in rows:
        try:
            if row.kind in _TYPES:
                publish_messages(row.kind, [call["message_id"] for call in json.loads(row.arguments)])
            elif row.kind == "realtime":
                for call in json.loads(row.arguments):
                    publish(call["event"], call["users"])
        except redis.RedisError as e:
            logger.warning("Could not publish realtime events now (%s); the follow-up actors will.", e)


def _hex(value: uuid.UUID | None) -> str | None:
    return value.hex if value else None
