"""Sector login: a single-use challenge kept in Redis, signed with the account's ed25519 key."""

from sanic import Blueprint
from sanic.response import empty

from domain import access, signatures, tokens
from domain import commands as c
from domain.errors import Forbidden, Unauthenticated
from handlers.auth import authenticated
from handlers.bodies import json, parse, parse_query
from handlers.sector import schemas as s
from handlers.writing import write
from models import utcnow

bp = Blueprint("sector_login", url_prefix="/api", strict_slashes=False)


def _challenge_key(request, username: str) -> str:
    return f"{request.app.ctx.settings.redis.namespace}:challenge:{username.casefold()}"


@bp.get("/challenge")
async def get_challenge(request):
    # Checked as login checks it, unstripped: a challenge for " bob" would never match a login as " bob".
    username = parse_query(request, s.ChallengeQuery).username
    # Issued for unknown names too, so the answer does not tell which accounts exist.
    challenge = signatures.new_challenge()
    await request.app.ctx.redis.set(_challenge_key(request, username), challenge,
                                    ex=request.app.ctx.settings.auth.challenge_ttl_s)
    return json(s.Challenge(challenge))


@bp.post("/login")
async def login(request):
    body = parse(request, s.LoginIn)
    # Consumed by the first attempt, right or wrong: a challenge can be tried once.
    challenge = await request.app.ctx.redis.getdel(_challenge_key(request, body.username))
    if challenge is None:
        raise Unauthenticated("No challenge is pending for this username; request one first.")
    user = access.account_by_username(body.username)
    if user is None or not user.pubkey or not signatures.verify(user.pubkey, challenge.decode(), body.signature):
        raise Unauthenticated("The signature does not match the challenge.")
    if not user.is_active:
        raise Forbidden("Account is inactive.")
    token_id, token, secret_hash = tokens.mint()
    command = c.IssueToken(command_id=c.new_command_id(), token_id=token_id, user_id=user.id, name="sector-login",
                           secret_hash=secret_hash, abilities=["*"],
                           expires_at=tokens.expiry(request.app.ctx.settings.auth.token_ttl_days), at=utcnow())
    # Always awaited: a 202 without the token would be of no use to the client.
    await request.app.ctx.submitter.submit(command)
    return json(s.TokenOut(token))


@bp.post("/logout")
@authenticated
async def logout(request):
    command = c.RevokeToken(command_id=c.new_command_id(), token_id=request.ctx.token.id, at=utcnow())
    return await write(request, command, render=lambda: empty(status=204))
