"""The handler half of the write path: idempotency keys, `Prefer: respond-async`, awaiting the commit."""

from __future__ import annotations

import hashlib
import uuid
import json as stdjson
from typing import Callable

from sanic.response import HTTPResponse

from domain.commands import Command
from domain.errors import Invalid
from handlers.bodies import bodiless
from models import new_id


def prefers_async(request) -> bool:
    """RFC 7240: `Prefer: respond-async` asks for 202 now instead of waiting for the commit."""
    prefer = request.headers.get("prefer", "")
    return any(token.split(";")[0].strip().lower() == "respond-async" for token in prefer.split(","))


async def write(request, command: Command, *, render: Callable[[], HTTPResponse],
                location: str | None = None,
                render_applied: Callable[[], HTTPResponse] | None = None) -> HTTPResponse:
    """Send `command`; answer 202 at once if the client prefers, else `render()` the committed state.

    `render_applied`, when given, answers instead of `render` if this very command made the
    change: then the request's own values are what was stored, and no read is needed.
    """
    submitter = request.app.ctx.submitter
    if prefers_async(request):
        await submitter.submit(command, wait=False)
        headers = {"Preference-Applied": "respond-async"}
        if location:
            headers["Location"] = location
        return bodiless(202, headers)
    applied = await submitter.submit(command)
    return render_applied() if applied and render_applied is not None else render()


def idempotency_key(request) -> str | None:
    """The request's Idempotency-Key header, refused with 422 when it is too long."""
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > 255:
        raise Invalid("Idempotency-Key is too long.", {"Idempotency-Key": ["At most 255 characters."]})
    return key


def request_fingerprint(request) -> str:
    """A digest of what makes two requests the same: method, path and body."""
    return hashlib.sha256(b"%s %s\n%s" % (request.method.encode(), request.path.encode(), request.body or b"")).hexdigest()


async def claim_ids(request, principal: str, *names: str, fingerprint: str | None = None) -> dict[str, str]:
    """Ids for a create: fresh ones, or under a repeated `Idempotency-Key`, those of the first request.

    Returns `command_id` and one id per name. Reusing a key for a different request is refused.
    `fingerprint` stands for the body where the handler streamed it (an upload).
    """
    fresh = {"command_id": new_id().hex, **{name: str(new_id()) for name in names}}
    key = idempotency_key(request)
    if not key:
        return fresh
    fingerprint = fingerprint or request_fingerprint(request)
    settings = request.app.ctx.settings
    redis_key = f"{settings.redis.namespace}:idem:{principal}:{hashlib.sha256(key.encode()).hexdigest()}"
    record = stdjson.dumps({"fingerprint": fingerprint, **fresh})
    client = request.app.ctx.redis
    if await client.set(redis_key, record, nx=True, ex=settings.writes.idempotency_ttl_s):
        return fresh
    prior = stdjson.loads(await client.get(redis_key) or record)
    if prior.pop("fingerprint") != fingerprint:
        raise Invalid(
            "This Idempotency-Key was used for a different request.",
            {"Idempotency-Key": ["Already used for a different request."]},
        )
    return prior


async def creation_ids(request, principal: str, kind: str, body_id: uuid.UUID | None) -> tuple[str, uuid.UUID]:
    """(command id, row id) for a create.

    A client-chosen row id makes a retry safe by itself: the command id is derived from it and
    from the request, so the actor recognises the same request sent again; the id used by anyone
    for anything else is a 409. Without one, an `Idempotency-Key` does the same job.
    """
    if body_id is not None:
        idempotency_key(request)  # unused then, but a malformed header is refused all the same
        return f"{kind}:{body_id}:{principal}:{request_fingerprint(request)[:32]}", body_id
    ids = await claim_ids(request, principal, "id")
    return ids["command_id"], uuid.UUID(ids["id"])
