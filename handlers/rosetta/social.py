"""Social login (OAuth2 / OpenID Connect) for apps (`/auth/app/social`, bearer tokens) and the web
app (`/auth/web/social`, a session cookie).

The flow: the client asks `/{provider}/redirect` for the provider's authorize URL and opens it; the
provider sends the browser back to the client's page (the configured redirect_uri) with `code` and
`state`; the client posts both to `/{provider}/callback`. We exchange the code for the provider's
identity, then sign in the user already linked to it, else the user with that email if the
provider vouches for the address (linking it), else a new user. `/link` and `/link/callback` do
the same for a signed-in user who adds a provider.

`state` is signed here (provider, app or web, login or link, the linking user, a nonce), good for
ten minutes and once. The web app's is bound to the browser too, by a cookie holding its nonce, so
a code and state lured into someone else's browser do not sign that browser in (login CSRF).
"""

from __future__ import annotations

import logging
import secrets

from sanic import Blueprint
from sanic.response import HTTPResponse

from config import OAuthProvider
from domain import commands as c
from domain.errors import Invalid
from domain.signing import sign, unsign
from domain.writes import ALREADY_LINKED_ELSEWHERE, ALREADY_LINKED_HERE
from handlers.bodies import json
from handlers.rosetta import schemas as s
from handlers.rosetta import sessions
from handlers.rosetta.accounts import APP, WEB, register, require_active, sign_in, user_by_email
from handlers.rosetta.auth import DEVICE
from handlers.rosetta.errors import INVALID
from handlers.rosetta.forms import Field, body, is_email, is_url, validate
from handlers.rosetta.guard import flow_route
from models import SocialAccount, User, utcnow
from providers import oauth

logger = logging.getLogger(__name__)

bp = Blueprint("rosetta_social")

LOGIN, LINK = "login", "link"
STATE_PURPOSE = "oauth-state"
STATE_AGE_S = 600
# Holds the web flow's nonce between redirect and callback; sent only to these routes.
STATE_COOKIE, STATE_COOKIE_PATH = "oauth_state", "/api/v1/auth/web/social"

PROVIDER_INVALID = "The selected provider is invalid."
STATE_INVALID = "The state is invalid or has expired."
CODE_REFUSED = "The authorization code could not be exchanged."
EMAIL_REQUIRED = "The provider did not share an email address; one is required to sign in."
EMAIL_UNVERIFIED = ("An account with this email already exists, and the provider has not verified the address. "
                    "Sign in to that account and link the provider instead.")
EMAIL_UNPROVEN = ("An account with this email already exists, and its owner has not verified the address. "
                  "Sign in to that account and link the provider instead.")

CALLBACK = {
    "code": Field(required=True, max=2048, description="The OAuth authorization code from the provider.",
                  example="4/0AfJohXn..."),
    "state": Field(required=True, max=2048, description="The state of the redirect URL, as the provider returned it "
                                                        "(required: it protects against CSRF).", example="eyJwIjoi..."),
    "device_name": DEVICE,
}


def _provider(request, name: str) -> OAuthProvider:
    config = request.app.ctx.settings.oauth.get(name)
    if config is None or not config.enabled:
        raise Invalid(INVALID, {"provider": [PROVIDER_INVALID]})
    return config


def new_state(provider: str, mode: str, purpose: str, user_id: int | None, nonce: str) -> str:
    """A signed `state` for one flow: this provider, app or web, login or link (of this user)."""
    return sign(STATE_PURPOSE, {"p": provider, "m": mode, "f": purpose, "u": user_id, "n": nonce})


async def _take_state(request, signed: str, provider: str, mode: str, purpose: str, user_id: int | None) -> None:
    """Accept `signed` once, and only for the flow it was made for; 422 naming `state` otherwise."""
    state = unsign(STATE_PURPOSE, signed, STATE_AGE_S)
    nonce = state.get("n") if isinstance(state, dict) else None
    browser = (sessions.cookie(request, STATE_COOKIE) or "").encode()
    fits = (isinstance(nonce, str)
            and (state.get("p"), state.get("m"), state.get("f"), state.get("u")) == (provider, mode, purpose, user_id)
            and (mode != WEB or secrets.compare_digest(browser, nonce.encode())))
    used = f"{request.app.ctx.settings.redis.namespace}:oauth-state:{nonce}"
    if not fits or not await request.app.ctx.redis.set(used, 1, nx=True, ex=STATE_AGE_S):
        raise Invalid(INVALID, {"state": [STATE_INVALID]})


async def _redirect(request, mode: str, provider: str, purpose: str) -> HTTPResponse:
    config = _provider(request, provider)
    nonce = secrets.token_urlsafe(16)
    state = new_state(provider, mode, purpose, request.ctx.user.id if purpose == LINK else None, nonce)
    response = json(s.RedirectUrl(oauth.authorize_url(config, state)))
    if mode == WEB:
        response.add_cookie(STATE_COOKIE, nonce, path=STATE_COOKIE_PATH, httponly=True, samesite="Lax",
                            secure=request.app.ctx.settings.auth.secure_cookies, max_age=STATE_AGE_S)
    return response


