"""Who is calling a RosettaChat endpoint: a bearer token (apps, bots) or a session cookie (the web
app). Shared endpoints take either; a token's abilities limit what it may reach."""

from __future__ import annotations

import json
from functools import wraps

from domain import rooms, tokens
from domain.errors import Forbidden, Unauthenticated
from handlers.auth import touch
from handlers.rosetta import sessions
from handlers.rosetta.accounts import WEB
from models import Prepared, User

_user_by_id = Prepared(lambda user_id: User.select().where(User.id == user_id), user_id=int)

FULL = "*"


def signed_in(handler=None, *, ability: str | None = None, guest: bool = False):
    """Require a caller; then `request.ctx.user`, and `.token`, `.session` or `.guest` (the others None).

    A token whose abilities do not include `*` reaches only routes that name one of its abilities
    (403 otherwise), so a bot's narrow token cannot change its owner's password. A session can do
    whatever its user can, but each change it makes must carry the X-XSRF-TOKEN header. Routes that
    let `guest` in also take a temporary room's guest token (X-Rosetta-Guest-Token) instead: the
    guest's user, whose only membership is its room's workspace, so it reaches only what is there.
    """
    if handler is None:
        return lambda h: signed_in(h, ability=ability, guest=guest)

    @wraps(handler)
    async def wrapper(request, *args, **kwargs):
        request.ctx.token = request.ctx.session = request.ctx.guest = None
        if guest and not request.headers.get("authorization") and request.headers.get(rooms.GUEST_HEADER):
            request.ctx.guest = rooms.guest_of(request.headers.get(rooms.GUEST_HEADER))
            request.ctx.user = request.ctx.guest.user
        elif request.headers.get("authorization"):
            request.ctx.user, request.ctx.token = tokens.authenticate(request.headers.get("authorization"))
            granted = json.loads(request.ctx.token.abilities)
            if FULL not in granted and (ability is None or ability not in granted):
                raise Forbidden("Invalid ability provided.")
            touch(request, request.ctx.token)
        else:
            session = await sessions.load(request)
            user = _user_by_id.first(user_id=session["user_id"]) if session else None
            if user is None:
                raise Unauthenticated("Unauthenticated.")
            if not user.is_active:
                raise Forbidden("Account is inactive.")
            sessions.check_xsrf(request, session)
            request.ctx.user, request.ctx.session = user, session
        return await handler(request, *args, **kwargs)

    return wrapper


def flow_route(flow, mode: str, needs_user: bool):
    """The handler of a sign-in step for apps or the web: `flow(request, mode, **path_params)`.

    Steps for a signed-in user go through `signed_in` (which checks a session's XSRF token). The
    web's open steps (sign-in forms, the social redirect and callback) need the XSRF pair too: a
    forged cross-site sign-in would sign a victim's browser in as the attacker.
    """

    async def handler(request, **params):
        if mode == WEB and not needs_user:
            sessions.check_xsrf(request, None)
        return await flow(request, mode, **params)

    return signed_in(handler) if needs_user else handler
