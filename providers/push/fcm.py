"""Firebase Cloud Messaging HTTP v1 (firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send,
firebase.google.com/docs/cloud-messaging/send-message; error codes at .../fcm/rest/v1/ErrorCode).

One `POST /v1/projects/<project>/messages:send` a device, multiplexed over a shared HTTP/2 connection,
with an OAuth access token. The token comes from the service account key, as Google's google-auth
library gets it: an RS256 JWT (`kid` = private_key_id; iss = client_email, scope firebase.messaging,
aud = the token URL, an hour long) exchanged at the token URL (the key's `token_uri` unless `[push]
fcm_token_url` is set). It is kept until 5 minutes before it expires; a 401 drops it, and that push is
sent once more with a new one.

Errors are Google's `{"error": {"code", "message", "status", "details"}}`, where an FcmError detail's
`errorCode` says what happened: UNREGISTERED (404) and SENDER_ID_MISMATCH, or an INVALID_ARGUMENT about
the token (a BadRequest detail naming `message.token`, or an FcmError INVALID_ARGUMENT without a
BadRequest, as FCM's error codes page shows one), mean the token is gone; a 404 without UNREGISTERED is
not (a wrong project or URL would delete every device). QUOTA_EXCEEDED (429), INTERNAL and UNAVAILABLE
(5xx) are retried, after Retry-After when given; the rest failed.
"""

from __future__ import annotations

import asyncio
import functools
import base64
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import quote

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from providers.push import IDLE_S, Config, Outcome, Push, Sender, Status, http2, refused, timeouts, unexpected
from providers.retrying import retry_after
from providers.push.apns import collapse_id
from telemetry import ProviderCall

logger = logging.getLogger(__name__)
_refused = functools.partial(refused, logger, "FCM")

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: The longest assertion Google takes (and what google-auth makes).
ASSERTION_LIFETIME_S = 3600
#: An access token is replaced this long before it expires.
TOKEN_MARGIN_S = 300
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
GONE_CODES = {"UNREGISTERED", "SENDER_ID_MISMATCH"}
#: RFC 8030 §5.4: a Web Push Topic is at most 32 characters of the URL-safe base64 alphabet.
WEB_PUSH_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


class TokenRefused(Exception):
    """No access token: every push waiting for it gets `outcome`."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.reason)
        self.outcome = outcome


@dataclass(frozen=True)
class ServiceAccount:
    """What a Firebase service account's JSON key holds that Sector needs."""

    project_id: str
    client_email: str
    private_key_id: str
    private_key: rsa.RSAPrivateKey
    token_uri: str

    @classmethod
    def read(cls, path: str) -> ServiceAccount:
        """The key at `path`; ValueError with a sentence an operator can act on."""
        try:
            with open(path, "rb") as f:
                info = json.load(f)
        except OSError as e:
            raise ValueError(f"[push] fcm_service_account_file {path} cannot be read "
                             f"({e.strerror or type(e).__name__})") from None
        except ValueError:
            raise ValueError(f"{path} is not JSON") from None
        for field in ("client_email", "private_key", "project_id"):
            if not isinstance(info, dict) or not isinstance(info.get(field), str) or not info[field]:
                raise ValueError(f"{path} is not a service account key: it has no {field}")
        try:
            # The key is the operator's own: its ~50 ms consistency check would run on every disabled() call.
            key = serialization.load_pem_private_key(info["private_key"].encode(), password=None,
                                                     unsafe_skip_rsa_key_validation=True)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"the private_key in {path} is not a PEM RSA key")
        return cls(info["project_id"], info["client_email"], str(info.get("private_key_id") or ""), key,
                   str(info.get("token_uri") or ""))


