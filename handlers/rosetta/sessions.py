"""Web sessions: a random id in an HttpOnly cookie, the session itself in Redis, and CSRF
protection as a Laravel SPA client expects it (read the `XSRF-TOKEN` cookie, echo it in the
`X-XSRF-TOKEN` header of every change).

Redis keys hold a SHA-256 of the session id, never the id, so a copy of Redis opens no session.
Each user's sessions are indexed too, so a password change or reset can end the others.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from domain.errors import CsrfMismatch
from domain.signing import sign, unsign
from models import utcnow

XSRF_COOKIE = "XSRF-TOKEN"
XSRF_HEADER = "x-xsrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# How long an XSRF token made before sign-in stays good (a login form left open for a day still works).
_ANONYMOUS_XSRF_AGE_S = 86400


def _settings(request):
    return request.app.ctx.settings


def cookie(request, name: str) -> str | None:
    """A cookie's value; one that is not text (bytes a client made up) counts as absent."""
    value = request.cookies.get(name)
    try:
        value and value.encode()
    except UnicodeEncodeError:
        return None
    return value or None


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _key(request, digest: str) -> str:
    return f"{_settings(request).redis.namespace}:session:{digest}"


def _index(request, user_id: int) -> str:
    return f"{_settings(request).redis.namespace}:user-sessions:{user_id}"


def new_xsrf_token() -> str:
    return sign("xsrf", {"n": secrets.token_urlsafe(16)})


async def start(request, response, user_id: int) -> None:
    """Sign `user_id` in: a fresh session (never one the client already had), cookies on `response`."""
    await _forget(request)
    settings = _settings(request)
    session_id = secrets.token_urlsafe(32)
    xsrf = new_xsrf_token()
    digest = _digest(session_id)
    record = json.dumps({"user_id": user_id, "xsrf": xsrf, "created_at": utcnow().isoformat()})
    lifetime = settings.auth.session_lifetime_s
    async with request.app.ctx.redis.pipeline(transaction=True) as pipe:
        pipe.set(_key(request, digest), record, ex=lifetime)
        pipe.sadd(_index(request, user_id), digest)
        pipe.expire(_index(request, user_id), lifetime)
        await pipe.execute()
    _set_cookie(request, response, settings.auth.session_cookie, session_id, httponly=True)
    set_xsrf_cookie(request, response, xsrf)


async def load(request) -> dict | None:
    """The request's live session (user_id, xsrf), renewed for another lifetime, or None."""
    session_id = cookie(request, _settings(request).auth.session_cookie)
    if not session_id:
        return None
    key = _key(request, _digest(session_id))
    client = request.app.ctx.redis
    raw = await client.getex(key, ex=_settings(request).auth.session_lifetime_s)
    if raw is None:
        return None
    session = json.loads(raw)
    await client.expire(_index(request, session["user_id"]), _settings(request).auth.session_lifetime_s)
    return {**session, "digest": _digest(session_id)}


async def end(request, response) -> None:
    """End the request's session, if any, and clear its cookies on `response` (a fresh XSRF token
    replaces the old one, so the client can sign in again)."""
    await _forget(request)
    response.delete_cookie(_settings(request).auth.session_cookie, path="/")
    set_xsrf_cookie(request, response, new_xsrf_token())


async def _forget(request) -> None:
    """Delete the request's session from Redis, if it has one."""
    session_id = cookie(request, _settings(request).auth.session_cookie)
    if session_id:
        raw = await request.app.ctx.redis.getdel(_key(request, _digest(session_id)))
        if raw is not None:
            await request.app.ctx.redis.srem(_index(request, json.loads(raw)["user_id"]), _digest(session_id))


async def end_all(request, user_id: int, keep_digest: str | None = None) -> None:
    """End every session of `user_id` but the one whose digest is `keep_digest`."""
    client = request.app.ctx.redis
    digests = [d.decode() for d in await client.smembers(_index(request, user_id))]
    doomed = [d for d in digests if d != keep_digest]
    if doomed:
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(*[_key(request, d) for d in doomed])
            pipe.srem(_index(request, user_id), *doomed)
            await pipe.execute()


def _set_cookie(request, response, name: str, value: str, *, httponly: bool) -> None:
    auth = _settings(request).auth
    response.add_cookie(name, value, path="/", httponly=httponly, samesite="Lax", secure=auth.secure_cookies,
                        max_age=auth.session_lifetime_s)


def set_xsrf_cookie(request, response, token: str) -> None:
    """The XSRF-TOKEN cookie, readable by the page's script so it can echo it in X-XSRF-TOKEN."""
    _set_cookie(request, response, XSRF_COOKIE, token, httponly=False)


def check_xsrf(request, session: dict | None) -> None:
    """Refuse (419) an unsafe request whose X-XSRF-TOKEN header is missing or is not the token of
    its session (or, before sign-in, not the XSRF-TOKEN cookie this server signed)."""
    if request.method in SAFE_METHODS:
        return
    header = request.headers.get(XSRF_HEADER, "")
    if session is not None:
        expected = session["xsrf"]
    else:
        expected = cookie(request, XSRF_COOKIE) or ""
        if unsign("xsrf", expected, _ANONYMOUS_XSRF_AGE_S) is None:
            expected = ""
    if not expected or not hmac.compare_digest(header.encode(errors="replace"), expected.encode()):
        raise CsrfMismatch("CSRF token mismatch.")
