"""RosettaChat wire shapes: what the auth endpoints answer, as msgspec structs (encoded as they
are, and described by their JSON Schema in the OpenAPI document)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

LANGUAGES = ("en", "zh-CN", "ja", "th", "id")
# Laravel's JSON dates: microseconds and a Z.
Timestamp = Annotated[str, Meta(examples=["2024-01-01T00:00:00.000000Z"],
                                extra_json_schema={"format": "date-time"})]


def stamp(value: dt.datetime | str | None) -> str | None:
    """A UTC time as Laravel writes it; also from SQLite's own text of one (`YYYY-MM-DD HH:MM:SS[.ffffff]`),
    as hot reads that skip peewee's conversions get it."""
    if value is None:
        return None
    if isinstance(value, str):
        day, _, clock = value.partition(" ")
        clock, _, fraction = clock.partition(".")
        return f"{day}T{clock}.{fraction.ljust(6, '0')}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Message(Struct):
    message: str


class UserBrief(Struct):
    id: int
    name: str | None
    email: str | None


class TokenIssued(Struct):
    """An app sign-in: the bearer token (`<id>|<secret>`, shown this once) and the user."""

    access_token: str
    user: UserBrief
    token_type: str = "Bearer"


class SignedIn(Struct):
    """A web sign-in: the session is in the cookies of this response."""

    user: UserBrief
    message: str


class Me(Struct):
    id: int
    name: str | None
    email: str | None
    email_verified_at: Timestamp | None
    is_active: bool
    last_login_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    preferred_language: str
    avatar_url: str | None


class RedirectUrl(Struct):
    redirect_url: str


class LinkedAccount(Struct):
    id: int
    provider: str
    provider_email: str | None
    name: str | None
    avatar: str | None
    created_at: Timestamp


class LinkedAccounts(Struct):
    accounts: list[LinkedAccount]


class AccountLinked(Struct):
    account: LinkedAccount
    message: str


class AccessToken(Struct):
    """A personal access token, without its secret."""

    id: str
    name: str
    abilities: list[str]
    last_used_at: Timestamp | None
    expires_at: Timestamp | None
    created_at: Timestamp


class NewAccessToken(AccessToken):
    """A minted token; `token` (`<id>|<secret>`) is shown this once."""

    token: str


class AccessTokenCreated(Struct):
    data: NewAccessToken


class PageMeta(Struct):
    current_page: int
    from_: int | None = msgspec.field(name="from")
    last_page: int
    path: str
    per_page: int
    to: int | None
    total: int


class PageLinks(Struct):
    first: str
    last: str
    prev: str | None
    next: str | None


class AccessTokenPage(Struct):
    data: list[AccessToken]
    meta: PageMeta
    links: PageLinks


def brief(user) -> UserBrief:
    return UserBrief(user.id, user.name, user.email)


def me(user) -> Me:
    return Me(user.id, user.name, user.email, stamp(user.email_verified_at), user.is_active,
              stamp(user.last_login_at), stamp(user.created_at), stamp(user.updated_at), user.preferred_language,
              user.profile_pic or None)


def linked(account) -> LinkedAccount:
    return LinkedAccount(account.id, account.provider, account.provider_email, account.name, account.avatar,
                         stamp(account.created_at))


SCHEMAS = (Message, TokenIssued, SignedIn, Me, RedirectUrl, LinkedAccounts, AccountLinked, AccessTokenCreated,
           AccessTokenPage)


def json_schemas(structs: tuple = SCHEMAS) -> dict:
    """The components/schemas of the response structs."""
    _, components = msgspec.json.schema_components(structs, ref_template="#/components/schemas/{name}")
    return components