class FCM(Sender):
    """FCM's client: a request a push, all on one HTTP/2 connection, with a kept access token."""

    name = "fcm"
    per_request = 1

    @staticmethod
    def disabled(config: Config) -> str | None:
        """Why FCM is off, from the config alone; None when it is on."""
        if not config.fcm_url.startswith(("https://", "http://")):
            return "FCM is off: [push] fcm_url is not an https:// URL."
        if not config.fcm_service_account_file.strip():
            return "FCM is off: [push] fcm_service_account_file is not set."
        try:
            account = ServiceAccount.read(config.fcm_service_account_file)
        except ValueError as e:
            return f"FCM is off: {e}."
        if not (config.fcm_token_url.strip() or account.token_uri):
            return (f"FCM is off: {config.fcm_service_account_file} has no token_uri and [push] fcm_token_url "
                    "is not set.")
        return None

    def __init__(self, config: Config):
        super().__init__(config)
        self.account = ServiceAccount.read(config.fcm_service_account_file)
        self.token_url = config.fcm_token_url.strip() or self.account.token_uri
        self.path = f"/v1/projects/{quote(self.account.project_id, safe='')}/messages:send"
        # The sends: one HTTP/2 connection (Google's front ends speak it), every push a stream of it.
        self.client = http2.Client(config.fcm_url, max_in_flight=config.concurrency, idle_s=IDLE_S,
                                   connect_timeout_s=config.timeout_s)
        # The token endpoint, once an hour: httpx, over HTTP/2 as before.
        self.tokens = httpx.AsyncClient(http2=True, timeout=timeouts(config))
        self._access: tuple[str, float] | None = None  # the access token, and when to fetch another (monotonic)
        self._lock: asyncio.Lock | None = None
        self._semaphore: asyncio.Semaphore | None = None

    async def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        if not pushes:
            return []
        try:
            access_token = await self._access_token()
        except TokenRefused as e:
            return [e.outcome] * len(pushes)
        return list(await asyncio.gather(*(self._send_one(push, access_token) for push in pushes)))

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.tokens.aclose()

    # One push.

    async def _send_one(self, push: Push, access_token: str) -> Outcome:
        async with self._slots():
            try:
                response = await self._post(push, access_token)
                # THIRD_PARTY_AUTH_ERROR is a 401 about the app's APNs or web push credentials, not ours.
                if response.status == 401 and _error_code(_error(response)) != "THIRD_PARTY_AUTH_ERROR":
                    response = await self._post(push, await self._access_token(stale=access_token))
                return _outcome(response, push.token)
            except TokenRefused as e:
                return e.outcome
            except TimeoutError:
                return _refused("retry", f"FCM timed out after {self.config.timeout_s:g} s")
            except http2.TransportError as e:
                return _refused("retry", f"FCM is unreachable ({type(e).__name__})")
            except Exception as e:
                return unexpected(logger, "FCM", e, [push.token])

    async def _post(self, push: Push, access_token: str) -> http2.Response:
        """One request, the whole of it bounded by timeout_s; a timeout resets its stream only."""
        body = json.dumps({"message": message(push)}, ensure_ascii=False, separators=(",", ":")).encode()
        with ProviderCall("fcm", "send") as call:
            async with asyncio.timeout(self.config.timeout_s):
                response = await self.client.request("POST", self.path, [("authorization", f"Bearer {access_token}"),
                                                                         ("content-type", "application/json")], body)
            call.status = response.status
        return response

    def _slots(self) -> asyncio.Semaphore:
        """At most `concurrency` requests in flight; made on first use, on the loop that sends."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.concurrency)
        return self._semaphore

    # The access token.

    async def _access_token(self, stale: str | None = None) -> str:
        """The kept access token; a new one when there is none, it is near its expiry, or it is `stale`
        (refused) and no other request has replaced it yet. Concurrent callers wait for one fetch."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._access is None or self._access[0] == stale or time.monotonic() >= self._access[1]:
                self._access = None
                self._access = await self._fetch_token()
            return self._access[0]

    async def _fetch_token(self) -> tuple[str, float]:
        """Exchange a fresh assertion for an access token; TokenRefused when the endpoint does not give one."""
        try:
            with ProviderCall("fcm", "token") as call:
                response = await self.tokens.post(self.token_url, data={"grant_type": GRANT_TYPE,
                                                                        "assertion": self._assertion()})
                call.status = response.status_code
        except httpx.TimeoutException:
            raise _token_refused("retry", f"timed out after {self.config.timeout_s:g} s") from None
        except httpx.TransportError as e:
            raise _token_refused("retry", f"is unreachable ({type(e).__name__})") from None
        answer = _json(response.content)
        if response.status_code != 200:
            detail = ": ".join(str(answer[k]) for k in ("error", "error_description") if answer.get(k))
            status = "retry" if response.status_code == 429 or response.status_code >= 500 else "failed"
            raise _token_refused(status, f"answered {response.status_code} {detail or response.reason_phrase}"[:300],
                                 retry_after(response.headers.get("retry-after")) if status == "retry" else None)
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token:
            raise _token_refused("failed", "answered without an access_token")
        lifetime = float(expires_in) if isinstance(expires_in, (int, float)) else 0.0
        return token, time.monotonic() + max(lifetime - TOKEN_MARGIN_S, 0.0)

    def _assertion(self) -> str:
        now = int(time.time())
        claims = {"iss": self.account.client_email, "scope": SCOPE, "aud": self.token_url, "iat": now,
                  "exp": now + ASSERTION_LIFETIME_S}
        headers = {"kid": self.account.private_key_id} if self.account.private_key_id else None
        return jwt.encode(claims, self.account.private_key, algorithm="RS256", headers=headers)


