"""External temporary rooms: a developer's room (a workspace of its own with one channel of kind
`temporary_room`) that guests join with a nickname until it expires; the owner's limits and quotas;
and how this area's commands apply.

- Limits come from `[rooms]` unless an operator set the owner's own (`app.py rooms limits`, RoomLimit).
- Quotas (active rooms, creations a calendar month in UTC) are decided where the room is written, under
  a lock on the owner, so parallel creates never get past them; the handler only checks what a request
  asks for (its ttl_hours, its extension_hours).
- A room is open while it is `active` and its `expires_at` is ahead. Every read checks both, and so
  does every message's write, whoever posts, so a room is shut at its `expires_at` to the millisecond
  (a post let in just before it does not commit after it); the expiry actor (actors/rooms.py) then marks it
  `expired` and revokes its guests' tokens, and later purges it.
- A guest is a user of its own (named by the nickname, no email, password or token, so no sign-in
  reaches it) who is a member of the room's workspace with the role `guest`: translation serves its
  language like any reader's. Its session token is `grst_<secret>`, of which only the SHA-256 is kept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import secrets
import uuid

from config import settings
from domain import realtime as rt
from domain.commands import Command
from domain.errors import Forbidden, Gone, Invalid, NotFound, Unauthenticated
from domain.tokens import digest
from domain.writes import after_commit, apply, create
from models import Channel, Guest, Membership, Prepared, Room, RoomLimit, User, Workspace, db, is_postgres, utcnow

KIND = "temporary_room"
GUEST_HEADER = "X-Rosetta-Guest-Token"
TOKEN_PREFIX = "grst_"
NOT_FOUND = "Temporary Room not found."
QUOTA = "temporary_room_quota_exceeded"
ACTIVE_LIMIT_EXCEEDED = "Temporary Room active room limit exceeded."
MONTHLY_LIMIT_EXCEEDED = "Temporary Room monthly creation limit exceeded."
EXPIRED = "Temporary Room is not available."
EXPIRED_CODE = "temporary_room_expired"
EXTENSION_NOT_ALLOWED = "Temporary Room extension is not allowed."
EXTENSION_NOT_ALLOWED_CODE = "temporary_room_extension_not_allowed"
TTL_EXCEEDS_LIMIT = "ttl_hours_exceeds_limit"
EXTENSION_EXCEEDS_LIMIT = "extension_hours_exceeds_limit"


@dataclasses.dataclass(frozen=True)
class Limits:
    active_limit: int
    monthly_creation_limit: int
    max_ttl_hours: int
    extension_hours: int  # the most one extension adds; 0: no extension
    max_lifetime_hours: int  # from creation, extensions included

    @property
    def longest_ttl_hours(self) -> int:
        return min(self.max_ttl_hours, self.max_lifetime_hours)


LIMIT_FIELDS = tuple(field.name for field in dataclasses.fields(Limits))


def limits_of(owner_id: int) -> Limits:
    """The owner's limits: their own where an operator set one, else the deployment's."""
    config = settings().rooms
    own = RoomLimit.get_or_none(RoomLimit.user == owner_id)
    return Limits(**{name: getattr(own, name) if own is not None and getattr(own, name) is not None
                     else getattr(config, name) for name in LIMIT_FIELDS})


def hours(count: int) -> dt.timedelta:
    """`count` of the hours rooms are measured in (`[rooms] hour_s` seconds each; tests shorten them)."""
    return dt.timedelta(seconds=count * settings().rooms.hour_s)


def month_start(at: dt.datetime) -> dt.datetime:
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def usage(owner_id: int, now: dt.datetime) -> tuple[int, int]:
    """(active rooms, rooms created this calendar month) of the owner."""
    mine = Room.owner == owner_id
    active = Room.select().where(mine & (Room.status == "active") & (Room.expires_at > now)
                                 & Room.channel.is_null(False)).count()
    monthly = Room.select().where(mine & (Room.created_at >= month_start(now))).count()
    return active, monthly


def is_open(room: Room, now: dt.datetime) -> bool:
    """Active and not past its time; a room whose workspace its owner deleted is shut for good too."""
    return room.status == "active" and room.expires_at > now and room.channel_id is not None


def expired() -> Gone:
    return Gone(EXPIRED, {"code": [EXPIRED_CODE]})


def mint_token() -> tuple[str, str]:
    """A new guest session token, and the digest to store."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, digest(token)  # the bearer tokens' digest: the secret is as random as theirs


_room = Prepared(lambda room_id: Room.select().where(Room.id == room_id), room_id=uuid.UUID)


