"""Sign-up, sign-in, one-time codes and passwords, for apps (`/auth/app`, bearer tokens) and the
web app (`/auth/web`, a session cookie). Both share every step but the last: what the signed-in
user is handed.
"""

from __future__ import annotations

import secrets

from sanic import Blueprint
from sanic.response import HTTPResponse

from actors.email import queue_email
from domain import commands as c
from domain import mails
from domain.errors import Invalid
from domain.passwords import MAX_BYTES
from domain.signing import keyed_digest
from domain.writes import EMAIL_TAKEN
from handlers.bodies import json
from handlers.rosetta import schemas as s
from handlers.rosetta import sessions, throttle
from handlers.rosetta.accounts import (
    APP,
    WEB,
    check_password,
    hash_password,
    in_thread,
    register,
    require_active,
    sign_in,
    user_by_email,
)
from handlers.rosetta.forms import Field, body, confirmations, validate
from handlers.rosetta.guard import flow_route
from models import utcnow

app_bp = Blueprint("rosetta_app_auth", url_prefix="/auth/app")
web_bp = Blueprint("rosetta_web_auth", url_prefix="/auth/web")

EMAIL = Field(required=True, email=True, max=255, description="The user's email address.",
              example="john@example.com")
PASSWORD = Field(required=True, trim=False, max=255, description="The user's password.", example="secretpassword")
NEW_PASSWORD = Field(required=True, trim=False, min=8, max=255, max_bytes=MAX_BYTES, confirmed=True,
                     description="At least 8 characters (at most 72 bytes).", example="secretpassword")
DEVICE = Field(max=255, description="Names the token (apps); ignored by the web.", example="iPhone 15 Pro")

REGISTER = confirmations({
    "name": Field(required=True, max=255, description="The user's full name.", example="John Doe"),
    "email": EMAIL, "password": NEW_PASSWORD,
    "preferred_language": Field(nullable=True, one_of=s.LANGUAGES, description="Translations are into this.",
                                example="en"),
    "device_name": DEVICE,
})
LOGIN = {"email": EMAIL, "password": PASSWORD, "device_name": DEVICE}
OTP = {"email": EMAIL}
OTP_VERIFY = {"email": EMAIL, "token": Field(required=True, max=255, description="The 6-digit code from the mail.",
                                             example="123456"),
              "device_name": DEVICE}
FORGOT = {"email": EMAIL}
RESET = confirmations({"token": Field(required=True, max=255, description="The token from the mail."),
                       "email": EMAIL, "password": NEW_PASSWORD})
CHANGE = confirmations({"current_password": PASSWORD, "password": NEW_PASSWORD})

CREDENTIALS_WRONG = "The provided credentials are incorrect."
OTP_WRONG = "Invalid or expired OTP."
NO_SUCH_EMAIL = "We could not find an account with that email."
RESET_WRONG = "This password reset token is invalid."
CURRENT_WRONG = "The current password is incorrect."

# Checks the code and counts the attempt in one step: a right code is consumed, and the last
# allowed wrong guess voids the code.
_CHECK_OTP = """
local digest = redis.call('HGET', KEYS[1], 'digest')
if not digest then return 0 end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if digest == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
if attempts >= tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) end
return 0
"""
# A reset token is consumed by the request that shows it.
_TAKE_RESET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""


def _key(request, kind: str, email: str) -> str:
    subject = keyed_digest(f"{kind}-key", email.casefold())[:40]
    return f"{request.app.ctx.settings.redis.namespace}:{kind}:{subject}"


def _limits(request, email: str, per_email: int, per_ip: int) -> dict[str, int]:
    return {f"email:{email}": per_email, f"ip:{throttle.client_ip(request)}": per_ip}


async def _register(request, mode: str) -> HTTPResponse:
    form = validate(body(request), REGISTER)
    limits = request.app.ctx.settings.throttle
    await throttle.hit(request, "register", {f"ip:{throttle.client_ip(request)}": limits.login_ip})
    if user_by_email(form["email"]) is not None:
        raise Invalid(EMAIL_TAKEN, {"email": [EMAIL_TAKEN]})
    return await register(request, mode, name=form["name"], email=form["email"],
                          password_hash=await hash_password(request, form["password"]),
                          preferred_language=form.get("preferred_language") or "en", email_verified=False,
                          device_name=form.get("device_name"), message="Registered successfully.")


async def _login(request, mode: str) -> HTTPResponse:
    form = validate(body(request), LOGIN)
    limits = _limits(request, form["email"], request.app.ctx.settings.throttle.login_email,
                     request.app.ctx.settings.throttle.login_ip)
    await throttle.check(request, "login", limits)
    user = user_by_email(form["email"])
    if not await check_password(request, form["password"], user.password_hash if user else None):
        await throttle.hit(request, "login", limits)
        raise Invalid(CREDENTIALS_WRONG, {"email": [CREDENTIALS_WRONG]})
    await throttle.clear(request, "login", f"email:{form['email']}")
    return await sign_in(request, mode, user, form.get("device_name"))


