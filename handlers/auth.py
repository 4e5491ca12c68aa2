"""Bearer-token authentication for handlers of either dialect."""

from __future__ import annotations

import datetime as dt
import logging
from functools import wraps

from domain import commands as c
from domain import tokens
from domain.errors import DomainError
from models import utcnow

logger = logging.getLogger(__name__)

# A token's last_used_at is written at most this often: a write per request would cost more than it tells.
TOUCH_EVERY = dt.timedelta(seconds=60)


def authenticated(handler):
    """Require a valid bearer token; the caller's User is then `request.ctx.user`."""

    @wraps(handler)
    async def wrapper(request, *args, **kwargs):
        request.ctx.user, request.ctx.token = tokens.authenticate(request.headers.get("authorization"))
        touch(request, request.ctx.token)
        return await handler(request, *args, **kwargs)

    return wrapper


def touch(request, token) -> None:
    """Record that `token` was used now (in the background, at most once a minute per token)."""
    now = utcnow()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return
    command = c.TouchToken(command_id=c.new_command_id(), token_id=token.id, at=now)

    async def send():
        try:
            await request.app.ctx.submitter.submit(command, wait=False)
        except DomainError as e:  # Redis away: the next request tries again
            logger.warning("Could not record the use of a token: %s", e.message)

    request.app.add_task(send())