def open_room(room_id: uuid.UUID, now: dt.datetime | None = None) -> Room:
    """The room, if it exists (NotFound) and is still open (Gone)."""
    room = _room.first(room_id=room_id)
    if room is None:
        raise NotFound(NOT_FOUND)
    if not is_open(room, now or utcnow()):
        raise expired()
    return room


def owned_room(room_id: uuid.UUID, owner_id: int) -> Room:
    """The owner's room; anyone else's is not found."""
    room = _room.first(room_id=room_id)
    if room is None or room.owner_id != owner_id:
        raise NotFound(NOT_FOUND)
    return room


_room_of_channel = Prepared(lambda channel_id: Room.select(Room.id).where(Room.channel == channel_id),
                            channel_id=uuid.UUID)


@functools.lru_cache(maxsize=65536)
def _room_id_of(channel_id: uuid.UUID) -> uuid.UUID | None:
    """The room whose channel this is, if any. Kept: a channel is made a room's with the room, or never
    (and a deleted room's channel takes no more messages), so every other channel's messages are written
    with no lookup after the first."""
    room = _room_of_channel.first(channel_id=channel_id)
    return room.id if room is not None else None


def refuse_shut(channel_ids) -> None:
    """Gone if one of these channels is a room's that is no longer open. Messages are written only after
    this, so a post the handler let in just before `expires_at` does not commit after it, nor does a
    member's once the room is over (what it holds is to be purged)."""
    now = utcnow()
    for channel_id in set(channel_ids):
        room_id = _room_id_of(channel_id)
        room = _room.first(room_id=room_id) if room_id is not None else None
        if room is not None and not is_open(room, now):
            raise expired()


_guest = Prepared(lambda token_hash: Guest.select(Guest, Room, User).join(Room).switch(Guest).join(User)
                  .where(Guest.token_hash == token_hash), token_hash=str)


def guest_of(token: str | None, room_id: uuid.UUID | None = None) -> Guest:
    """The guest whose session token this is, with `.room` and `.user`; for `room_id`, only that room's.

    Unauthenticated for no token, an unknown one, or one of another room; Gone once its room has expired
    (or the token was revoked with it).
    """
    if not token or not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated("A guest token is required.")
    guest = _guest.first(token_hash=digest(token.strip()))
    if guest is None or (room_id is not None and guest.room.id != room_id):
        raise Unauthenticated("The guest token is not valid.")
    now = utcnow()
    if guest.revoked_at is not None or not is_open(guest.room, now) or guest.expires_at <= now:
        raise expired()
    return guest


# Commands.

class CreateRoom(Command):
    """A room and its workspace and channel; refused when the owner's quotas are used up."""

    room_id: uuid.UUID
    workspace_id: uuid.UUID
    channel_id: uuid.UUID
    owner_id: int
    name: str
    external_reference: str | None
    expires_at: dt.datetime
    max_expires_at: dt.datetime
    at: dt.datetime


class ExtendRoom(Command):
    """Push an open room's expiry out by `hours`, never past its `max_expires_at`; `up_to_max` (the
    default extension) takes as much of `hours` as `max_expires_at` leaves."""

    room_id: uuid.UUID
    hours: int
    at: dt.datetime
    up_to_max: bool = False


class JoinRoom(Command):
    """A guest: its own user, a `guest` membership of the room's workspace, and its session token."""

    guest_id: uuid.UUID
    user_uid: uuid.UUID
    room_id: uuid.UUID
    nickname: str
    preferred_language: str
    token_hash: str
    at: dt.datetime


class SetRoomLimits(Command):
    """An owner's own limits; a field left None keeps its value, one named in `clear` goes back to the default."""

    user_id: int
    at: dt.datetime
    active_limit: int | None = None
    monthly_creation_limit: int | None = None
    max_ttl_hours: int | None = None
    extension_hours: int | None = None
    max_lifetime_hours: int | None = None
    clear: list[str] = []


def _lock(model, key) -> None:
    """Hold the row until this transaction ends, so writes about it take turns (PostgreSQL). On SQLite
    the write transaction holds the whole database already."""
    if is_postgres():
        list(model.select(model._meta.primary_key).where(model._meta.primary_key == key).for_update())


