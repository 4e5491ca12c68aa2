"""Apple Push Notification service (developer.apple.com: "Sending notification requests to APNs",
"Establishing a token-based connection to APNs", "Handling notification responses from APNs").

One `POST /3/device/<token>` a notification, multiplexed over one HTTP/2 connection (Apple speaks
nothing else), authorized by a provider token: an ES256 JWT `{"iss": team id, "iat": now}` with the
key id in its header, signed with the team's .p8 key. Apple refuses a token older than an hour and
one renewed more often than every 20 minutes (TooManyProviderTokenUpdates), so it is kept for
`[push] apns_token_refresh_s` clamped to that window, and made anew when Apple says it expired, but
not again within 20 minutes if Apple refuses the new one too (a wrong key or clock: a third will not help);
meanwhile the pushes Apple refuses so are tried again with backoff, as after a 5xx.

Answers: 200 (the `apns-id` header is the ref); 410, or 400 BadDeviceToken / DeviceTokenNotForTopic:
the token is gone; 429, 5xx: retry; any other: failed, with Apple's `reason`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import re
import time
from typing import Sequence
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from providers.push import IDLE_S, Config, Outcome, Push, Sender, http2, refused, unexpected
from providers.retrying import retry_after
from telemetry import ProviderCall

logger = logging.getLogger(__name__)
_refused = functools.partial(refused, logger, "APNs")

#: Apple's window for renewing a provider token, in seconds: no more often than 20 minutes, no less than 60.
TOKEN_REFRESH_MIN_S, TOKEN_REFRESH_MAX_S = 20 * 60, 60 * 60
#: How long APNs keeps trying to reach an offline device.
EXPIRATION_S = 24 * 3600
GONE_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic"}
STALE_TOKEN_REASONS = {"ExpiredProviderToken", "InvalidProviderToken"}
#: What Apple takes as apns-collapse-id as it is: at most 64 bytes, all visible ASCII (an HTTP header).
COLLAPSE_ID = re.compile(r"[!-~]{1,64}")


def collapse_id(value: str) -> str:
    """`value` as an apns-collapse-id: itself when it fits, else its SHA-256 (64 hex digits), which a
    repeat of it maps to as well. FCM's `apns.headers` and Expo's `collapseId` use it too."""
    return value if COLLAPSE_ID.fullmatch(value) else hashlib.sha256(value.encode()).hexdigest()


def signing_key(path: str) -> ec.EllipticCurvePrivateKey:
    """The .p8 key at `path`; ValueError with a sentence an operator can act on."""
    try:
        with open(path, "rb") as f:
            pem = f.read()
    except OSError as e:
        raise ValueError(f"[push] apns_key_file {path} cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path} is not an APNs signing key (a PKCS#8 EC P-256 .p8 file)")
    return key


class APNs(Sender):
    """APNs's client: a request a push, all on one HTTP/2 connection."""

    name = "apns"
    per_request = 1

    @staticmethod
    def disabled(config: Config) -> str | None:
        """Why APNs is off, from the config alone; None when it is on."""
        for setting in ("apns_url", "apns_key_file", "apns_key_id", "apns_team_id", "apns_topic"):
            if not getattr(config, setting).strip():
                return f"APNs is off: [push] {setting} is not set."
        try:
            signing_key(config.apns_key_file)
        except ValueError as e:
            return f"APNs is off: {e}."
        return None

    def __init__(self, config: Config):
        super().__init__(config)
        self.key = signing_key(config.apns_key_file)
        self.refresh_s = min(max(config.apns_token_refresh_s, TOKEN_REFRESH_MIN_S), TOKEN_REFRESH_MAX_S)
        # HTTP/2 over TLS, or prior-knowledge h2c for http://. The client logs nothing: a path carries a token.
        self.client = http2.Client(config.apns_url, max_in_flight=config.concurrency, idle_s=IDLE_S,
                                   connect_timeout_s=config.timeout_s)
        #: Seconds, monotonic: when provider tokens are made and how old they are (tests move it on).
        self.clock = time.monotonic
        self._token: str | None = None
        self._made_at = 0.0  # when the token was made (clock)
        self._remade_at: float | None = None  # when it was made because Apple refused the one before
        self._semaphore: asyncio.Semaphore | None = None

    async def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        return list(await asyncio.gather(*(self._send_one(push) for push in pushes)))

    async def aclose(self) -> None:
        await self.client.aclose()

    # One push.

    async def _send_one(self, push: Push) -> Outcome:
        async with self._slots():
            try:
                token = self._provider_token()
                response = await self._post(push, token)
                if _refuses_the_token(response):
                    fresh = self._provider_token(stale=token)
                    if fresh == token:  # made anew after a refusal less than 20 minutes ago
                        return self._token_refused(response)
                    response = await self._post(push, fresh)
                    if _refuses_the_token(response):
                        return self._token_refused(response)
                return _outcome(response)
            except TimeoutError:
                return _refused("retry", f"APNs timed out after {self.config.timeout_s:g} s")
            except http2.TransportError as e:
                return _refused("retry", f"APNs is unreachable ({type(e).__name__})")
            except Exception as e:
                return unexpected(logger, "APNs", e, [push.token])

    def _token_refused(self, response: http2.Response) -> Outcome:
        """Apple refused a provider token that may not be replaced yet: tried again with backoff, since a
        refusal on Apple's side passes, and a wrong key or clock shows in the log while it lasts."""
        remade = self._remade_at
        wait_s = 0.0 if remade is None else max(0.0, TOKEN_REFRESH_MIN_S - (self.clock() - remade))
        return _refused("retry", f"APNs answered 403 {_reason(response)} to a provider token made anew after a "
                                 f"refusal; another may be made in {wait_s:.0f} s, Apple allows one in 20 minutes")

    async def _post(self, push: Push, provider_token: str) -> http2.Response:
        """One request, the whole of it bounded by timeout_s; a timeout resets its stream only."""
        with ProviderCall("apns", "send") as call:
            async with asyncio.timeout(self.config.timeout_s):
                response = await self.client.request("POST", "/3/device/" + quote(push.token, safe=""),
                                                     self._headers(push, provider_token), payload(push))
            call.status = response.status
        return response

    def _headers(self, push: Push, provider_token: str) -> list[tuple[str, str]]:
        headers = [("authorization", f"bearer {provider_token}"), ("apns-topic", self.config.apns_topic),
                   ("apns-push-type", "alert"), ("apns-priority", "10"),
                   ("apns-expiration", str(int(time.time()) + EXPIRATION_S)), ("content-type", "application/json")]
        if push.notification.collapse_id:
            headers.append(("apns-collapse-id", collapse_id(push.notification.collapse_id)))
        return headers

    def _slots(self) -> asyncio.Semaphore:
        """At most `concurrency` requests in flight; made on first use, on the loop that sends."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.concurrency)
        return self._semaphore

    def _provider_token(self, stale: str | None = None) -> str:
        """The provider token, made anew when it is `refresh_s` old, or when Apple refused it (`stale`)
        and no other request has replaced it yet: concurrent refusals make one new token, not many. A
        token made after a refusal is not replaced for another within 20 minutes."""
        now = self.clock()
        refused = self._token is not None and self._token == stale and not (
            self._remade_at is not None and now - self._remade_at < TOKEN_REFRESH_MIN_S)
        if self._token is None or now - self._made_at >= self.refresh_s or refused:
            if refused:
                logger.warning("APNs refused its provider token: making a new one, and no other for 20 minutes "
                               "if Apple refuses that too.")
            claims = {"iss": self.config.apns_team_id, "iat": int(time.time())}
            self._token = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.config.apns_key_id})
            self._made_at, self._remade_at = now, now if refused else None
        return self._token


def payload(push: Push) -> bytes:
    """The notification as APNs shows it; the app's data keys sit beside `aps`, as Apple's payloads do.
    UTF-8 rather than \\u escapes: Apple's 4 KB limit counts bytes."""
    n = push.notification
    aps = {"alert": {"title": n.title, "body": n.body}, "sound": "default", "mutable-content": 1}
    if n.thread:
        aps["thread-id"] = n.thread
    return json.dumps({**n.data, "aps": aps}, ensure_ascii=False, separators=(",", ":")).encode()


def _reason(response: http2.Response) -> str | None:
    """Apple's `reason` from an error body `{"reason": ..., "timestamp": ...}`."""
    try:
        body = json.loads(response.body)
    except ValueError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) else None


def _refuses_the_token(response: http2.Response) -> bool:
    return response.status == 403 and _reason(response) in STALE_TOKEN_REASONS


def _outcome(response: http2.Response) -> Outcome:
    status = response.status
    if status == 200:
        return Outcome("sent", ref=response.headers.get("apns-id"))
    apple_reason = _reason(response)
    reason = f"APNs answered {status} {apple_reason or response.reason_phrase or 'without a reason'}"
    if status == 410 or (status == 400 and apple_reason in GONE_REASONS):
        return _refused("gone", reason)
    if status == 429 or status >= 500:
        return _refused("retry", reason, retry_after(response.headers.get("retry-after")))
    return _refused("failed", reason)