async def _identify(request, mode: str, provider: str, purpose: str,
                    user_id: int | None) -> tuple[dict, oauth.Identity]:
    """The valid callback form, its state taken, and who the provider says its code belongs to."""
    config = _provider(request, provider)
    form = validate(body(request), CALLBACK)
    await _take_state(request, form["state"], provider, mode, purpose, user_id)
    try:
        return form, await oauth.identify(config, form["code"])
    except oauth.ProviderError as e:
        logger.warning("Provider %s did not exchange a code: %s", provider, e)
        raise Invalid(INVALID, {"code": [CODE_REFUSED]}) from None


def _email(who: oauth.Identity) -> str | None:
    """The identity's address, if it is one we could have taken at sign-up."""
    return who.email if who.email and len(who.email) <= 255 and is_email(who.email) else None


def _new_account(provider: str, who: oauth.Identity) -> c.NewSocialAccount:
    """What to store of the identity: the provider's text, kept to what the columns and forms allow."""
    avatar = who.avatar if who.avatar and len(who.avatar) <= 2048 and is_url(who.avatar) else None
    return c.NewSocialAccount(provider=provider, provider_user_id=who.provider_user_id[:255],
                              provider_email=_email(who), name=who.name[:255] if who.name else None, avatar=avatar)


def _account(provider: str, provider_user_id: str) -> SocialAccount | None:
    return SocialAccount.get_or_none((SocialAccount.provider == provider)
                                     & (SocialAccount.provider_user_id == provider_user_id[:255]))


async def _link(request, user_id: int, account: c.NewSocialAccount) -> None:
    await request.app.ctx.submitter.submit(c.LinkSocialAccount(command_id=c.new_command_id(), user_id=user_id,
                                                               account=account, at=utcnow()))


async def _callback(request, mode: str, provider: str) -> HTTPResponse:
    form, who = await _identify(request, mode, provider, LOGIN, None)
    device = form.get("device_name")
    linked = _account(provider, who.provider_user_id)
    if linked is not None:
        return await sign_in(request, mode, User.get_by_id(linked.user_id), device)
    email = _email(who)
    if email is None:
        raise Invalid(INVALID, {"email": [EMAIL_REQUIRED]})
    account = _new_account(provider, who)
    user = user_by_email(email)
    if user is None:
        return await register(request, mode, name=account.name or email.split("@")[0], email=email,
                              password_hash=None, preferred_language="en", email_verified=who.email_verified,
                              device_name=device, avatar_url=account.avatar or "", social=account,
                              message="Logged in successfully.")
    if not who.email_verified:  # anyone can claim an address at a provider that does not check it
        raise Invalid(INVALID, {"email": [EMAIL_UNVERIFIED]})
    if user.email_verified_at is None and user.password_hash is not None:
        # Whoever registered this address with a password never proved it; were it someone else's,
        # linking would hand the owner an account the registrant can still sign in to.
        raise Invalid(INVALID, {"email": [EMAIL_UNPROVEN]})
    require_active(user)
    await _link(request, user.id, account)
    if user.email_verified_at is None:  # a password-less account: the provider has just proved the address
        await request.app.ctx.submitter.submit(c.VerifyEmail(command_id=c.new_command_id(), user_id=user.id,
                                                             email_key=user.email_key, at=utcnow()))
    return await sign_in(request, mode, user, device)


async def _accounts(request, mode: str) -> HTTPResponse:
    rows = SocialAccount.select().where(SocialAccount.user == request.ctx.user.id).order_by(SocialAccount.id)
    return json(s.LinkedAccounts([s.linked(row) for row in rows]))


async def _link_callback(request, mode: str, provider: str) -> HTTPResponse:
    user_id = request.ctx.user.id
    _, who = await _identify(request, mode, provider, LINK, user_id)
    holder = _account(provider, who.provider_user_id)
    if holder is not None:  # the write checks again, for a link made meanwhile
        raise Invalid(ALREADY_LINKED_HERE if holder.user_id == user_id else ALREADY_LINKED_ELSEWHERE)
    await _link(request, user_id, _new_account(provider, who))
    return json(s.AccountLinked(s.linked(_account(provider, who.provider_user_id)),
                                "Social account linked successfully."))


async def _unlink(request, mode: str, provider: str) -> HTTPResponse:
    """No provider check: an account linked before its provider was turned off can still go."""
    await request.app.ctx.submitter.submit(c.UnlinkSocialAccount(command_id=c.new_command_id(),
                                                                 user_id=request.ctx.user.id, provider=provider))
    return json(s.Message("Social account unlinked successfully."))


async def _login_redirect(request, mode: str, provider: str) -> HTTPResponse:
    return await _redirect(request, mode, provider, LOGIN)


async def _link_redirect(request, mode: str, provider: str) -> HTTPResponse:
    return await _redirect(request, mode, provider, LINK)


# path, method, flow, whether it needs a signed-in user
_ROUTES = (
    ("<provider:str>/redirect", "POST", _login_redirect, False),
    ("<provider:str>/callback", "POST", _callback, False),
    ("accounts", "GET", _accounts, True),
    ("<provider:str>/link", "POST", _link_redirect, True),
    ("<provider:str>/link/callback", "POST", _link_callback, True),
    ("<provider:str>/unlink", "DELETE", _unlink, True),
)


for _path, _method, _flow, _needs_user in _ROUTES:
    for _mode in (APP, WEB):
        bp.add_route(flow_route(_flow, _mode, _needs_user), f"/auth/{_mode}/social/{_path}", methods=[_method],
                     name=f"{_mode}_social{_flow.__name__}")
