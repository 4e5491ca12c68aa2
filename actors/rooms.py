"""The `expiry` queue's temporary rooms: each room expires at its `expires_at`, and is purged
`[rooms] purge_after_hours` later.

A room's create and each of its extensions send `expire_room` delayed to the new `expires_at` (through
the outbox, so a crash loses none), carrying the room's extension count: a message sent before an
extension finds the count moved on and does nothing, the later one expires the room. The scheduler's
`expire_rooms` sweep expires whatever a lost message left open, and `purge_rooms` deletes what expired
rooms held. Each step is a conditional update or delete, so two running at once, or one run twice,
change nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import dramatiq
import redis

from actors import realtime
from actors.database import one_writer
from actors.files import store
from config import settings
from domain.rooms import hours
from models import Attachment, File, Guest, Message, Room, User, Workspace, db, utcnow

logger = logging.getLogger(__name__)

#: Rooms one sweep takes at most; the next sweep takes the rest.
BATCH = 500
#: Rooms one purge run takes at most (each may hold many messages and files).
PURGE_BATCH = 20


@dramatiq.actor(queue_name="expiry", max_retries=8, min_backoff=1000, max_backoff=60_000)
def expire_room(room_id: str, extension_count: int) -> None:
    """Expire the room at the `expires_at` it had after `extension_count` extensions (a message of an
    earlier count is a no-op). Sent early (a clock ahead of ours), it sends itself again for the rest."""
    room = Room.get_or_none(Room.id == uuid.UUID(room_id))
    if room is None or room.extension_count != extension_count:
        return
    if room.status == "expired":  # a redelivery after a crash between the expiry and its event: once more
        _announce([room.id])       # (published once: a repeat of the event id is a no-op)
        return
    early_ms = (room.expires_at - utcnow()) / dt.timedelta(milliseconds=1)
    if early_ms > 0:
        expire_room.send_with_options(args=(room_id, extension_count), delay=int(early_ms) + 1)
        return
    if _expire([room.id], extension_count):
        logger.info("Temporary room %s expired.", room_id)
        _announce([room.id])


@dramatiq.actor(queue_name="expiry", max_retries=3, time_limit=300_000)
def expire_rooms() -> None:
    """Expire every open room past its `expires_at` (those whose delayed message was lost)."""
    total = 0
    while True:
        due = [room_id for (room_id,) in Room.select(Room.id).where(
            (Room.status == "active") & (Room.expires_at <= utcnow())).order_by(Room.expires_at).limit(BATCH).tuples()]
        expired = _expire(due) if due else 0
        if expired:
            total += expired
            _announce(due)  # rooms another sweep expired meanwhile too: their event ids are published once
        if len(due) < BATCH:
            break
    if total:
        logger.info("Expired %d temporary rooms past their expires_at.", total)


def _announce(room_ids: list) -> None:
    """Tell the rooms' connected readers (`room.expired`); a client away learns it on its next request."""
    try:
        realtime.publish_room_expired([uuid.UUID(str(room_id)) for room_id in room_ids])
    except redis.RedisError as e:
        logger.warning("Could not publish room.expired for %d rooms: %s", len(room_ids), e)


def _expire(room_ids: list, extension_count: int | None = None) -> int:
    """Mark the rooms expired, those still open and due (and not extended since, for `extension_count`),
    and revoke their guests' tokens; returns how many this run expired."""
    now = utcnow()
    due = Room.id.in_(room_ids) & (Room.status == "active") & (Room.expires_at <= now)
    if extension_count is not None:
        due &= Room.extension_count == extension_count
    with one_writer(), db.atomic():
        count = Room.update(status="expired", expired_at=now).where(due).execute()
        expired = Room.select(Room.id).where(Room.id.in_(room_ids) & (Room.status == "expired"))
        Guest.update(revoked_at=now).where(Guest.room.in_(expired) & Guest.revoked_at.is_null()).execute()
    return count


@dramatiq.actor(queue_name="expiry", max_retries=3, time_limit=600_000)
def purge_rooms() -> None:
    """Delete what rooms expired `purge_after_hours` ago held: their files (bytes first), guests, messages and
    translations, and the workspace. The room row stays, `purged_at` set: it counts in its owner's quotas."""
    cutoff = utcnow() - hours(settings().rooms.purge_after_hours)
    purged = 0
    while True:
        rooms = list(Room.select().where((Room.status == "expired") & Room.purged_at.is_null()
                                         & (Room.expired_at <= cutoff)).order_by(Room.expired_at).limit(PURGE_BATCH))
        purged += sum(_purge(room) for room in rooms)  # those this run purged: another may have had some
        if len(rooms) < PURGE_BATCH:
            break
    if purged:
        logger.info("Purged %d expired temporary rooms.", purged)


def _purge(room: Room) -> int:
    """Purge one room; 1 if this run did (set its `purged_at`), 0 if another run was first."""
    guests = Guest.select(Guest.user).where(Guest.room == room.id)
    which = File.uploader.in_(guests)
    if room.channel_id:  # null when the owner deleted the room's workspace
        which |= File.id.in_(Attachment.select(Attachment.file).join(Message).where(Message.channel == room.channel_id))
    files = list(File.select(File.id, File.storage_key).where(which).tuples())
    for _, key in files:  # bytes before rows: deleting bytes twice is nothing, a row without bytes is a loss
        store().delete(key)
    with one_writer(), db.atomic():
        File.delete().where(File.id.in_([file_id for file_id, _ in files])).execute()
        User.delete().where(User.id.in_(guests)).execute()  # their memberships, guest rows and messages too
        if room.workspace_id:
            Workspace.delete().where(Workspace.id == room.workspace_id).execute()  # the channel and all it held
        return Room.update(purged_at=utcnow()).where((Room.id == room.id) & Room.purged_at.is_null()).execute()
