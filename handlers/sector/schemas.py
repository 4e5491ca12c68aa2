"""Sector wire shapes: request bodies (validated on decode) and the representations returned."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from config import settings
from domain.writes import display_username

_limits = settings().limits
# PostgreSQL text cannot hold NUL, so no string the API stores or searches by may contain one.
_NO_NUL = r"^[^\x00]*$"
# ...and a name or body needs a character that is not a space. Linear even on a 10 kB body.
_NO_NUL_NOT_BLANK = r"^\s*[^\s\x00][^\x00]*$"
Text = Annotated[str, Meta(pattern=_NO_NUL)]
Name = Annotated[str, Meta(min_length=1, max_length=_limits.name_chars, pattern=_NO_NUL_NOT_BLANK)]
Description = Annotated[str, Meta(max_length=_limits.description_chars, pattern=_NO_NUL)]
Body = Annotated[str, Meta(min_length=1, max_length=_limits.message_chars, pattern=_NO_NUL_NOT_BLANK)]
ProfilePic = Annotated[str, Meta(max_length=_limits.profile_pic_chars, pattern=_NO_NUL)]
Key = Annotated[str, Meta(min_length=1, max_length=200, pattern=_NO_NUL)]
# 32 bytes as 64 hex digits or 44 characters of padded base64. Python's `$` also matches before a
# final newline; the lookahead makes it the end of the string, as in JSON Schema.
PublicKey = Annotated[str, Meta(pattern=r"^(?:[0-9A-Fa-f]{64}|[A-Za-z0-9+/]{43}=)(?!\n)$",
                                description="An ed25519 public key: 32 bytes in hex or padded standard base64.")]
# msgspec 0.22 describes datetimes as a bare string; RFC 3339 is what it emits and reads.
Timestamp = Annotated[dt.datetime, Meta(extra_json_schema={"format": "date-time"})]
Since = Annotated[dt.datetime, Meta(extra_json_schema={"format": "date-time"},
                                    description="Only items created at or after this time (inclusive).")]
Until = Annotated[dt.datetime, Meta(extra_json_schema={"format": "date-time"},
                                    description="Only items created at or before this time (inclusive).")]
# A float that is a whole number: JSON Schema counts 50.0 as an integer, so clients may send it.
Limit = Annotated[float, Meta(ge=1, le=_limits.search_max, multiple_of=1,
                              description=f"Page size, a whole number; {_limits.search_default} when absent.")]
Cursor = Annotated[str, Meta(max_length=200, pattern=_NO_NUL,
                             description="The X-Next-Cursor header of the previous page.")]
Ids = Annotated[list[uuid.UUID], Meta(max_length=_limits.search_max)]


# Requests. Unknown fields (a client echoing `created_at`) are ignored.

class AccountIn(Struct):
    """User Account Details."""

    username: Name
    pubkey: PublicKey
    profile_pic: ProfilePic = ""
    id: uuid.UUID | None = None


class AccountUpdate(Struct):
    """User Account Update Details."""

    username: Name | None = None
    profile_pic: ProfilePic | None = None


class LoginIn(Struct):
    """A login challenge signed with the account's ed25519 key (base64 or hex)."""

    username: Name
    signature: Key


class GroupIn(Struct):
    """A group chat/server of users."""

    name: Name
    description: Description = ""
    members: Ids = []
    id: uuid.UUID | None = None


class GroupUpdate(Struct):
    """Group Update Details."""

    name: Name | None = None
    description: Description | None = None


class ChannelIn(Struct):
    """A set of messages within a Group, typically organized by topic."""

    name: Name
    description: Description = ""
    group: uuid.UUID | None = None
    id: uuid.UUID | None = None


class ChannelUpdate(GroupUpdate):
    """Channel Update Details."""


class MessageIn(Struct):
    """A message that is sent in a group."""

    body: Body
    pinned: bool = False
    author: uuid.UUID | None = None
    channel: uuid.UUID | None = None
    id: uuid.UUID | None = None


class MessageUpdate(Struct):
    """Message Update Details."""

    body: Body | None = None
    pinned: bool | None = None


class _Filter(Struct, rename={"since": "from"}):
    since: Since | None = None
    until: Until | None = None
    id: Ids | None = None
    limit: Limit | None = None
    cursor: Cursor | None = None


class AccountFilter(_Filter, rename={"since": "from"}):
    """An object that is posted to the backend to query for accounts based on filter criteria."""

    username: Text | None = None


class GroupFilter(_Filter, rename={"since": "from"}):
    """An object that is posted to the backend to query for groups based on filter criteria."""

    members: Ids | None = None
    name: Text | None = None


