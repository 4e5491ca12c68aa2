"""OAuth2 / OpenID Connect as a client: the authorize URL a user is sent to, then the code exchanged
for an access token and the identity read with it (userinfo, and for GitHub-like providers the
separate list of addresses). Knows the protocol and an `OAuthProvider` config, nothing of users.
"""

from __future__ import annotations

import functools
from urllib.parse import urlencode

import httpx
import msgspec

from config import OAuthProvider, settings
from telemetry import ProviderCall

# A provider that has not answered in this long will not: the user is waiting on the request.
TIMEOUT_S = 10.0


class ProviderError(Exception):
    """The provider refused the code, or failed (an error status, not JSON, unreachable, too slow)."""


class Identity(msgspec.Struct, frozen=True):
    """Who the provider says signed in; `email_verified` only when the provider vouches for the address."""

    provider_user_id: str
    email: str | None
    email_verified: bool
    name: str | None
    avatar: str | None


def authorize_url(config: OAuthProvider, state: str) -> str:
    """Where to send the user's browser to sign in and consent (RFC 6749 §4.1.1)."""
    params = {"response_type": "code", "client_id": config.client_id, "redirect_uri": config.redirect_uri,
              "scope": config.scopes, "state": state}
    query = urlencode({name: value for name, value in params.items() if value})
    return f"{config.authorize_url}{'&' if '?' in config.authorize_url else '?'}{query}"


async def identify(config: OAuthProvider, code: str) -> Identity:
    """Exchange the authorization code and read who it belongs to; ProviderError if that fails."""
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S, headers={"Accept": "application/json"}) as client:
            access_token = await _exchange(client, config, code)
            client.headers["Authorization"] = f"Bearer {access_token}"
            info = await _get(client, config, "userinfo")
            if not isinstance(info, dict):
                raise ProviderError("the userinfo answer is not an object")
            emails = await _get(client, config, "emails") if config.emails_url else None
    except httpx.HTTPError as e:
        raise ProviderError(f"{type(e).__name__}: {e}") from None
    return _identity(config, info, emails)


async def _exchange(client: httpx.AsyncClient, config: OAuthProvider, code: str) -> str:
    """The access token for `code` (RFC 6749 §4.1.3; the client authenticates in the form body)."""
    form = {"grant_type": "authorization_code", "code": code, "client_id": config.client_id,
            "client_secret": config.client_secret}
    if config.redirect_uri:  # it must match the authorize request's when that one had it
        form["redirect_uri"] = config.redirect_uri
    answer = _json(await _call(client, config, "token", "POST", config.token_url, data=form))
    # GitHub answers a refused code with 200 and an `error`, so look for the token itself.
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        error = answer.get("error") if isinstance(answer, dict) else None
        raise ProviderError(f"no access token in the token answer (error: {error!r})")
    return token


async def _get(client: httpx.AsyncClient, config: OAuthProvider, what: str):
    """The JSON at the config's `<what>_url`."""
    return _json(await _call(client, config, what, "GET", getattr(config, f"{what}_url")))


async def _call(client: httpx.AsyncClient, config: OAuthProvider, operation: str, method: str, url: str, **kwargs):
    with ProviderCall(_metric_name(config), operation) as call:
        response = await client.request(method, url, **kwargs)
        call.status = response.status_code
    return response


@functools.cache
def _metric_name(config: OAuthProvider) -> str:
    """The provider's name in metrics: `oauth_<its [oauth.<name>] table>`."""
    return "oauth_" + next((name for name, known in settings().oauth.items() if known == config), "other")


def _json(response: httpx.Response):
    if not response.is_success:
        raise ProviderError(f"{response.request.method} {response.request.url.path} answered {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise ProviderError(f"{response.request.url.path} did not answer JSON") from None


def _identity(config: OAuthProvider, info: dict, emails) -> Identity:
    """Map the userinfo answer through the config's field names."""
    user_id = info.get(config.id_field)
    if user_id is None or isinstance(user_id, (bool, dict, list)) or str(user_id) == "":
        raise ProviderError(f"the userinfo answer has no {config.id_field!r}")
    email, verified = _text(info.get(config.email_field)), False
    if config.email_verified_field:  # OpenID Connect: a boolean claim (some send it as a string)
        verified = email is not None and info.get(config.email_verified_field) in (True, "true")
    if isinstance(emails, list):  # GitHub: the primary verified address, else any verified one
        entries = [e for e in emails if isinstance(e, dict) and e.get("verified") is True and _text(e.get("email"))]
        chosen = next((e for e in entries if e.get("primary") is True), entries[0] if entries else None)
        if chosen is not None:
            email, verified = _text(chosen["email"]), True
    return Identity(str(user_id), email, verified, _text(info.get(config.name_field)),
                    _text(info.get(config.avatar_field)))


def _text(value) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
