"""Expo's push service (docs.expo.dev/push/sending-notifications/, and its reference client,
github.com/expo/expo-server-sdk-node src/ExpoClient.ts).

`POST /--/api/v2/push/send` takes a JSON array of at most 100 messages and answers `{"data": [ticket,
...]}` in the same order: `{"status": "ok", "id"}` (the id is the ref to ask the receipt of), or
`{"status": "error", "message", "details": {"error": "DeviceNotRegistered" | "MessageTooBig" |
"MessageRateExceeded" | ...}}`. A ticket only says Expo queued the notification; what FCM or APNs made
of it comes in the receipt, `POST /--/api/v2/push/getReceipts` with `{"ids": [...]}` (1000 at most),
once it is ready, for about a day. A whole request refused answers `{"errors": [{"code", "message"}]}`.

A message holds only fields of the reference client's ExpoPushMessage type (to, data, title, subtitle,
body, sound, ttl, expiration, priority, interruptionLevel, badge, channelId, icon, richContent,
categoryId, mutableContent, collapseId, tag; the last two since expo-server-sdk-node #266): the
conversation as `tag` (Android replaces the shown notification of the same tag) and in `data.thread`
for the app; `collapseId` (apns-collapse-id on iOS) is the notification's own identity. Expo's
messages name the token: reasons are scrubbed of it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import Sequence

import httpx

from providers.push import IDLE_S, Config, Outcome, Push, Sender, refused, timeouts, unexpected
from providers.retrying import retry_after
from providers.push.apns import collapse_id
from telemetry import ProviderCall

logger = logging.getLogger(__name__)
_refused = functools.partial(refused, logger, "Expo")

SEND_PATH = "/--/api/v2/push/send"
RECEIPTS_PATH = "/--/api/v2/push/getReceipts"
#: Messages a send request takes, and ids a receipts request takes.
SEND_MAX, RECEIPTS_MAX = 100, 1000
#: How Expo's push tokens look (Expo.isExpoPushToken in the reference client).
EXPO_TOKEN = re.compile(r"Expo(?:nent)?PushToken\[[^\]]*\]")
HEADERS = {"accept": "application/json", "accept-encoding": "gzip, deflate", "content-type": "application/json"}


class Expo(Sender):
    """Expo's client: requests of 100 pushes, and the receipts of their tickets."""

    name = "expo"
    per_request = SEND_MAX

    @staticmethod
    def disabled(config: Config) -> str | None:
        """Why Expo is off, from the config alone; None when it is on."""
        if not config.expo_url.strip():
            return "Expo is off: [push] expo_url is empty."
        if not config.expo_url.startswith(("https://", "http://")):
            return "Expo is off: [push] expo_url is not an https:// URL."
        return None

    def __init__(self, config: Config):
        super().__init__(config)
        self.base = config.expo_url.rstrip("/")
        headers = dict(HEADERS)
        if config.expo_access_token.strip():
            headers["authorization"] = f"Bearer {config.expo_access_token.strip()}"
        self.client = httpx.AsyncClient(http2=True, timeout=timeouts(config), headers=headers, limits=httpx.Limits(
            max_connections=config.concurrency, max_keepalive_connections=config.concurrency, keepalive_expiry=IDLE_S))
        self._semaphore: asyncio.Semaphore | None = None

    async def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        chunks = [pushes[start:start + SEND_MAX] for start in range(0, len(pushes), SEND_MAX)]
        answers = await asyncio.gather(*(self._send_chunk(chunk) for chunk in chunks))
        return [outcome for answer in answers for outcome in answer]

    async def receipts(self, refs: Sequence[str]) -> dict[str, Outcome]:
        chunks = [refs[start:start + RECEIPTS_MAX] for start in range(0, len(refs), RECEIPTS_MAX)]
        answers = await asyncio.gather(*(self._receipts_chunk(chunk) for chunk in chunks))
        return {ref: outcome for answer in answers for ref, outcome in answer.items()}

    async def aclose(self) -> None:
        await self.client.aclose()

    # Sending.

    async def _send_chunk(self, chunk: Sequence[Push]) -> list[Outcome]:
        """One send request's outcomes: a ticket each, or the same outcome for all when it was refused."""
        tokens = [push.token for push in chunk]
        try:
            return await self._send_request(chunk, tokens)
        except (httpx.TimeoutException, TimeoutError):
            reason = f"Expo timed out after {self.config.timeout_s:g} s"
            return [_refused("retry", reason, count=len(chunk))] * len(chunk)
        except httpx.TransportError as e:
            return [_refused("retry", f"Expo is unreachable ({type(e).__name__})", count=len(chunk))] * len(chunk)
        except Exception as e:
            return [unexpected(logger, "Expo", e, tokens)] * len(chunk)

    async def _send_request(self, chunk: Sequence[Push], tokens: list[str]) -> list[Outcome]:
        """The send request, and what its answer says of each push."""
        response = await self._post(SEND_PATH, [message(push) for push in chunk])
        body = _body(response)
        refusal = _request_refusal(response, body, tokens)
        if refusal is not None:
            return [refusal] * len(chunk)
        tickets = body["data"]
        if len(tickets) != len(chunk):
            reason = f"Expo answered {len(tickets)} tickets for {len(chunk)} notifications"
            return [_refused("failed", reason, count=len(chunk))] * len(chunk)
        return [_ticket(ticket, push.token) for ticket, push in zip(tickets, chunk)]

    async def _post(self, path: str, body) -> httpx.Response:
        """One request under the concurrency limit, the whole of it bounded by timeout_s (httpcore's read
        timeout only bounds a quiet connection, and other streams' answers keep a shared one busy)."""
        if self._semaphore is None:  # made on first use, on the loop that sends
            self._semaphore = asyncio.Semaphore(self.config.concurrency)
        async with self._semaphore:
            with ProviderCall("expo", path.rpartition("/")[2]) as call:  # send, getReceipts
                async with asyncio.timeout(self.config.timeout_s):
                    response = await self.client.post(self.base + path, json=body)
                call.status = response.status_code
        return response

    # Receipts.

    async def _receipts_chunk(self, refs: Sequence[str]) -> dict[str, Outcome]:
        """The receipts of these tickets that are ready; none when the call fails (asked again later)."""
        try:
            response = await self._post(RECEIPTS_PATH, {"ids": list(refs)})
        except (httpx.TransportError, TimeoutError) as e:
            logger.warning("Expo's receipts of %d tickets could not be read (%s); asking again later.",
                           len(refs), type(e).__name__)
            return {}
        body = _body(response)
        receipts = body.get("data")
        if response.status_code != 200 or not isinstance(receipts, dict):
            logger.warning("Expo's receipts of %d tickets could not be read (%s); asking again later.",
                           len(refs), _request_reason(response, body, []))
            return {}
        return {ref: _receipt(receipts[ref], ref) for ref in refs if isinstance(receipts.get(ref), dict)}


