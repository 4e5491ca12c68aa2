"""Sector wire shapes: request bodies (validated on decode) and the representations returned."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from config import settings

_limits = settings().limits
# `\S` somewhere: a name of only spaces is no name.
Name = Annotated[str, Meta(min_length=1, max_length=_limits.name_chars, pattern=r"\S")]
Description = Annotated[str, Meta(max_length=_limits.description_chars)]
Body = Annotated[str, Meta(min_length=1, max_length=_limits.message_chars, pattern=r"\S")]
ProfilePic = Annotated[str, Meta(max_length=_limits.profile_pic_chars)]
Key = Annotated[str, Meta(min_length=1, max_length=200)]
Limit = Annotated[int, Meta(ge=1, le=_limits.search_max)]
Ids = Annotated[list[uuid.UUID], Meta(max_length=_limits.search_max)]


# Requests. Unknown fields (a client echoing `created_at`) are ignored.

class AccountIn(Struct):
    username: Name
    pubkey: Key
    profile_pic: ProfilePic = ""
    id: uuid.UUID | None = None


class AccountUpdate(Struct):
    username: Name | None = None
    profile_pic: ProfilePic | None = None


class LoginIn(Struct):
    username: Name
    signature: Key


class GroupIn(Struct):
    name: Name
    description: Description = ""
    members: Ids = []
    id: uuid.UUID | None = None


class GroupUpdate(Struct):
    name: Name | None = None
    description: Description | None = None


class ChannelIn(Struct):
    name: Name
    description: Description = ""
    group: uuid.UUID | None = None
    id: uuid.UUID | None = None


ChannelUpdate = GroupUpdate


class MessageIn(Struct):
    body: Body
    pinned: bool = False
    author: uuid.UUID | None = None
    channel: uuid.UUID | None = None
    id: uuid.UUID | None = None


class MessageUpdate(Struct):
    body: Body | None = None
    pinned: bool | None = None


class _Filter(Struct, rename={"since": "from"}):
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    id: Ids | None = None
    limit: Limit | None = None
    cursor: Annotated[str, Meta(max_length=200)] | None = None


class AccountFilter(_Filter, rename={"since": "from"}):
    username: str | None = None


class GroupFilter(_Filter, rename={"since": "from"}):
    members: Ids | None = None
    name: str | None = None


class ChannelFilter(_Filter, rename={"since": "from"}):
    group: Ids | None = None
    name: str | None = None


class MessageFilter(_Filter, rename={"since": "from"}):
    author: Ids | None = None
    channel: Ids | None = None
    body: str | None = None
    pinned: bool | None = None


# Representations.

class Account(Struct):
    created_at: dt.datetime
    id: uuid.UUID
    profile_pic: str
    pubkey: str
    username: str


class Group(Struct):
    created_at: dt.datetime
    description: str
    id: uuid.UUID
    members: list[uuid.UUID]
    name: str


class Channel(Struct):
    created_at: dt.datetime
    description: str
    group: uuid.UUID
    id: uuid.UUID
    name: str


class Message(Struct):
    author: uuid.UUID
    body: str
    channel: uuid.UUID
    created_at: dt.datetime
    id: uuid.UUID
    pinned: bool


class Challenge(Struct):
    challenge: str


class TokenOut(Struct):
    token: str


class Error(Struct):
    error: str
    message: str
    errors: dict[str, list[str]] = {}


def utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc)


def naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A filter bound as the naive UTC the database holds; a bound without zone is taken as UTC."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def account(user) -> Account:
    return Account(utc(user.created_at), user.uid, user.profile_pic, user.pubkey or "", user.username or "")


def group(row, members: list[uuid.UUID]) -> Group:
    return Group(utc(row.created_at), row.description, row.id, members, row.name)


def channel(row) -> Channel:
    return Channel(utc(row.created_at), row.description, row.workspace_id, row.id, row.name)


def message(row, author_uid: uuid.UUID) -> Message:
    return Message(author_uid, row.body, row.channel_id, utc(row.created_at), row.id, row.pinned)


def json_schemas() -> tuple[dict, dict]:
    """(schemas by name, components) of every wire shape, for the OpenAPI document."""
    types = [AccountIn, AccountUpdate, LoginIn, GroupIn, GroupUpdate, ChannelIn, MessageIn, MessageUpdate,
             AccountFilter, GroupFilter, ChannelFilter, MessageFilter, Account, Group, Channel, Message,
             Challenge, TokenOut, Error]
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    return dict(zip([t.__name__ for t in types], schemas)), components