def extended_expiry(room: Room, extension_hours: int, up_to_max: bool) -> dt.datetime:
    """The room's expires_at after an extension (for `up_to_max`, as much of it as `max_expires_at` leaves);
    Invalid past `max_expires_at`, or when nothing is left to add."""
    expires_at = room.expires_at + hours(extension_hours)
    if up_to_max:
        expires_at = min(expires_at, room.max_expires_at)
    if not room.expires_at < expires_at <= room.max_expires_at:
        raise Invalid(EXTENSION_EXCEEDS_LIMIT, {"extension_hours": [EXTENSION_EXCEEDS_LIMIT]})
    return expires_at


def _expire_at(room_id: uuid.UUID, extension_count: int, expires_at: dt.datetime) -> None:
    """Have the room expire at `expires_at` unless extended (its extension count moved on) by then."""
    eta_ms = int(expires_at.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    after_commit("room_expiry", room_id=str(room_id), extension_count=extension_count, not_before_ms=eta_ms)


@apply.register
def _(cmd: CreateRoom) -> None:
    _lock(User, cmd.owner_id)
    limits = limits_of(cmd.owner_id)
    active, monthly = usage(cmd.owner_id, utcnow())
    if active >= limits.active_limit:
        raise Forbidden(ACTIVE_LIMIT_EXCEEDED, {"code": [QUOTA]})
    if monthly >= limits.monthly_creation_limit:
        raise Forbidden(MONTHLY_LIMIT_EXCEEDED, {"code": [QUOTA]})
    create(Workspace, id=cmd.workspace_id, name=cmd.name, description="", visibility="private", owner=cmd.owner_id,
           created_at=cmd.at, updated_at=cmd.at)
    Membership.insert(workspace=cmd.workspace_id, user=cmd.owner_id, role="owner", created_at=cmd.at).execute()
    create(Channel, id=cmd.channel_id, workspace=cmd.workspace_id, name=cmd.name, slug="room", kind=KIND,
           visibility="public", created_by=cmd.owner_id, created_at=cmd.at, updated_at=cmd.at)
    create(Room, id=cmd.room_id, owner=cmd.owner_id, workspace=cmd.workspace_id, channel=cmd.channel_id, name=cmd.name,
           external_reference=cmd.external_reference, expires_at=cmd.expires_at, max_expires_at=cmd.max_expires_at,
           created_at=cmd.at)
    _expire_at(cmd.room_id, 0, cmd.expires_at)


@apply.register
def _(cmd: ExtendRoom) -> None:
    _lock(Room, cmd.room_id)
    room = Room.get_or_none(Room.id == cmd.room_id)
    if room is None:
        raise NotFound(NOT_FOUND)
    if not is_open(room, utcnow()):
        raise expired()
    expires_at = extended_expiry(room, cmd.hours, cmd.up_to_max)
    Room.update(expires_at=expires_at, extension_count=Room.extension_count + 1).where(Room.id == cmd.room_id).execute()
    Guest.update(expires_at=expires_at).where((Guest.room == cmd.room_id) & Guest.revoked_at.is_null()).execute()
    _expire_at(cmd.room_id, room.extension_count + 1, expires_at)


@apply.register
def _(cmd: JoinRoom) -> None:
    _lock(Room, cmd.room_id)  # an extension beside the join waits, or has committed: the guest gets its expires_at
    room = Room.get_or_none(Room.id == cmd.room_id)
    if room is None:
        raise NotFound(NOT_FOUND)
    if not is_open(room, utcnow()):
        raise expired()
    create(User, uid=cmd.user_uid, name=cmd.nickname, preferred_language=cmd.preferred_language, created_at=cmd.at,
           updated_at=cmd.at)
    user_id = User.select(User.id).where(User.uid == cmd.user_uid).scalar()
    Membership.insert(workspace=room.workspace_id, user=user_id, role="guest", created_at=cmd.at).execute()
    rt.announce(cmd.command_id, rt.MEMBERSHIP_ADDED, f"{room.workspace_id.hex}:{user_id}",
                rt.membership_data(room.workspace_id, user_id, "guest"), rt.members(room.workspace_id))
    create(Guest, id=cmd.guest_id, room=cmd.room_id, user=user_id, token_hash=cmd.token_hash,
           expires_at=room.expires_at, created_at=cmd.at)


@apply.register
def _(cmd: SetRoomLimits) -> None:
    values = {name: getattr(cmd, name) for name in LIMIT_FIELDS if getattr(cmd, name) is not None}
    values |= {name: None for name in cmd.clear if name in LIMIT_FIELDS}
    with db.atomic():
        if RoomLimit.update(updated_at=cmd.at, **values).where(RoomLimit.user == cmd.user_id).execute() == 0:
            create(RoomLimit, user=cmd.user_id, updated_at=cmd.at, **values)