async def _request_otp(request, mode: str) -> HTTPResponse:
    form = validate(body(request), OTP)
    config = request.app.ctx.settings
    await throttle.hit(request, "otp", _limits(request, form["email"], config.throttle.otp_email,
                                               config.throttle.otp_ip))
    code = f"{secrets.randbelow(10**6):06d}"
    key = _key(request, "otp", form["email"])
    async with request.app.ctx.redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)  # a new code replaces the last one, and its attempts
        pipe.hset(key, mapping={"digest": keyed_digest("otp", f"{form['email'].casefold()}:{code}"), "attempts": 0})
        pipe.expire(key, config.auth.otp_ttl_s)
        await pipe.execute()
    await in_thread(lambda: queue_email(to=form["email"], **mails.otp(code, config.auth.otp_ttl_s)))
    return json(s.Message("OTP sent to your email."))


async def _verify_otp(request, mode: str) -> HTTPResponse:
    form = validate(body(request), OTP_VERIFY)
    config = request.app.ctx.settings
    limits = _limits(request, form["email"], config.throttle.otp_verify_email, config.throttle.otp_verify_ip)
    await throttle.check(request, "otp-verify", limits)
    digest = keyed_digest("otp", f"{form['email'].casefold()}:{form['token']}")
    if not await request.app.ctx.redis.eval(_CHECK_OTP, 1, _key(request, "otp", form["email"]), digest,
                                            config.auth.otp_max_attempts):
        await throttle.hit(request, "otp-verify", limits)
        raise Invalid(OTP_WRONG, {"token": [OTP_WRONG]})
    user = user_by_email(form["email"])
    if user is None:  # the code proved the address: a new account, verified from the start
        return await register(request, mode, name=form["email"].split("@")[0], email=form["email"],
                              password_hash=None, preferred_language="en", email_verified=True,
                              device_name=form.get("device_name"), message="Logged in successfully.")
    require_active(user)
    if user.email_verified_at is None:
        await request.app.ctx.submitter.submit(c.VerifyEmail(command_id=c.new_command_id(), user_id=user.id,
                                                             email_key=user.email_key, at=utcnow()))
    return await sign_in(request, mode, user, form.get("device_name"))


async def _forgot_password(request, mode: str) -> HTTPResponse:
    form = validate(body(request), FORGOT)
    config = request.app.ctx.settings
    await throttle.hit(request, "forgot", _limits(request, form["email"], config.throttle.forgot_email,
                                                  config.throttle.forgot_ip))
    user = user_by_email(form["email"])
    if user is None:
        raise Invalid(NO_SUCH_EMAIL, {"email": [NO_SUCH_EMAIL]})
    token = secrets.token_urlsafe(32)
    await request.app.ctx.redis.set(_key(request, "reset", user.email), keyed_digest("reset", token),
                                    ex=config.auth.reset_ttl_s)
    mail = mails.password_reset(user.email, token, config.auth.app_url, config.auth.frontend_url,
                                config.auth.reset_ttl_s)
    await in_thread(lambda: queue_email(to=user.email, **mail))
    return json(s.Message("Password reset link sent to your email."))


async def _reset_password(request, mode: str) -> HTTPResponse:
    form = validate(body(request), RESET)
    user = user_by_email(form["email"])
    taken = user is not None and await request.app.ctx.redis.eval(
        _TAKE_RESET, 1, _key(request, "reset", user.email), keyed_digest("reset", form["token"]))
    if not taken:
        raise Invalid(RESET_WRONG, {"email": [RESET_WRONG]})
    password_hash = await hash_password(request, form["password"])
    await request.app.ctx.submitter.submit(c.SetPassword(command_id=c.new_command_id(), user_id=user.id,
                                                         password_hash=password_hash, keep_token_id=None,
                                                         at=utcnow()))
    await sessions.end_all(request, user.id)
    return json(s.Message("Password has been reset successfully."))


async def _logout(request, mode: str) -> HTTPResponse:
    """Ends what authenticated the request: its token, or its session."""
    response = json(s.Message("Logged out successfully."))
    if request.ctx.token is not None:
        await request.app.ctx.submitter.submit(c.RevokeToken(command_id=c.new_command_id(),
                                                             token_id=request.ctx.token.id, at=utcnow()))
    else:
        await sessions.end(request, response)
    return response


async def _change_password(request, mode: str) -> HTTPResponse:
    form = validate(body(request), CHANGE)
    user = request.ctx.user
    if not await check_password(request, form["current_password"], user.password_hash):
        raise Invalid(CURRENT_WRONG, {"current_password": [CURRENT_WRONG]})
    token = request.ctx.token
    await request.app.ctx.submitter.submit(c.SetPassword(
        command_id=c.new_command_id(), user_id=user.id, password_hash=await hash_password(request, form["password"]),
        keep_token_id=token.id if token is not None else None, at=utcnow()))
    session = request.ctx.session
    await sessions.end_all(request, user.id, keep_digest=session["digest"] if session else None)
    return json(s.Message("Password changed successfully."))


_FLOWS = {
    "register": (_register, False), "login": (_login, False), "otp": (_request_otp, False),
    "otp/verify": (_verify_otp, False), "forgot-password": (_forgot_password, False),
    "reset-password": (_reset_password, False), "logout": (_logout, True), "change-password": (_change_password, True),
}


for _path, (_flow, _needs_user) in _FLOWS.items():
    for _bp, _mode in ((app_bp, APP), (web_bp, WEB)):
        _bp.add_route(flow_route(_flow, _mode, _needs_user), f"/{_path}", methods=["POST"],
                      name=f"{_mode}_{_path.replace('/', '_').replace('-', '_')}")