def message(push: Push) -> dict:
    """The Expo message to one device; empty fields are left out."""
    n = push.notification
    fields = {"to": push.token, "title": n.title, "body": n.body, "sound": "default", "priority": "high",
              "tag": n.thread, "collapseId": n.collapse_id and collapse_id(n.collapse_id)}
    data = {**n.data, "thread": n.thread} if n.thread else dict(n.data)
    return {key: value for key, value in fields.items() if value} | ({"data": data} if data else {})


def _body(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _request_reason(response: httpx.Response, body: dict, tokens: Sequence[str]) -> str:
    """What Expo said of a refused request: its first error's code and message, scrubbed of tokens."""
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    said = _scrub(f"{first.get('code') or response.reason_phrase}: {first.get('message') or 'no message'}", tokens)
    return f"Expo answered {response.status_code} {said}"[:300]


def _request_refusal(response: httpx.Response, body: dict, tokens: Sequence[str]) -> Outcome | None:
    """The outcome of every push of a request Expo refused as a whole; None when it answered tickets."""
    if response.status_code == 200 and "errors" not in body:
        if isinstance(body.get("data"), list):
            return None
        return _refused("failed", "Expo answered 200 without a list of tickets", count=len(tokens))
    reason = _request_reason(response, body, tokens)
    if response.status_code == 429 or response.status_code >= 500:
        return _refused("retry", reason, retry_after(response.headers.get("retry-after")), count=len(tokens))
    return _refused("failed", reason, count=len(tokens))


def _ticket(ticket, token: str) -> Outcome:
    if isinstance(ticket, dict) and ticket.get("status") == "ok" and isinstance(ticket.get("id"), str):
        return Outcome("sent", ref=ticket["id"])
    return _error(ticket, token, "Expo refused a notification")


def _receipt(receipt: dict, ref: str) -> Outcome:
    if receipt.get("status") == "ok":
        return Outcome("sent", ref=ref)
    return _error(receipt, "", f"Expo's receipt {ref} says it was not delivered")


def _error(entry, token: str, what: str) -> Outcome:
    """A ticket's or receipt's error: DeviceNotRegistered is gone, MessageRateExceeded retry, the rest failed."""
    entry = entry if isinstance(entry, dict) else {}
    details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
    code = details.get("error") if isinstance(details.get("error"), str) else "an error"
    tokens = [token, str(details.get("expoPushToken") or "")]
    reason = _scrub(f"{what}: {code}: {entry.get('message') or 'no message'}", tokens)[:300]
    status = {"DeviceNotRegistered": "gone", "MessageRateExceeded": "retry"}.get(code, "failed")
    return _refused(status, reason)


def _scrub(text: str, tokens: Sequence[str]) -> str:
    """`text` without `tokens` or anything shaped like an Expo push token: Expo's messages quote them."""
    for token in tokens:
        if token:
            text = text.replace(token, "<token>")
    return EXPO_TOKEN.sub("<token>", text)
