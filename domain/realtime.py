"""Realtime events: what the actors publish to each user's stream and the API processes send to clients
(docs/realtime.md). Both sides share this module: the Redis keys, and the events' dialect-neutral form.

An event is `{"id", "type", "ts", "data"}`. Its id is deterministic (`type:entity:version`), so an actor
that runs again publishes nothing twice. `data` is neutral: ids as UUID hex, users as `{"id": int,
"uid": hex, "name", "kind"}`, times as Unix milliseconds; each dialect renders it in its own shapes
(handlers/realtime/render.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from peewee import fn

from domain.languages import canonical
from models import Channel, ChannelMember, Membership, Message, User

# Event types.
MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"
MESSAGE_DELETED = "message.deleted"
TRANSLATION_COMPLETED = "message.translation.completed"
ROOM_EXPIRED = "room.expired"
MEMBERSHIP_ADDED = "membership.added"
MEMBERSHIP_REMOVED = "membership.removed"
MEMBERSHIP_ROLE_CHANGED = "membership.role_changed"
CHANNEL_CREATED = "channel.created"
CHANNEL_UPDATED = "channel.updated"
CHANNEL_DELETED = "channel.deleted"
CONVERSATION_CREATED = "conversation.created"
TYPING_STARTED = "typing.started"  # ephemeral: published, never in a stream


@dataclass(frozen=True)
class Keys:
    """The Redis keys of one deployment's realtime state (under `[redis] namespace`)."""

    namespace: str

    @property
    def prefix(self) -> str:
        return f"{self.namespace}:rt"

    def stream(self, user_id: int) -> str:
        return f"{self.prefix}:u:{user_id}"

    def seq(self, user_id: int) -> str:
        return f"{self.prefix}:u:{user_id}:seq"

    def epoch(self, user_id: int) -> str:
        return f"{self.prefix}:u:{user_id}:epoch"

    def dedupe(self, event_id: str) -> str:
        return f"{self.prefix}:dedupe:{event_id}"

    @property
    def active(self) -> str:
        """ZSET user id -> last seen (Unix ms): who is connected now, or was within the replay window."""
        return f"{self.prefix}:active"

    @property
    def notify(self) -> str:
        """The pub/sub channel every API process listens on: `{"to": [[user_id, seq|null], ...], "event"}`."""
        return f"{self.prefix}:notify"

    def ticket(self, ticket: str) -> str:
        return f"{self.prefix}:ticket:{ticket}"


def millis(value: dt.datetime | None) -> int | None:
    """A naive UTC time as Unix milliseconds."""
    return None if value is None else int(value.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def event(type_: str, entity: str, data: dict, *, version: int | str | None = None,
          ts: dt.datetime | None = None) -> dict:
    event_id = f"{type_}:{entity}" + (f":{version}" if version is not None else "")
    return {"id": event_id, "type": type_, "ts": millis(ts) if ts else None, "data": data}


def user_of(user: User, kind: str = "user") -> dict:
    """A user as events name one; `name` as the APIs show it (a Sector account's is its username)."""
    return {"id": user.id, "uid": user.uid.hex, "name": user.name or user.username, "kind": kind}


def message_data(message: Message, author: User) -> dict:
    """A message as every dialect renders it; `workspace_id` is null and `direct` true for a conversation's."""
    channel = message.channel
    return {"id": message.id.hex, "channel_id": channel.id.hex,
            "workspace_id": channel.workspace_id.hex if channel.workspace_id else None,
            "direct": channel.kind == "direct", "author": user_of(author, message.author_kind),
            "type": message.type, "body": message.body, "language": message.language,
            "translation_status": message.translation_status,
            "parent_id": message.parent_id.hex if message.parent_id else None, "reply_count": message.reply_count,
            "pinned": message.pinned, "version": message.version, "attachment_count": message.attachment_count,
            "created_at": millis(message.created_at), "edited_at": millis(message.edited_at),
            "deleted_at": millis(message.deleted_at)}


def readers(channel: Channel) -> dict[int, str]:
    """Who reads the channel (the author included: their other clients want the event too), with the
    language each reads it in: the readers push notifications go to (domain/notifications.py), and guests."""
    if channel.kind == "direct":
        query = (User.select(User.id, User.preferred_language).join(ChannelMember, on=ChannelMember.user == User.id)
                 .where(ChannelMember.channel == channel.id))
    else:
        query = (Membership.select(User.id, fn.COALESCE(Membership.preferred_language, User.preferred_language))
                 .join(User).where(Membership.workspace == channel.workspace_id))
        if channel.visibility != "public":
            entered = ChannelMember.select(ChannelMember.user).where(ChannelMember.channel == channel.id)
            query = query.where(Membership.role.in_(("owner", "admin", "guest")) | Membership.user.in_(entered))
    return {user_id: canonical(language or "en") for user_id, language in query.tuples()}


def hex_id(value: str | uuid.UUID) -> str:
    return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(value).hex


# What write commands announce. Their readers are worked out inside the command's transaction (a deleted
# channel's readers are gone after it), and the event travels in the outbox with them (actors/realtime.py).

def announce(command_id: str, type_: str, entity: str, data: dict, user_ids) -> None:
    """Publish `type_` to these users once the command commits; the command's id makes the event's id."""
    from domain.writes import after_commit  # domain.writes imports each area of domain/ in turn

    users = sorted(set(user_ids))
    if users:
        after_commit("realtime", event=event(type_, entity, data, version=command_id), users=users)


def members(workspace_id: uuid.UUID) -> list[int]:
    return [user_id for (user_id,) in Membership.select(Membership.user).where(
        Membership.workspace == workspace_id).tuples()]


def channel_viewers(channel: Channel) -> list[int]:
    """Who sees the channel in its workspace's list: every member, but for a private one its channel
    members and the workspace's owners and admins."""
    query = Membership.select(Membership.user).where(Membership.workspace == channel.workspace_id)
    if channel.visibility == "private":
        entered = ChannelMember.select(ChannelMember.user).where(ChannelMember.channel == channel.id)
        query = query.where(Membership.role.in_(("owner", "admin")) | Membership.user.in_(entered))
    return [user_id for (user_id,) in query.tuples()]


def membership_data(workspace_id: uuid.UUID, user_id: int, role: str | None, **more) -> dict:
    user = User.get_or_none(User.id == user_id)
    return {"workspace_id": workspace_id.hex, "user": user_of(user) if user else {"id": user_id},
            "role": role, **more}


def channel_data(channel: Channel) -> dict:
    return {"id": channel.id.hex, "workspace_id": channel.workspace_id.hex if channel.workspace_id else None,
            "name": channel.name, "slug": channel.slug, "description": channel.description,
            "visibility": channel.visibility, "kind": channel.kind, "created_at": millis(channel.created_at),
            "updated_at": millis(channel.updated_at)}
