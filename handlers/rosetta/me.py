"""The signed-in user: profile, email verification, and personal access tokens with chosen
abilities (for bots and embeds); plus the SPA's XSRF-cookie handshake."""

from __future__ import annotations

import datetime as dt
import json as stdjson
from urllib.parse import urlencode

import msgspec
from sanic import Blueprint
from sanic.response import empty, redirect
from ulid import ULID

from actors.email import send_verification_email
from domain import commands as c
from domain import mails, tokens
from domain.errors import Invalid, NotFound
from domain.signing import url_signature_valid
from handlers.bodies import json
from handlers.rosetta import schemas as s
from handlers.rosetta import sessions, throttle
from handlers.rosetta.accounts import in_thread
from handlers.rosetta.forms import Field, body, validate
from handlers.rosetta.guard import signed_in
from handlers.rosetta.paging import paginate
from models import Token, User, utcnow

bp = Blueprint("rosetta_me", strict_slashes=False)
csrf_bp = Blueprint("rosetta_csrf", strict_slashes=False)

# The abilities a minted token may carry; `*` is everything the user can do.
ABILITIES = ("*", "temporary-rooms:create", "temporary-rooms:read", "temporary-rooms:extend", "automation:post")

PROFILE = {
    "name": Field(max=255, description="The user's display name.", example="John Doe"),
    "preferred_language": Field(one_of=s.LANGUAGES, description="Messages are translated into this.",
                                example="zh-CN"),
    "avatar_url": Field(nullable=True, url=True, max=2048, description="A picture of the user; null removes it.",
                        example="https://example.com/me.png"),
}
NEW_TOKEN = {
    "name": Field(required=True, max=255, description="What the token is for.", example="support-bot"),
    "abilities": Field(type="array", max=len(ABILITIES), items=Field(required=True, one_of=ABILITIES),
                       description="What the token may do; `[\"*\"]` (everything) when absent.",
                       example=["temporary-rooms:create"]),
    "expires_at": Field(nullable=True, format="date-time", max=64,
                        description="When the token stops working (RFC 3339, in the future); never when null.",
                        example="2030-01-01T00:00:00Z"),
}
@bp.get("/me")
@signed_in
async def get_me(request):
    return json(s.me(request.ctx.user))


@bp.patch("/me")
@signed_in
async def update_me(request):
    data = body(request)
    form = validate(data, PROFILE)
    if "avatar_url" in data and form.get("avatar_url") is None:
        form["avatar_url"] = ""  # null removes the picture
    user = request.ctx.user
    await request.app.ctx.submitter.submit(c.UpdateProfile(
        command_id=c.new_command_id(), user_id=user.id, name=form.get("name"),
        preferred_language=form.get("preferred_language"), avatar_url=form.get("avatar_url"), at=utcnow()))
    return json(s.me(User.get_by_id(user.id)))


@bp.get("/auth/email/verify/<user_id:str>/<email_hash:str>")
async def verify_email(request, user_id, email_hash):
    invalid = NotFound("Verification link is invalid.")
    if not url_signature_valid(request.path, request.args.get("expires"), request.args.get("signature")):
        raise invalid
    user = User.get_or_none(User.id == int(user_id)) if user_id.isdigit() and len(user_id) < 19 else None
    if user is None or user.email is None or mails.email_hash(user.email) != email_hash:
        raise invalid
    if user.email_verified_at is None:
        await request.app.ctx.submitter.submit(c.VerifyEmail(command_id=c.new_command_id(), user_id=user.id,
                                                             email_key=user.email_key, at=utcnow()))
    frontend = request.app.ctx.settings.auth.frontend_url
    if frontend:
        return redirect(f"{frontend.rstrip('/')}/?{urlencode({'verified': 1})}")
    return json(s.Message("Email verified successfully."))


@bp.post("/auth/email/verification-notification")
@signed_in
async def resend_verification(request):
    user = request.ctx.user
    limit = request.app.ctx.settings.throttle.verification_user
    await throttle.hit(request, "verification", {f"user:{user.id}": limit})
    if user.email_verified_at is None:
        await in_thread(send_verification_email.send, user.id)
    return json(s.Message("Verification email sent."))


def _token(token: Token) -> s.AccessToken:
    return s.AccessToken(str(ULID.from_uuid(token.id)).lower(), token.name, stdjson.loads(token.abilities),
                         s.stamp(token.last_used_at), s.stamp(token.expires_at), s.stamp(token.created_at))


@bp.get("/me/tokens")
@signed_in
async def list_tokens(request):
    live = Token.select().where((Token.user == request.ctx.user.id) & Token.revoked_at.is_null())
    items, meta, links = paginate(request, live.order_by(Token.created_at.desc(), Token.id.desc()), _token)
    return json(s.AccessTokenPage(items, meta, links))


def _expiry(value: str | None) -> dt.datetime | None:
    """An RFC 3339 time (msgspec's parser; naive means UTC) as naive UTC."""
    if value is None:
        return None
    try:
        when = msgspec.convert(value, dt.datetime)
        if when.tzinfo is not None:
            when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    except (msgspec.ValidationError, OverflowError):
        raise Invalid("The expires at field must be a valid date.",
                      {"expires_at": ["The expires at field must be a valid date."]}) from None
    if when <= utcnow():
        raise Invalid("The expires at field must be a date after now.",
                      {"expires_at": ["The expires at field must be a date after now."]})
    return when


@bp.post("/me/tokens")
@signed_in
async def create_token(request):
    form = validate(body(request), NEW_TOKEN)
    abilities = list(dict.fromkeys(form.get("abilities") or ["*"]))
    expires_at = _expiry(form.get("expires_at"))
    token_id, token, secret_hash = tokens.mint()
    now = utcnow()
    await request.app.ctx.submitter.submit(c.IssueToken(
        command_id=c.new_command_id(), token_id=token_id, user_id=request.ctx.user.id, name=form["name"],
        secret_hash=secret_hash, abilities=abilities, expires_at=expires_at, at=now))
    shown = _token(Token.get_by_id(token_id))
    return json(s.AccessTokenCreated(s.NewAccessToken(**msgspec.structs.asdict(shown), token=token)), status=201)


@bp.delete("/me/tokens/<token_id:str>")
@signed_in
async def revoke_token(request, token_id):
    try:
        key = ULID.from_str(token_id.upper()).to_uuid()
    except ValueError:
        raise NotFound("Token not found.") from None
    token = Token.get_or_none((Token.id == key) & (Token.user == request.ctx.user.id) & Token.revoked_at.is_null())
    if token is None:
        raise NotFound("Token not found.")
    await request.app.ctx.submitter.submit(c.RevokeToken(command_id=c.new_command_id(), token_id=key, at=utcnow()))
    return empty(status=204)


@csrf_bp.get("/sanctum/csrf-cookie")
async def csrf_cookie(request):
    """Sets the XSRF-TOKEN cookie (the session's token when signed in) for the web app to echo."""
    session = await sessions.load(request)
    response = empty(status=204)
    token = session["xsrf"] if session else sessions.new_xsrf_token()
    sessions.set_xsrf_cookie(request, response, token)
    return response
