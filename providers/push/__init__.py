"""Push gateways as clients: each speaks one gateway's wire protocol and knows its `[push]` config,
nothing of messages, devices or readers (actors/push.py drives them).

- fcm.py: Firebase Cloud Messaging HTTP v1, one request a device over a shared HTTP/2 connection,
  authorized by an OAuth access token that a service account's RS256 JWT is exchanged for.
- apns.py: Apple Push Notification service over HTTP/2 (multiplexed), with an ES256 provider token.
- expo.py: Expo's push API, 100 notifications a request, with its tickets and the receipts call.
- http2.py: the lean HTTP/2 client FCM's and APNs's sends go through (a request a push costs too much
  CPU in httpx); httpx does the rest (FCM's token endpoint, Expo).

A sender's `send` is a coroutine: it runs on the worker process's event loop (Dramatiq's AsyncIO
middleware), at most `[push] concurrency` requests in flight to its gateway, and never raises for
what a gateway answers: each push gets an Outcome, in order. One slow or failing device does not
hold up the others beyond its own request's timeout. Outcomes and log lines never carry a token.
"""

from __future__ import annotations

import functools
import logging
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Sequence

import httpx

from config import Push as Config


#: How long a client keeps an idle connection: under the idle timeouts gateways close theirs after (Google's
#: front ends a few minutes), so a send never races the gateway closing the connection it picked.
IDLE_S = 60


def timeouts(config: Config) -> httpx.Timeout:
    """httpx's timeouts for a gateway client (Expo, FCM's token endpoint). A request's own deadline is
    `asyncio.timeout(timeout_s)` around it: httpcore's read timeout fails the whole HTTP/2 connection,
    every stream in flight on it (one stalled request would fail its neighbours, which the gateway may
    have answered already), so it is only a backstop here, past the deadline."""
    return httpx.Timeout(config.timeout_s, read=config.timeout_s * 2 + 1)


@dataclass(frozen=True)
class Notification:
    """What a device shows, the same for every gateway."""

    title: str
    body: str
    #: Deep-link ids for the app (workspace, channel or conversation, message); all strings, as FCM requires.
    data: dict[str, str] = field(default_factory=dict)
    #: Groups one conversation's notifications on the device: APNs `thread-id`, FCM's Android `tag`
    #: and Android notification `tag`, in Expo's data for the app.
    thread: str = ""
    #: This notification's own identity, so a repeat replaces it instead of showing twice
    #: (APNs `apns-collapse-id`, at most 64 bytes).
    collapse_id: str = ""


@dataclass(frozen=True)
class Push:
    """One notification to one device token."""

    token: str
    notification: Notification


Status = Literal["sent", "gone", "retry", "failed"]


@dataclass(frozen=True)
class Outcome:
    """What became of one push.

    - `sent`: the gateway took it; `ref` is its id for it (APNs `apns-id`, FCM's message name, an Expo
      ticket id to ask the receipt of).
    - `gone`: the token will never work again (unregistered, invalid, another app's): delete the device.
    - `retry`: a timeout, a connection error, 5xx or 429; try again after `retry_after` seconds when the
      gateway said (capped, providers/retrying.py), else with backoff.
    - `failed`: any other refusal; trying again will not help.
    `reason` says why for all but `sent`, without the token.
    """

    status: Status
    ref: str | None = None
    reason: str | None = None
    retry_after: float | None = None


class Sender:
    """What every gateway's client does; subclasses speak the wire protocol."""

    #: The gateway's name, as devices' `provider` says it.
    name: ClassVar[str] = ""
    #: Pushes one request carries at most (the caller sends a batch of any size; this is for counting).
    per_request: ClassVar[int] = 1

    def __init__(self, config: Config):
        self.config = config

    async def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        """Send each push; an Outcome for each, in order."""
        raise NotImplementedError

    async def receipts(self, refs: Sequence[str]) -> dict[str, Outcome]:
        """What became of pushes the gateway took (`sent` with these refs), for gateways that tell later
        (Expo). Refs whose receipt is not ready yet are left out."""
        return {}

    async def aclose(self) -> None:
        """Close the connections."""


def refused(logger: logging.Logger, gateway: str, status: Status, reason: str, retry_after_s: float | None = None,
            *, count: int = 1) -> Outcome:
    """The Outcome of `count` pushes a gateway did not take, logged at WARNING (reasons never hold a token)."""
    what = "a notification" if count == 1 else f"{count} notifications"
    logger.warning("%s did not take %s (%s): %s.", gateway, what, status, reason)
    return Outcome(status, reason=reason, retry_after=retry_after_s)


def unexpected(logger: logging.Logger, gateway: str, error: Exception, tokens: Sequence[str]) -> Outcome:
    """The Outcome of pushes a sender could not finish for a reason it did not foresee (an h2 error that is
    no TransportError, an answer it could not parse): tried again, as after a lost answer, so a batch never
    loses its other pushes. Logged at ERROR on one line, with where it was raised, scrubbed of tokens."""
    said = str(error)
    for token in tokens:
        said = said.replace(token, "<token>")
    where = " < ".join(f"{'/'.join(Path(f.filename).parts[-2:])}:{f.lineno}"
                       for f in reversed(traceback.extract_tb(error.__traceback__)))
    what = "a notification" if len(tokens) == 1 else f"{len(tokens)} notifications"
    logger.error("%s: %s met an unexpected %s (%s) at %s; tried again.", gateway, what, type(error).__name__,
                 said[:300], where)
    return Outcome("retry", reason=f"{gateway} failed unexpectedly ({type(error).__name__})")


def kinds() -> dict[str, type[Sender]]:
    """Every gateway's Sender class, by name."""
    from providers.push import apns, expo, fcm

    return {sender.name: sender for sender in (fcm.FCM, apns.APNs, expo.Expo)}


def disabled(config: Config) -> dict[str, str | None]:
    """Each gateway's name and why it is off (None: it is on), from the config and its key files (no
    network). Read again only when a key file changes (its mtime): every fan-out asks, and parsing the
    keys cost more than the rest of a small one."""
    return dict(_disabled(config, _stamp(config.fcm_service_account_file), _stamp(config.apns_key_file)))


@functools.lru_cache(maxsize=16)
def _disabled(config: Config, *key_files: tuple) -> dict[str, str | None]:
    """disabled(), kept by the config and the key files' stamps (which only key the cache)."""
    return {name: sender.disabled(config) for name, sender in kinds().items()}


def _stamp(path: str) -> tuple:
    """What says a key file changed: its path, size and mtime (None when it cannot be read)."""
    try:
        stat = os.stat(path) if path.strip() else None
    except OSError:
        stat = None
    return (path, stat and stat.st_size, stat and stat.st_mtime_ns)


def build(config: Config) -> dict[str, Sender]:
    """The senders of the gateways that are on, by name. Call on the event loop that will use them."""
    return {name: kinds()[name](config) for name, reason in disabled(config).items() if reason is None}