def message(push: Push) -> dict:
    """The v1 `message` to one device; empty fields are left out."""
    n = push.notification
    fields = {
        "token": push.token,
        "notification": {"title": n.title, "body": n.body},
        # No collapse_key: FCM keeps four a device, so one a conversation would drop some while it is offline.
        # The tag shows a conversation's newest notification in place of the one before.
        "android": {"notification": {"tag": n.thread}},
        "apns": {"headers": {"apns-collapse-id": n.collapse_id and collapse_id(n.collapse_id)},
                 "payload": {"aps": {"thread-id": n.thread}}},
        "webpush": {"headers": {"Topic": n.collapse_id and web_push_topic(n.collapse_id)}},
    }
    message = _compact(fields)
    if n.data:
        message["data"] = dict(n.data)  # added after _compact: an empty string is a value here
    return message


def web_push_topic(value: str) -> str:
    """`value` as a Web Push Topic: itself when it fits, else the start of its SHA-256 in base64url."""
    if WEB_PUSH_TOPIC.fullmatch(value):
        return value
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).decode()[:32]


def _compact(fields: dict) -> dict:
    """`fields` without empty strings and the objects they leave empty."""
    kept = {key: _compact(value) if isinstance(value, dict) else value for key, value in fields.items()}
    return {key: value for key, value in kept.items() if value not in ("", {})}


def _json(content: bytes) -> dict:
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(response: http2.Response) -> dict:
    """Google's error object, or {} when the body is not one (a proxy's page, say)."""
    error = _json(response.body).get("error")
    return error if isinstance(error, dict) else {}


def _details(error: dict, kind: str) -> list[dict]:
    details = error.get("details")
    return [d for d in details if isinstance(d, dict) and d.get("@type") == kind] if isinstance(details, list) else []


def _error_code(error: dict) -> str | None:
    """The FcmError detail's errorCode, else the canonical status (UNAUTHENTICATED, INVALID_ARGUMENT, ...)."""
    codes = [d.get("errorCode") for d in _details(error, FCM_ERROR) if isinstance(d.get("errorCode"), str)]
    status = error.get("status")
    return codes[0] if codes else status if isinstance(status, str) else None


def _names_the_token(error: dict) -> bool:
    """Whether an INVALID_ARGUMENT is about the registration token: a BadRequest detail says the field at
    fault is `message.token`, or, as FCM's error codes page shows an invalid token, an FcmError detail says
    INVALID_ARGUMENT with no BadRequest beside it (a bad payload field comes with one that names it)."""
    violations = [v for d in _details(error, BAD_REQUEST) if isinstance(d.get("fieldViolations"), list)
                  for v in d["fieldViolations"]]
    if any(isinstance(v, dict) and v.get("field") == "message.token" for v in violations):
        return True
    said_by_fcm = any(d.get("errorCode") == "INVALID_ARGUMENT" for d in _details(error, FCM_ERROR))
    return said_by_fcm and not _details(error, BAD_REQUEST)


def _outcome(response: http2.Response, token: str) -> Outcome:
    status = response.status
    if status == 200:
        name = _json(response.body).get("name")
        return Outcome("sent", ref=name if isinstance(name, str) else None)
    error = _error(response)
    code = _error_code(error)
    said = str(error.get("message") or response.reason_phrase or "no reason given")[:200].replace(token, "<token>")
    reason = f"FCM answered {status} {code}: {said}" if code else f"FCM answered {status}: {said}"
    # Gone only in FCM's own words (an FcmError's UNREGISTERED, ...): a bare 404 NOT_FOUND (a wrong project
    # or URL) must not delete every device; it is failed, and logged.
    if code in GONE_CODES or (code == "INVALID_ARGUMENT" and _names_the_token(error)):
        return _refused("gone", reason)
    if status == 429 or status >= 500:
        return _refused("retry", reason, retry_after(response.headers.get("retry-after")))
    return _refused("failed", reason)


def _token_refused(status: Status, what: str, retry_after_s: float | None = None) -> TokenRefused:
    reason = f"FCM's token endpoint {what}"
    logger.warning("No FCM access token (%s): %s.", status, reason)
    return TokenRefused(Outcome(status, reason=reason, retry_after=retry_after_s))
