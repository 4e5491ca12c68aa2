"""External temporary rooms (domain/rooms.py): a developer's token creates, lists, extends and reports on
its rooms; guests join one with a nickname and read and post in it with their `X-Rosetta-Guest-Token`.

The owner's routes need a token (not a session) with the route's ability or `*`. The guest routes are
open to anyone holding the room's id: an unknown room is a 404 and an expired one a 410 before any token
is looked at; then the guest token must be one of this room's.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sanic import Blueprint

from domain import languages, rooms
from domain.errors import Forbidden, Invalid
from domain.rooms import GUEST_HEADER
from handlers.bodies import json, path_ulid
from handlers.rosetta import messages
from handlers.rosetta import resources as r
from handlers.rosetta import throttle
from handlers.rosetta.forms import Field, body, query, validate
from handlers.rosetta.guard import signed_in
from handlers.rosetta.paging import PAGE, paginate
from handlers.rosetta.schemas import LANGUAGES
from handlers.writing import claim_ids, write
from models import Room, new_id, ulid_of, utcnow

bp = Blueprint("rosetta_rooms", strict_slashes=False)

CREATE_ABILITY, READ_ABILITY, EXTEND_ABILITY = ("temporary-rooms:create", "temporary-rooms:read",
                                                "temporary-rooms:extend")
_BASE = "/external/rooms"

CREATE = {
    "name": Field(required=True, min=1, max=100, example="Customer Support Room", description="Room display name."),
    "external_reference": Field(nullable=True, max=255, example="customer-123",
                                description="Optional developer-side reference id, stored and returned."),
    "ttl_hours": Field(type="integer", nullable=True, min=1, max=1_000_000, example=12,
                       description="Optional room lifetime in hours. Defaults to 24 and is capped by owner limits."),
}
EXTEND = {
    "extension_hours": Field(type="integer", nullable=True, min=1, max=1_000_000, example=24,
                             description="Optional extension amount in hours. Defaults to the owner single-extension "
                                         "max."),
}
JOIN = {
    "nickname": Field(required=True, min=1, max=64, example="Mei", description="Guest display nickname."),
    "preferred_language": Field(required=True, one_of=LANGUAGES, example="zh-CN",
                                description="Guest preferred language: every message is shown in it."),
}
LIST = {
    "status": Field(one_of=("active", "expired"), example="active", description="Only rooms in this status."),
    **PAGE,
}
GUEST_MESSAGE = {name: messages.MESSAGE[name]
                 for name in ("content", "attachment_ids", "parent_message_id", "skip_translation")}


def iso(value: dt.datetime) -> str:
    """A UTC time as the spec writes a room's: ISO 8601, seconds, `+00:00`."""
    return value.replace(microsecond=0).isoformat() + "+00:00"


def _join_endpoint(request, room_id: uuid.UUID) -> str:
    base = request.app.ctx.settings.rooms.public_base_url.rstrip("/")
    return f"{base}/api/v1/external/rooms/{ulid_of(room_id)}/guests"


def resource(request, room: Room) -> r.Room:
    status = "active" if rooms.is_open(room, utcnow()) else "expired"  # expired to the ms, whatever the sweep did
    return r.Room(ulid_of(room.id), ulid_of(room.workspace_id) if room.workspace_id else None,
                  ulid_of(room.channel_id) if room.channel_id else None, room.name, rooms.KIND, status,
                  room.external_reference, iso(room.expires_at), iso(room.max_expires_at), room.extension_count,
                  iso(room.created_at), r.RoomJoin("POST", _join_endpoint(request, room.id)))


def _owner(request):
    """The developer calling with a token (signed_in has checked its ability): a session is refused as a
    token without the ability is, as the spec asks for a Sanctum API token."""
    if request.ctx.token is None:
        raise Forbidden("Invalid ability provided.")
    return request.ctx.user


def _room_id(value: str) -> uuid.UUID:
    return path_ulid(value, rooms.NOT_FOUND)


@bp.post(_BASE)
@signed_in(ability=CREATE_ABILITY)
async def create_room(request):
    owner = _owner(request)
    form = validate(body(request), CREATE)
    limits = rooms.limits_of(owner.id)
    ttl = form.get("ttl_hours")
    if ttl is None:  # "Defaults to 24 and is capped by owner limits"; an owner allowed no hour still gets the 422
        ttl = max(1, min(request.app.ctx.settings.rooms.default_ttl_hours, limits.longest_ttl_hours))
    if ttl > limits.longest_ttl_hours:
        raise Invalid(rooms.TTL_EXCEEDS_LIMIT, {"ttl_hours": [rooms.TTL_EXCEEDS_LIMIT]})
    ids = await claim_ids(request, f"user:{owner.id}", "room", "workspace", "channel")
    at = utcnow().replace(microsecond=0)  # shown to the second, so stored to the second
    room_id = uuid.UUID(ids["room"])
    command = rooms.CreateRoom(command_id=ids["command_id"], room_id=room_id, workspace_id=uuid.UUID(ids["workspace"]),
                               channel_id=uuid.UUID(ids["channel"]), owner_id=owner.id, name=form["name"],
                               external_reference=form.get("external_reference"), expires_at=at + rooms.hours(ttl),
                               max_expires_at=at + rooms.hours(limits.max_lifetime_hours), at=at)
    return await write(request, command, location=f"/api/v1{_BASE}/{ulid_of(room_id)}",
                       render=lambda: json(r.RoomOne(resource(request, rooms.owned_room(room_id, owner.id))),
                                           status=201))


@bp.get(_BASE + "/<room_id:str>")
@signed_in(ability=READ_ABILITY)
async def show_room(request, room_id):
    owner = _owner(request)
    return json(r.RoomOne(resource(request, rooms.owned_room(_room_id(room_id), owner.id))))


