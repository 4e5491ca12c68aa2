"""Who opens a realtime connection: a bearer token, a RosettaChat guest token, or a single-use ticket (for
clients that cannot send headers: browsers, EventSource). No long-lived credential is read from a URL."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass

from domain import rooms, tokens
from domain.errors import Unauthenticated
from domain.realtime import Keys
from models import Guest, Prepared, User

_user = Prepared(lambda user_id: User.select().where(User.id == user_id), user_id=int)
_guest = Prepared(lambda guest_id: Guest.select(Guest, User).join(User).where(Guest.id == guest_id),
                  guest_id=uuid.UUID)


@dataclass(frozen=True)
class Caller:
    """The user behind a connection, and the credential to watch for revocation."""

    user: User
    token_id: uuid.UUID | None = None
    guest_id: uuid.UUID | None = None


def by_token(token: str, *, guests: bool) -> Caller:
    """A bearer token, or (RosettaChat) a guest token, as a first frame or a header carries it."""
    if not isinstance(token, str) or not token:
        raise Unauthenticated("A token is required.")
    if guests and token.startswith(rooms.TOKEN_PREFIX):
        guest = rooms.guest_of(token)
        return Caller(guest.user, guest_id=guest.id)
    user, row = tokens.authenticate(f"Bearer {token.removeprefix('Bearer ').strip()}")
    return Caller(user, token_id=row.id)


def by_headers(headers, *, guests: bool) -> Caller | None:
    """The caller the request's headers name, None if they name none."""
    if headers.get("authorization"):
        user, row = tokens.authenticate(headers.get("authorization"))
        return Caller(user, token_id=row.id)
    if guests and headers.get(rooms.GUEST_HEADER):
        guest = rooms.guest_of(headers.get(rooms.GUEST_HEADER))
        return Caller(guest.user, guest_id=guest.id)
    return None


async def issue_ticket(redis, keys: Keys, caller: Caller, ttl_s: int) -> str:
    ticket = "rtt_" + secrets.token_urlsafe(24)
    await redis.set(keys.ticket(ticket), json.dumps({
        "user_id": caller.user.id, "token_id": caller.token_id.hex if caller.token_id else None,
        "guest_id": caller.guest_id.hex if caller.guest_id else None}), ex=ttl_s)
    return ticket


async def by_ticket(redis, keys: Keys, ticket: str) -> Caller:
    """The caller a ticket was issued to; the ticket is spent."""
    raw = await redis.getdel(keys.ticket(ticket)) if ticket and len(ticket) < 100 else None
    if raw is None:
        raise Unauthenticated("The ticket is not valid, was used, or expired.")
    held = json.loads(raw)
    if held["guest_id"]:
        guest = _guest.first(guest_id=uuid.UUID(held["guest_id"]))
        if guest is None or guest.revoked_at is not None:
            raise Unauthenticated("The guest token is not valid.")
        return Caller(guest.user, guest_id=guest.id)
    user = _user.first(user_id=held["user_id"])
    if user is None or not user.is_active:
        raise Unauthenticated("The account is gone or inactive.")
    return Caller(user, token_id=uuid.UUID(held["token_id"]) if held["token_id"] else None)
