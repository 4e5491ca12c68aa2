"""Bearer tokens: `<ulid>|<secret>` strings whose secret is kept only as a SHA-256 digest.

The secret has 256 bits of entropy, so a fast digest is enough (a slow hash protects guessable
secrets like passwords, not random ones) and lookups stay cheap on every request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid

from ulid import ULID

from domain.errors import Forbidden, Unauthenticated
from models import Prepared, Token, User, utcnow


def mint() -> tuple[uuid.UUID, str, str]:
    """A new token: its id, the string given to the client once, and the digest to store."""
    token_id = ULID().to_uuid()
    secret = secrets.token_urlsafe(32)
    return token_id, f"{str(ULID.from_uuid(token_id)).lower()}|{secret}", digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_token_with_user = Prepared(
    lambda token_id: Token.select(Token, User).join(User).where(Token.id == token_id), token_id=uuid.UUID
)


def authenticate(header: str | None) -> tuple[User, Token]:
    """The user and token behind an `Authorization: Bearer ...` header value."""
    if not header or not header[:7].lower() == "bearer ":
        raise Unauthenticated("A bearer token is required.")
    raw = header[7:].strip()
    token_part, _, secret = raw.partition("|")
    try:
        token_id = ULID.from_str(token_part.upper()).to_uuid()
    except ValueError:
        raise Unauthenticated("The token is not valid.") from None
    token = _token_with_user.first(token_id=token_id)
    if token is None or not hmac.compare_digest(token.secret_hash, digest(secret)):
        raise Unauthenticated("The token is not valid.")
    now = utcnow()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        raise Unauthenticated("The token has expired or was revoked.")
    if not token.user.is_active:
        raise Forbidden("Account is inactive.")
    return token.user, token


def expiry(ttl_days: int) -> dt.datetime | None:
    return utcnow() + dt.timedelta(days=ttl_days) if ttl_days > 0 else None
