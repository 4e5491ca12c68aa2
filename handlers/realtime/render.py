"""A realtime event's dialect-neutral form (domain/realtime.py) in each dialect's wire shapes.

Sector: ids are UUID strings, users their account uid, a message as handlers/sector/schemas.py `Message`.
RosettaChat: ids are lowercase ULIDs, users integers, a message as handlers/rosetta/resources.py `Message`.
Times inside `data` are each dialect's timestamps; the frame's own `ts` stays Unix milliseconds in both.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from ulid import ULID

from domain import realtime as rt
from handlers.rosetta.schemas import stamp
from models import ulid_of

SECTOR, ROSETTA = "sector", "rosetta"

_encoder = msgspec.json.Encoder()


def encode(value) -> str:
    return _encoder.encode(value).decode()


def _time(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)


def _uuid(value: str | None) -> str | None:
    return None if value is None else str(uuid.UUID(value))


def _ulid(value: str | None) -> str | None:
    return None if value is None else ulid_of(value)


def _sector_place(data: dict) -> dict:
    return {"channel": _uuid(data["channel_id"]), "group": _uuid(data["workspace_id"]), "direct": data["direct"]}


def _rosetta_place(data: dict) -> dict:
    """Where it happened: a workspace channel, or a direct conversation (whose id is its channel's)."""
    place = {"channel_id": _ulid(data["channel_id"]), "workspace_id": _ulid(data["workspace_id"])}
    if data["direct"]:
        place["conversation_id"] = place["channel_id"]
    return place


def _sector_message(data: dict) -> dict:
    return {"author": _uuid(data["author"]["uid"]), "body": data["body"], **_sector_place(data),
            "created_at": _time(data["created_at"]), "id": _uuid(data["id"]), "pinned": data["pinned"],
            "version": data["version"]}


def _rosetta_message(data: dict) -> dict:
    author = data["author"]
    return {"id": _ulid(data["id"]), **_rosetta_place(data),
            "author": {"id": author["id"], "name": author["name"], "kind": author["kind"]},
            "type": data["type"], "original_content": data["body"], "language": data["language"],
            "translation_status": data["translation_status"], "translation_error": None,
            "display_content": data["body"], "display_source": "original",
            "parent_message_id": _ulid(data["parent_id"]), "reply_count": data["reply_count"],
            "created_at": stamp(_naive(data["created_at"])), "edited_at": stamp(_naive(data["edited_at"])),
            "attachment_count": data["attachment_count"], "pinned": data["pinned"], "version": data["version"]}


def _naive(ms: int | None) -> dt.datetime | None:
    value = _time(ms)
    return None if value is None else value.replace(tzinfo=None)


def _sector_data(type_: str, data: dict) -> dict:
    if type_ in (rt.MESSAGE_CREATED, rt.MESSAGE_UPDATED):
        return _sector_message(data)
    if type_ == rt.MESSAGE_DELETED:
        return {"id": _uuid(data["id"]), **_sector_place(data), "version": data["version"]}
    if type_ == rt.TRANSLATION_COMPLETED:
        return {"id": _uuid(data["id"]), **_sector_place(data), "version": data["version"],
                "display_language": data["language"], "display_body": data["display_content"],
                "display_source": "translated"}
    if type_ == rt.ROOM_EXPIRED:
        return {"room": _uuid(data["room_id"]), "channel": _uuid(data["channel_id"]),
                "group": _uuid(data["workspace_id"])}
    if type_ == rt.TYPING_STARTED:
        return {**_sector_place(data), "thread": _uuid(data.get("thread_id")), "user": _uuid(data["user"]["uid"]),
                "expires_at": _time(data["expires_at"])}
    if type_ in _MEMBERSHIP:
        return {"group": _uuid(data["workspace_id"]), "account": _uuid(data["user"].get("uid")),
                "role": data["role"], **({"previous_role": data["previous_role"]} if "previous_role" in data else {})}
    if type_ in _CHANNEL:
        return {"id": _uuid(data["id"]), "group": _uuid(data["workspace_id"]), "name": data["name"],
                "description": data["description"], "created_at": _time(data["created_at"])}
    if type_ == rt.CONVERSATION_CREATED:
        return {"id": _uuid(data["id"]), "participants": [_uuid(user["uid"]) for user in data["participants"]],
                "created_at": _time(data["created_at"])}
    return data


_MEMBERSHIP = (rt.MEMBERSHIP_ADDED, rt.MEMBERSHIP_REMOVED, rt.MEMBERSHIP_ROLE_CHANGED)
_CHANNEL = (rt.CHANNEL_CREATED, rt.CHANNEL_UPDATED, rt.CHANNEL_DELETED)


def _rosetta_user(user: dict) -> dict:
    return {"id": user["id"], "name": user.get("name"), "kind": user.get("kind", "user")}


def _rosetta_data(type_: str, data: dict) -> dict:
    if type_ in (rt.MESSAGE_CREATED, rt.MESSAGE_UPDATED):
        return _rosetta_message(data)
    if type_ == rt.MESSAGE_DELETED:
        return {"id": _ulid(data["id"]), **_rosetta_place(data), "version": data["version"]}
    if type_ == rt.TRANSLATION_COMPLETED:
        return {"id": _ulid(data["id"]), **_rosetta_place(data), "version": data["version"],
                "display_language": data["language"], "display_content": data["display_content"],
                "display_source": "translated"}
    if type_ == rt.ROOM_EXPIRED:
        return {"room_id": _ulid(data["room_id"]), "channel_id": _ulid(data["channel_id"]),
                "workspace_id": _ulid(data["workspace_id"])}
    if type_ == rt.TYPING_STARTED:
        user = data["user"]
        return {**_rosetta_place(data), "thread_id": _ulid(data.get("thread_id")),
                "user": {"id": user["id"], "name": user["name"], "kind": user["kind"]},
                "expires_at": stamp(_naive(data["expires_at"]))}
    if type_ in _MEMBERSHIP:  # as a Member resource has it
        return {"workspace_id": _ulid(data["workspace_id"]), "user_id": data["user"]["id"],
                "name": data["user"].get("name"), "role": data["role"],
                **({"previous_role": data["previous_role"]} if "previous_role" in data else {})}
    if type_ in _CHANNEL:  # as a Channel resource has it
        return {"id": _ulid(data["id"]), "workspace_id": _ulid(data["workspace_id"]), "name": data["name"],
                "slug": data["slug"], "description": data["description"], "visibility": data["visibility"],
                "kind": data["kind"], "created_at": stamp(_naive(data["created_at"])),
                "updated_at": stamp(_naive(data["updated_at"]))}
    if type_ == rt.CONVERSATION_CREATED:
        return {"id": _ulid(data["id"]), "participants": [_rosetta_user(user) for user in data["participants"]],
                "created_at": stamp(_naive(data["created_at"]))}
    return data


_DATA = {SECTOR: _sector_data, ROSETTA: _rosetta_data}


def event_tail(event: dict, dialect: str) -> str:
    """The event's frame without its seq and epoch: `{"id","type","ts","data"}` encoded, for `event_frame`."""
    return encode({"id": event["id"], "type": event["type"], "ts": event["ts"],
                   "data": _DATA[dialect](event["type"], event["data"])})


def event_frame(tail: str, seq: int | None, epoch: str | None) -> str:
    """An event frame from its tail: seq and epoch in front (none for typing, which is never stored)."""
    if seq is None:
        return tail
    return f'{{"seq":{seq},"epoch":"{epoch}",{tail[1:]}'


def channel_ref(dialect: str, channel_id: uuid.UUID, workspace_id: uuid.UUID | None, direct: bool) -> dict:
    """A channel as resync_required lists it: enough to refetch its messages."""
    if dialect == SECTOR:
        return {"channel": str(channel_id), "group": str(workspace_id) if workspace_id else None, "direct": direct}
    ref = {"channel_id": ulid_of(channel_id), "workspace_id": ulid_of(workspace_id) if workspace_id else None}
    if direct:
        ref["conversation_id"] = ref["channel_id"]
    return ref


def parse_id(value) -> uuid.UUID | None:
    """An id a client sent in either spelling (UUID or ULID), or None if it is neither."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        pass
    try:
        return ULID.from_str(value.upper()).to_uuid()
    except ValueError:
        return None