@bp.get(_BASE)
@signed_in(ability=READ_ABILITY)
async def list_rooms(request):
    owner = _owner(request)
    form = validate(query(request), LIST)
    rows = Room.select().where(Room.owner == owner.id)
    now = utcnow()
    is_open = (Room.status == "active") & (Room.expires_at > now) & Room.channel.is_null(False)  # as rooms.is_open
    if form.get("status") == "active":
        rows = rows.where(is_open)
    elif form.get("status") == "expired":
        rows = rows.where(~is_open)
    rows = rows.order_by(Room.created_at.desc(), Room.id.desc())
    items, meta, links = paginate(request, rows, lambda room: resource(request, room),
                                  keep={"status": form["status"]} if form.get("status") else None)
    return json(r.RoomList(items, meta, links))


@bp.get(_BASE + "/usage")
@signed_in(ability=READ_ABILITY)
async def room_usage(request):
    owner = _owner(request)
    limits = rooms.limits_of(owner.id)
    active, monthly = rooms.usage(owner.id, utcnow())
    return json(r.RoomUsageOne(r.RoomUsage(
        r.RoomLimits(limits.active_limit, limits.monthly_creation_limit),
        r.RoomCounts(active, monthly),
        r.RoomAbuseSignals(active >= limits.active_limit, monthly >= limits.monthly_creation_limit))))


@bp.post(_BASE + "/<room_id:str>/extend")
@signed_in(ability=EXTEND_ABILITY)
async def extend_room(request, room_id):
    owner = _owner(request)
    room = rooms.owned_room(_room_id(room_id), owner.id)
    form = validate(body(request), EXTEND)
    limits = rooms.limits_of(owner.id)
    if limits.extension_hours <= 0:
        raise Forbidden(rooms.EXTENSION_NOT_ALLOWED, {"code": [rooms.EXTENSION_NOT_ALLOWED_CODE]})
    if not rooms.is_open(room, utcnow()):
        raise rooms.expired()
    asked = form.get("extension_hours")
    if asked is not None and asked > limits.extension_hours:
        raise Invalid(rooms.EXTENSION_EXCEEDS_LIMIT, {"extension_hours": [rooms.EXTENSION_EXCEEDS_LIMIT]})
    # Left out: the single-extension max, as much of it as max_expires_at leaves (a default capped as
    # ttl_hours' is); asked for: all of it, or a 422. The write decides again on the room as it is then.
    extension = limits.extension_hours if asked is None else asked
    rooms.extended_expiry(room, extension, up_to_max=asked is None)
    command = rooms.ExtendRoom(command_id=new_id().hex, room_id=room.id, hours=extension, at=utcnow(),
                               up_to_max=asked is None)

    def render():
        extended = rooms.owned_room(room.id, owner.id)
        return json(r.RoomExtendedOne(r.RoomExtended(ulid_of(extended.id), iso(extended.expires_at),
                                                     iso(extended.max_expires_at), extended.extension_count)))
    return await write(request, command, render=render)


@bp.post(_BASE + "/<room_id:str>/guests")
async def join_room(request, room_id):
    room = rooms.open_room(_room_id(room_id))
    config = request.app.ctx.settings.rooms
    await throttle.hit(request, "room-join", {f"room:{room.id}": config.join_room,
                                              f"ip:{throttle.client_ip(request)}": config.join_ip})
    form = validate(body(request), JOIN)
    token, token_hash = rooms.mint_token()
    guest_id = new_id()
    command = rooms.JoinRoom(command_id=new_id().hex, guest_id=guest_id, user_uid=new_id(), room_id=room.id,
                             nickname=form["nickname"], preferred_language=form["preferred_language"],
                             token_hash=token_hash, at=utcnow())

    def render():
        guest = rooms.guest_of(token, room.id)
        joined = guest.room
        return json(r.GuestJoinedOne(r.GuestJoined(
            r.GuestProfile(ulid_of(guest.id), guest.user.name, guest.user.preferred_language),
            r.GuestSession(token, "guest", GUEST_HEADER, iso(guest.expires_at)),
            r.GuestRoom(ulid_of(joined.id), ulid_of(joined.workspace_id), ulid_of(joined.channel_id), joined.name,
                        "active", iso(joined.expires_at)))), status=201)
    # Never 202: the token is shown only here, and is worth something only once it is stored.
    await request.app.ctx.submitter.submit(command)
    return render()


def _guest(request, room_id: str):
    """The calling guest of this room (after the room's own 404 and 410)."""
    room = rooms.open_room(_room_id(room_id))
    return rooms.guest_of(request.headers.get(GUEST_HEADER), room.id)


@bp.get(_BASE + "/<room_id:str>/messages")
async def list_guest_messages(request, room_id):
    guest = _guest(request, room_id)
    listing, _ = messages.page(request, guest.room.channel_id, languages.canonical(guest.user.preferred_language))
    return json(listing)


@bp.post(_BASE + "/<room_id:str>/messages")
async def post_guest_message(request, room_id):
    guest = _guest(request, room_id)
    return await messages.post(request, guest.room.channel_id, guest.user.id, guest.user.name, "guest",
                               messages.message_form(body(request), GUEST_MESSAGE),
                               f"/api/v1{_BASE}/{ulid_of(guest.room.id)}/messages",
                               languages.canonical(guest.user.preferred_language))


@bp.get(_BASE + "/<room_id:str>/messages/<message_id:str>")
async def get_guest_message(request, room_id, message_id):
    guest = _guest(request, room_id)
    return messages.one(guest.room.channel_id, path_ulid(message_id, "Message not found."),
                        languages.canonical(guest.user.preferred_language))
