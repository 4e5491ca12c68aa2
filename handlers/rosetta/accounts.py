"""Reads and steps the sign-in flows share: finding users, hashing off the event loop, and
signing a user in by token (apps) or by session (the web app)."""

from __future__ import annotations

import asyncio
import functools

from domain import commands as c
from domain import passwords, tokens
from domain.errors import Forbidden
from handlers.bodies import json
from handlers.rosetta import schemas as s
from handlers.rosetta import sessions
from models import User, new_id, utcnow

APP, WEB = "app", "web"
INACTIVE = "Account is inactive."


async def in_thread(fn, *args):
    """Run a blocking call (bcrypt, a Dramatiq send) on the default executor, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))


def user_by_email(email: str) -> User | None:
    return User.get_or_none(User.email_key == email.casefold())


def require_active(user: User) -> None:
    if not user.is_active:
        raise Forbidden(INACTIVE)


async def hash_password(request, password: str) -> str:
    return await in_thread(passwords.hash_password, password, request.app.ctx.settings.auth.bcrypt_rounds)


async def check_password(request, password: str, hashed: str | None) -> bool:
    return await in_thread(passwords.check_password, password, hashed, request.app.ctx.settings.auth.bcrypt_rounds)


async def hash_shared_password(request, password: str) -> str:
    """A workspace's or channel's password, hashed off the event loop."""
    return await in_thread(passwords.hash_shared_password, password, request.app.ctx.settings.auth.bcrypt_rounds)


async def check_shared_password(request, password: str, hashed: str | None) -> bool:
    return await in_thread(passwords.check_shared_password, password, hashed,
                           request.app.ctx.settings.auth.bcrypt_rounds)


def new_token(request, device_name: str | None) -> tuple[str, c.NewToken]:
    """A full-ability login token: the string for the client, and what to store."""
    token_id, token, secret_hash = tokens.mint()
    return token, c.NewToken(token_id=token_id, name=device_name or "app", secret_hash=secret_hash, abilities=["*"],
                             expires_at=tokens.expiry(request.app.ctx.settings.auth.token_ttl_days))


async def register(request, mode: str, *, name: str, email: str, password_hash: str | None,
                   preferred_language: str, email_verified: bool, device_name: str | None = None,
                   avatar_url: str = "", social: c.NewSocialAccount | None = None, message: str):
    """Create the user (with its first token for an app) and answer as the mode does."""
    uid = new_id()
    token, new = new_token(request, device_name) if mode == APP else (None, None)
    await request.app.ctx.submitter.submit(c.RegisterUser(
        command_id=c.new_command_id(), user_uid=uid, name=name, email=email, password_hash=password_hash,
        preferred_language=preferred_language, email_verified=email_verified, avatar_url=avatar_url, token=new,
        social=social, at=utcnow()))
    user = User.get(User.uid == uid)
    if mode == APP:
        return json(s.TokenIssued(token, s.brief(user)))
    response = json(s.SignedIn(s.brief(user), message))
    await sessions.start(request, response, user.id)
    return response


async def sign_in(request, mode: str, user: User, device_name: str | None = None):
    """Sign an existing, active user in: a new token (app) or a new session (web)."""
    require_active(user)
    now = utcnow()
    if mode == APP:
        token, new = new_token(request, device_name)
        await request.app.ctx.submitter.submit(c.IssueToken(
            command_id=c.new_command_id(), token_id=new.token_id, user_id=user.id, name=new.name,
            secret_hash=new.secret_hash, abilities=new.abilities, expires_at=new.expires_at, at=now, login=True))
        return json(s.TokenIssued(token, s.brief(user)))
    await request.app.ctx.submitter.submit(c.RecordLogin(command_id=c.new_command_id(), user_id=user.id, at=now))
    response = json(s.SignedIn(s.brief(user), "Logged in successfully."))
    await sessions.start(request, response, user.id)
    return response