class ChannelFilter(_Filter, rename={"since": "from"}):
    """An object that is posted to the backend to query for channels based on filter criteria."""

    group: Ids | None = None
    name: Text | None = None


class MessageFilter(_Filter, rename={"since": "from"}):
    """An object that is posted to the backend to query for messages based on filter criteria."""

    author: Ids | None = None
    channel: Ids | None = None
    body: Text | None = None
    pinned: bool | None = None


# Representations.

class Account(Struct):
    """User Account Details."""

    created_at: Timestamp
    id: uuid.UUID
    profile_pic: str
    pubkey: str
    username: Annotated[str, Meta(min_length=1, description=(
        "The account's name. A RosettaChat user, who has none, is shown as `rosetta-<id>` with its RosettaChat "
        "user id (`rosetta-42`); no account may choose a name spelt `rosetta-<digits>`, in any case."))]


class Group(Struct):
    """A group chat/server of users."""

    created_at: Timestamp
    description: str
    id: uuid.UUID
    members: list[uuid.UUID]
    name: str


class Channel(Struct):
    """A set of messages within a Group, typically organized by topic."""

    created_at: Timestamp
    description: str
    group: uuid.UUID
    id: uuid.UUID
    name: str


class Message(Struct):
    """A message that is sent in a group."""

    author: uuid.UUID
    body: str
    channel: uuid.UUID
    created_at: Timestamp
    id: uuid.UUID
    pinned: bool


class MessageInLanguage(Message):
    """A message as read by a client that sent Accept-Language (a Sector extension): `body` stays what the
    author wrote; `display_body` is in the first accepted language the message has a translation into."""

    language: str | None  # detected when it was translated
    translation_status: Literal["pending", "completed", "partial", "failed", "skipped"]
    display_body: str
    display_language: str | None  # the language of display_body (the message's own when it is the original)
    display_source: Literal["original", "translated"]


class TranslationHealth(Struct):
    """How messages are translated: the engine, and whether it is on."""

    provider: Literal["none", "libretranslate", "deepl", "openai"]
    enabled: bool
    detect: Literal["local", "engine"]
    detail: str


class GatewayHealth(Struct):
    """Whether notifications go out through one push gateway, and why not when they do not."""

    enabled: bool
    detail: str


class PushHealth(Struct):
    """The push gateways, as configured ([push]); devices of a gateway that is off are passed over."""

    fcm: GatewayHealth
    apns: GatewayHealth
    expo: GatewayHealth


class HealthDetails(Struct):
    """What the API process can reach, and how it is set up (a Sector extension)."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    redis: Literal["ok", "unreachable"]
    translation: TranslationHealth
    push: PushHealth


class Index(Struct):
    """Where to find the rest of the API."""

    name: str
    version: str
    openapi: str
    health: str


class ChallengeQuery(Struct):
    """The query string of GET /v1/api/challenge."""

    username: Name


class Challenge(Struct):
    """A single-use challenge to sign with the account's key."""

    challenge: str


class TokenOut(Struct):
    """A bearer token for the Authorization header."""

    token: str


class Error(Struct):
    """Every Sector error: a code, a sentence, and the problems by field (empty if none)."""

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
    return Account(utc(user.created_at), user.uid, user.profile_pic, user.pubkey or "", display_username(user))


def group(row, members: list[uuid.UUID]) -> Group:
    return Group(utc(row.created_at), row.description, row.id, members, row.name)


def channel(row) -> Channel:
    return Channel(utc(row.created_at), row.description, row.workspace_id, row.id, row.name)


def message(row, author_uid: uuid.UUID) -> Message:
    return Message(author_uid, row.body, row.channel_id, utc(row.created_at), row.id, row.pinned)


def message_in_language(row, author_uid: uuid.UUID, translation: tuple[str, str] | None) -> MessageInLanguage:
    """The message for a reader who asked for languages: `translation` is (language, text) of the one
    they read it in, None when they read the original."""
    language, display = translation or (row.language, row.body)
    return MessageInLanguage(author_uid, row.body, row.channel_id, utc(row.created_at), row.id, row.pinned,
                             row.language, row.translation_status, display, language,
                             "original" if translation is None else "translated")


def json_schemas() -> tuple[dict, dict]:
    """(schemas by name, components) of every wire shape, for the OpenAPI document."""
    types = [AccountIn, AccountUpdate, LoginIn, GroupIn, GroupUpdate, ChannelIn, ChannelUpdate, MessageIn,
             MessageUpdate, AccountFilter, GroupFilter, ChannelFilter, MessageFilter, Account, Group, Channel,
             Message, MessageInLanguage, HealthDetails, Index, Challenge, TokenOut, Error]
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    return dict(zip([t.__name__ for t in types], schemas, strict=True)), components
