"""The push gateways' clients (providers/push/) against local gateways that speak each one's protocol
over TLS and HTTP/2 (tests/gateways.py): what each gateway receives, the credentials, how every answer
is classified, concurrency and timeouts, Expo's receipts, disabled() and what never reaches a log; and
the HTTP/2 client FCM and APNs send with (providers/push/http2.py) against a gateway that limits its
streams, says GOAWAY or drops the connection mid-burst, and bodies bigger than HTTP/2's windows."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import socket
import time
from collections import Counter
from pathlib import Path

import httpx
import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization

import config
import providers.push as push
from providers.push import Notification, Outcome, Push
from providers.push.apns import APNs
from providers.push.expo import Expo
from providers.push.fcm import FCM
from providers.push.http2 import Client, ConnectError
from tests.gateways import FCM_SCOPE, FakeAPNs, Gateways

NOTE = Notification(title="Ana in #general", body="Lunch at noon?",
                    data={"workspace": "w1", "channel": "c1", "message": "m1"}, thread="c1", collapse_id="m1")


@pytest.fixture(scope="module")
def gateways():
    with Gateways() as gateways, pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", gateways.ca.ca_file)  # the senders trust what httpx trusts by default
        yield gateways


@pytest.fixture(autouse=True)
def fresh(gateways):
    gateways.reset()


@pytest.fixture
def settings(gateways) -> config.Push:
    """Sector's [push] config pointed at the fakes by their env(), with small limits."""
    return msgspec.structs.replace(config.load(environ=gateways.env()).push, concurrency=8, timeout_s=2.0)


def run(sender_class, settings: config.Push, script):
    """`await script(sender)` with a new sender on a new loop, closed after."""
    async def main():
        sender = sender_class(settings)
        try:
            return await script(sender)
        finally:
            await sender.aclose()
    return asyncio.run(main())


def send(sender_class, settings: config.Push, pushes: list[Push]) -> list[Outcome]:
    return run(sender_class, settings, lambda sender: sender.send(pushes))


def fcm_token() -> str:
    return f"fcm:{secrets.token_urlsafe(24)}"


def apns_token() -> str:
    return secrets.token_hex(32)


def expo_token() -> str:
    return f"ExponentPushToken[{secrets.token_urlsafe(16)}]"


def pushes(make_token, count: int, notification: Notification = NOTE) -> list[Push]:
    return [Push(make_token(), notification) for _ in range(count)]


# FCM ---------------------------------------------------------------------------------------------------

def test_fcm_sends_the_v1_message_over_http2_with_its_access_token(gateways, settings):
    [sent] = pushes(fcm_token, 1)
    [outcome] = send(FCM, settings, [sent])
    [request] = gateways.fcm.received
    [token_request] = gateways.fcm.token_requests
    assert outcome == Outcome("sent", ref=request.answer()["name"])
    assert outcome.ref.startswith("projects/sector-test/messages/0:")
    assert request.path == "/v1/projects/sector-test/messages:send"
    assert request.http_version == "2"
    assert request.headers["authorization"] == f"Bearer {token_request.access_token}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {"message": {
        "token": sent.token,
        "notification": {"title": "Ana in #general", "body": "Lunch at noon?"},
        "data": {"workspace": "w1", "channel": "c1", "message": "m1"},
        "android": {"notification": {"tag": "c1"}},
        "apns": {"headers": {"apns-collapse-id": "m1"}, "payload": {"aps": {"thread-id": "c1"}}},
        "webpush": {"headers": {"Topic": "m1"}},
    }}


def test_fcm_leaves_out_what_a_notification_does_not_have(gateways, settings):
    bare = Push(fcm_token(), Notification(title="Ana", body="hi"))
    assert [o.status for o in send(FCM, settings, [bare])] == ["sent"]
    assert gateways.fcm.received[0].body == {"message": {"token": bare.token,
                                                         "notification": {"title": "Ana", "body": "hi"}}}


def test_fcm_signs_its_assertion_with_the_service_account_key(gateways, settings):
    send(FCM, settings, pushes(fcm_token, 1))
    [token_request] = gateways.fcm.token_requests
    account = json.loads(Path(gateways.fcm.service_account_file).read_text())
    public_key = serialization.load_pem_private_key(account["private_key"].encode(), None).public_key()
    claims = jwt.decode(token_request.assertion, public_key, algorithms=["RS256"], audience=account["token_uri"])
    assert token_request.status == 200
    assert jwt.get_unverified_header(token_request.assertion) == {"alg": "RS256", "typ": "JWT",
                                                                  "kid": account["private_key_id"]}
    assert set(claims) == {"iss", "scope", "aud", "iat", "exp"}
    assert (claims["iss"], claims["scope"], claims["aud"]) == (account["client_email"], FCM_SCOPE,
                                                               gateways.fcm.token_url)
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 60


def test_fcm_fetches_one_access_token_for_concurrent_sends_and_keeps_it(gateways, settings):
    async def script(sender):
        together = await asyncio.gather(sender.send(pushes(fcm_token, 20)), sender.send(pushes(fcm_token, 20)))
        later = await sender.send(pushes(fcm_token, 5))
        return together[0] + together[1] + later

    outcomes = run(FCM, settings, script)
    assert Counter(o.status for o in outcomes) == {"sent": 45}
    [token_request] = gateways.fcm.token_requests
    assert {r.headers["authorization"] for r in gateways.fcm.received} == {f"Bearer {token_request.access_token}"}


def test_fcm_fetches_a_new_access_token_when_the_kept_one_is_near_its_expiry(gateways, settings):
    gateways.fcm.token_expires_in = 300  # within the 5 minutes' margin: stale at once

    async def script(sender):
        return await sender.send(pushes(fcm_token, 1)) + await sender.send(pushes(fcm_token, 1))

    assert [o.status for o in run(FCM, settings, script)] == ["sent", "sent"]
    first, second = gateways.fcm.token_requests
    assert [r.headers["authorization"] for r in gateways.fcm.received] == [f"Bearer {first.access_token}",
                                                                         f"Bearer {second.access_token}"]


def test_fcm_gets_a_new_access_token_after_a_401_and_sends_each_push_once_more(gateways, settings):
    batch = pushes(fcm_token, 5)

    async def script(sender):
        await sender.send(pushes(fcm_token, 1))
        gateways.fcm.expire_tokens()
        return await sender.send(batch)

    assert Counter(o.status for o in run(FCM, settings, script)) == {"sent": 5}
    assert len(gateways.fcm.token_requests) == 2  # one new token for the five refusals
    answers = Counter((r.token, r.status) for r in gateways.fcm.received[1:])
    assert answers == {(p.token, status): 1 for p in batch for status in (401, 200)}


def test_fcm_does_not_renew_its_token_for_a_third_party_auth_error(gateways, settings):
    [refused] = pushes(fcm_token, 1)
    gateways.fcm.behaviour[refused.token] = "third-party-auth-error"
    assert send(FCM, settings, [refused]) == [
        Outcome("failed", reason="FCM answered 401 THIRD_PARTY_AUTH_ERROR: Auth error from APNS or Web Push Service")]
    assert (len(gateways.fcm.token_requests), len(gateways.fcm.received)) == (1, 1)


@pytest.mark.parametrize("status, retry_after, expected", [
    (503, None, Outcome("retry", reason="FCM's token endpoint answered 503 internal_failure: Error 503")),
    (429, 7, Outcome("retry", reason="FCM's token endpoint answered 429 rate_limit_exceeded: Error 429",
                     retry_after=7.0)),
    (400, None, Outcome("failed", reason="FCM's token endpoint answered 400 invalid_grant: Error 400")),
])
def test_a_token_endpoint_failure_is_every_pushs_outcome(gateways, settings, status, retry_after, expected):
    gateways.fcm.fail_token_next(1, status, retry_after)
    assert send(FCM, settings, pushes(fcm_token, 3)) == [expected] * 3
    assert gateways.fcm.received == []


@pytest.mark.parametrize("behaviour, expected", [
    ("unregistered", Outcome("gone", reason="FCM answered 404 UNREGISTERED: Requested entity was not found.")),
    ("sender-id-mismatch", Outcome("gone", reason="FCM answered 403 SENDER_ID_MISMATCH: SenderId mismatch")),
    ("invalid-token", Outcome("gone", reason="FCM answered 400 INVALID_ARGUMENT: The registration token is not "
                                             "a valid FCM registration token")),
    ("invalid-token-field", Outcome("gone", reason="FCM answered 400 INVALID_ARGUMENT: The registration token is "
                                                   "not a valid FCM registration token")),
    ("not-found", Outcome("failed", reason="FCM answered 404 NOT_FOUND: Requested entity was not found.")),
    ("invalid-argument", Outcome("failed", reason="FCM answered 400 INVALID_ARGUMENT: Invalid value at 'message."
                                                  "android.ttl' (type.googleapis.com/google.protobuf.Duration)")),
    ("quota-exceeded", Outcome("retry", reason="FCM answered 429 QUOTA_EXCEEDED: Quota exceeded for quota metric "
                                               "'Send requests' and limit 'Send requests per minute'.")),
    ("internal", Outcome("retry", reason="FCM answered 500 INTERNAL: Internal error encountered.")),
    ("unavailable", Outcome("retry", reason="FCM answered 503 UNAVAILABLE: The service is currently unavailable.")),
])
def test_fcm_answers_are_classified(gateways, settings, behaviour, expected):
    fine, scripted = pushes(fcm_token, 2)
    gateways.fcm.behaviour[scripted.token] = behaviour
    outcomes = send(FCM, settings, [fine, scripted])
    assert [outcomes[0].status, outcomes[1]] == ["sent", expected]


@pytest.mark.parametrize("status, retry_after, expected", [(429, 7, 7.0), (503, 12.5, 12.5), (500, 86400, 300.0)])
def test_fcm_retries_after_what_retry_after_says_up_to_five_minutes(gateways, settings, status, retry_after,
                                                                     expected):
    gateways.fcm.fail_next(1, status, retry_after)
    [outcome] = send(FCM, settings, pushes(fcm_token, 1))
    assert (outcome.status, outcome.retry_after) == ("retry", expected)


def test_a_404_in_other_words_than_googles_does_not_make_a_device_gone(gateways, settings):
    elsewhere = msgspec.structs.replace(settings, fcm_url=gateways.fcm.url + "/elsewhere")
    assert send(FCM, elsewhere, pushes(fcm_token, 1)) == [Outcome("failed", reason="FCM answered 404: Not Found")]


# APNs --------------------------------------------------------------------------------------------------

def test_apns_sends_each_push_over_http2_with_apples_headers_and_payload(gateways, settings):
    [sent] = pushes(apns_token, 1)
    [outcome] = send(APNs, settings, [sent])
    [request] = gateways.apns.received
    assert outcome == Outcome("sent", ref=request.reply.headers["apns-id"])
    assert request.path == f"/3/device/{sent.token}"
    assert request.http_version == "2"
    headers = request.headers
    assert (headers["apns-topic"], headers["apns-push-type"], headers["apns-priority"], headers["apns-collapse-id"]) \
        == (gateways.apns.topic, "alert", "10", "m1")
    assert abs(int(headers["apns-expiration"]) - (time.time() + 86400)) < 60
    assert request.body == {"workspace": "w1", "channel": "c1", "message": "m1", "aps": {
        "alert": {"title": "Ana in #general", "body": "Lunch at noon?"}, "sound": "default", "mutable-content": 1,
        "thread-id": "c1"}}


def test_apns_provider_token_is_an_es256_jwt_made_with_the_p8_key(gateways, settings):
    send(APNs, settings, pushes(apns_token, 1))
    scheme, _, token = gateways.apns.received[0].headers["authorization"].partition(" ")
    key = serialization.load_pem_private_key(Path(gateways.apns.key_file).read_bytes(), None)
    claims = jwt.decode(token, key.public_key(), algorithms=["ES256"])
    assert scheme == "bearer"
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT", "kid": gateways.apns.key_id}
    assert set(claims) == {"iss", "iat"} and claims["iss"] == gateways.apns.team_id
    assert abs(claims["iat"] - time.time()) < 60


class Clock:
    """A monotonic clock a test moves on, for a sender's `clock`."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider_tokens_after(gateways, settings: config.Push, ages_s: list[float]) -> list[int]:
    """How many provider tokens APNs has seen after each send of 2 pushes, at these clock readings (s)."""
    clock = Clock()

    async def script(sender):
        sender.clock, seen = clock, []
        for age_s in ages_s:
            clock.now = 1000.0 + age_s
            assert [o.status for o in await sender.send(pushes(apns_token, 2))] == ["sent", "sent"]
            seen.append(len(gateways.apns.provider_tokens))
        return seen

    return run(APNs, settings, script)


def test_apns_keeps_its_provider_token_for_twenty_minutes_at_least(gateways, settings):
    eager = msgspec.structs.replace(settings, apns_token_refresh_s=1)  # clamped to Apple's 20 minutes
    assert provider_tokens_after(gateways, eager, [0, 1, 1199, 1200, 2399, 2400]) == [1, 1, 1, 2, 2, 3]


def test_apns_renews_its_provider_token_after_the_configured_refresh(gateways, settings):
    assert settings.apns_token_refresh_s == 3000
    assert provider_tokens_after(gateways, settings, [0, 1200, 2999, 3000, 5999, 6000]) == [1, 1, 1, 2, 2, 3]
    gateways.reset()
    lazy = msgspec.structs.replace(settings, apns_token_refresh_s=86400)  # clamped to Apple's hour
    assert provider_tokens_after(gateways, lazy, [0, 3599, 3600]) == [1, 1, 2]


def test_apns_makes_one_new_provider_token_after_expired_provider_token(gateways, settings):
    batch = pushes(apns_token, 5)

    async def script(sender):
        await sender.send(pushes(apns_token, 1))
        gateways.apns.expire_tokens()
        return await sender.send(batch)

    assert Counter(o.status for o in run(APNs, settings, script)) == {"sent": 5}
    assert len(gateways.apns.provider_tokens) == 2
    answers = Counter((r.token, r.status) for r in gateways.apns.received[1:])
    assert answers == {(p.token, status): 1 for p in batch for status in (403, 200)}


@pytest.mark.parametrize("reason", ["ExpiredProviderToken", "InvalidProviderToken"])
def test_apns_retries_what_apple_refuses_for_its_token_but_makes_no_more_tokens_than_apple_allows(
        gateways, settings, caplog, reason):
    [refused] = pushes(apns_token, 1)
    gateways.apns.behaviour[refused.token] = reason
    clock = Clock()

    async def script(sender):
        sender.clock = clock
        outcomes = await sender.send([refused])  # refused; a new token, refused too
        clock.now += 1199
        outcomes += await sender.send([refused])  # refused; no new token within 20 minutes
        clock.now += 1
        outcomes += await sender.send([refused])  # refused; 20 minutes on, a new token, refused too
        gateways.apns.behaviour.clear()  # Apple takes the token again
        return outcomes + await sender.send([refused])

    with caplog.at_level(logging.WARNING, logger="providers.push.apns"):
        outcomes = run(APNs, settings, script)
    said = f"APNs answered 403 {reason} to a provider token made anew after a refusal; another may be made in"
    assert outcomes[:3] == [Outcome("retry", reason=f"{said} {wait_s} s, Apple allows one in 20 minutes")
                            for wait_s in (1200, 1, 1200)]
    assert outcomes[3].status == "sent"
    assert [r.status for r in gateways.apns.received] == [403] * 5 + [200]
    assert len(gateways.apns.provider_tokens) == 3
    assert [r.getMessage() for r in caplog.records].count(
        "APNs refused its provider token: making a new one, and no other for 20 minutes if Apple refuses that "
        "too.") == 2
    assert not [r for r in caplog.records if refused.token in r.getMessage()]


@pytest.mark.parametrize("reason, status", [
    ("Unregistered", "gone"), ("ExpiredToken", "gone"), ("BadDeviceToken", "gone"), ("DeviceTokenNotForTopic", "gone"),
    ("TooManyRequests", "retry"), ("InternalServerError", "retry"), ("ServiceUnavailable", "retry"),
    ("PayloadTooLarge", "failed"), ("BadTopic", "failed"), ("MissingTopic", "failed"), ("BadCollapseId", "failed"),
])
def test_apns_answers_are_classified(gateways, settings, reason, status):
    fine, scripted = pushes(apns_token, 2)
    gateways.apns.behaviour[scripted.token] = reason
    code = {"Unregistered": 410, "ExpiredToken": 410, "TooManyRequests": 429, "InternalServerError": 500,
            "ServiceUnavailable": 503, "PayloadTooLarge": 413}.get(reason, 400)
    outcomes = send(APNs, settings, [fine, scripted])
    assert [outcomes[0].status, outcomes[1]] == ["sent", Outcome(status, reason=f"APNs answered {code} {reason}")]


def test_a_malformed_apns_token_is_gone_and_stays_in_its_path_segment(gateways, settings):
    outcomes = send(APNs, settings, [Push("not/hex", NOTE)])
    assert outcomes == [Outcome("gone", reason="APNs answered 400 BadDeviceToken")]
    assert gateways.apns.received[0].path == "/3/device/not%2Fhex"


@pytest.mark.parametrize("status, retry_after, expected", [(429, 30, 30.0), (503, 86400, 300.0)])
def test_apns_retries_after_what_retry_after_says(gateways, settings, status, retry_after, expected):
    gateways.apns.fail_next(1, status, retry_after)
    [outcome] = send(APNs, settings, pushes(apns_token, 1))
    assert (outcome.status, outcome.retry_after) == ("retry", expected)


@pytest.mark.parametrize("collapse_id", ["m" * 65, "über-1"])
def test_a_collapse_id_apple_would_refuse_goes_as_its_digest(gateways, settings, collapse_id):
    note = Notification(title="Ana", body="hi", collapse_id=collapse_id)
    assert [o.status for o in send(APNs, settings, pushes(apns_token, 1, note))] == ["sent"]
    assert gateways.apns.received[0].headers["apns-collapse-id"] == hashlib.sha256(collapse_id.encode()).hexdigest()


# Expo --------------------------------------------------------------------------------------------------

def test_expo_sends_250_pushes_as_requests_of_100_and_keeps_their_order(gateways, settings):
    batch = pushes(expo_token, 250)
    outcomes = send(Expo, settings, batch)
    requests = gateways.expo.received
    assert sorted(len(r.body) for r in requests) == [50, 100, 100]
    tickets = {token: ticket["id"] for r in requests for token, ticket in zip(r.tokens, r.answer()["data"])}
    assert outcomes == [Outcome("sent", ref=tickets[p.token]) for p in batch]


def test_expo_messages_and_headers(gateways, settings):
    [sent] = pushes(expo_token, 1)
    send(Expo, settings, [sent])
    [request] = gateways.expo.received
    assert request.path == "/--/api/v2/push/send"
    assert (request.headers["accept"], request.headers["accept-encoding"], request.headers["content-type"]) \
        == ("application/json", "gzip, deflate", "application/json")
    assert "authorization" not in request.headers
    assert request.body == [{"to": sent.token, "title": "Ana in #general", "body": "Lunch at noon?",
                             "sound": "default", "priority": "high", "tag": "c1", "collapseId": "m1",
                             "data": {"workspace": "w1", "channel": "c1", "message": "m1", "thread": "c1"}}]


def test_expo_sends_its_access_token_when_set(gateways, settings, monkeypatch):
    monkeypatch.setattr(gateways.expo, "access_token", "expo-secret-1")
    right = msgspec.structs.replace(settings, expo_access_token="expo-secret-1")
    wrong = msgspec.structs.replace(settings, expo_access_token="expo-secret-2")
    assert [o.status for o in send(Expo, right, pushes(expo_token, 2))] == ["sent", "sent"]
    assert gateways.expo.received[0].headers["authorization"] == "Bearer expo-secret-1"
    assert send(Expo, wrong, pushes(expo_token, 1)) == [
        Outcome("failed", reason="Expo answered 401 UNAUTHORIZED: The bearer token is invalid.")]


@pytest.mark.parametrize("error, status, said", [
    ("DeviceNotRegistered", "gone", '"<token>" is not a registered push notification recipient'),
    ("MessageRateExceeded", "retry", "The app is sending messages to this device too quickly."),
    ("MessageTooBig", "failed", "Message too big. The notification payload exceeds the maximum size of 4096 bytes."),
    ("InvalidCredentials", "failed", "Unable to retrieve the FCM server key for the recipient's app. Make sure you "
                                     "have provided a server key as directed by the Expo FCM documentation."),
    ("MismatchSenderId", "failed", "The FCM sender id of this app does not match the one the device token was "
                                   "made for."),
])
def test_expo_tickets_are_classified(gateways, settings, error, status, said):
    fine, scripted = pushes(expo_token, 2)
    gateways.expo.behaviour[scripted.token] = error
    outcomes = send(Expo, settings, [fine, scripted])
    assert [outcomes[0].status, outcomes[1]] == [
        "sent", Outcome(status, reason=f"Expo refused a notification: {error}: {said}")]


@pytest.mark.parametrize("status, retry_after, expected", [
    (429, 5, Outcome("retry", reason="Expo answered 429 TOO_MANY_REQUESTS: Rate limit exceeded: 600 requests per "
                                     "second.", retry_after=5.0)),
    (503, None, Outcome("retry", reason="Expo answered 503 SERVICE_UNAVAILABLE: The service is unavailable.")),
    (400, None, Outcome("failed", reason='Expo answered 400 VALIDATION_ERROR: "value" must be an array.')),
])
def test_an_expo_request_refused_as_a_whole_is_every_pushs_outcome(gateways, settings, status, retry_after,
                                                                  expected):
    gateways.expo.fail_next(1, status, retry_after)
    assert send(Expo, settings, pushes(expo_token, 3)) == [expected] * 3


def test_expo_tickets_that_do_not_match_the_messages_fail(gateways, settings):
    gateways.expo.missing_tickets = 1
    assert send(Expo, settings, pushes(expo_token, 3)) == [
        Outcome("failed", reason="Expo answered 2 tickets for 3 notifications")] * 3


def test_expo_receipts_say_what_became_of_each_ticket_that_is_ready(gateways, settings):
    ok, unregistered, pending, throttled = batch = pushes(expo_token, 4)
    gateways.expo.receipt_behaviour.update({unregistered.token: "DeviceNotRegistered", pending.token: "pending",
                                            throttled.token: "MessageRateExceeded"})

    async def script(sender):
        refs = [o.ref for o in await sender.send(batch)]
        return refs, await sender.receipts(refs)

    refs, receipts = run(Expo, settings, script)
    assert receipts == {
        refs[0]: Outcome("sent", ref=refs[0]),
        refs[1]: Outcome("gone", reason=f"Expo's receipt {refs[1]} says it was not delivered: DeviceNotRegistered: "
                                        '"<token>" is not a registered push notification recipient'),
        refs[3]: Outcome("retry", reason=f"Expo's receipt {refs[3]} says it was not delivered: MessageRateExceeded: "
                                         "The app is sending messages to this device too quickly."),
    }
    assert gateways.expo.receipt_requests[0].body == {"ids": refs}


def test_expo_receipts_are_asked_for_1000_at_a_time(gateways, settings):
    refs = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(2500)]
    assert run(Expo, settings, lambda sender: sender.receipts(refs)) == {}
    assert sorted(len(r.body["ids"]) for r in gateways.expo.receipt_requests) == [500, 1000, 1000]


def test_expo_receipts_that_cannot_be_read_are_asked_for_later(gateways, settings, caplog):
    gateways.expo.fail_receipts_next(1, 503)
    with caplog.at_level(logging.WARNING, logger="providers.push.expo"):
        assert run(Expo, settings, lambda sender: sender.receipts(["a", "b"])) == {}
    assert [r.getMessage() for r in caplog.records if r.name == "providers.push.expo"] == [
        "Expo's receipts of 2 tickets could not be read (Expo answered 503 SERVICE_UNAVAILABLE: The service is "
        "unavailable.); asking again later."]


# Every gateway -----------------------------------------------------------------------------------------

SENDERS = {"fcm": (FCM, fcm_token), "apns": (APNs, apns_token), "expo": (Expo, expo_token)}


@pytest.mark.parametrize("name, count, limit", [("fcm", 40, 4), ("apns", 40, 4), ("expo", 1000, 3)])
def test_requests_in_flight_never_exceed_the_concurrency(gateways, settings, name, count, limit):
    sender_class, make_token = SENDERS[name]
    fake = getattr(gateways, name)
    fake.delay_s = 0.05
    narrow = msgspec.structs.replace(settings, concurrency=limit)
    assert Counter(o.status for o in send(sender_class, narrow, pushes(make_token, count))) == {"sent": count}
    assert fake.max_in_flight == limit


@pytest.mark.parametrize("name, label", [("fcm", "FCM"), ("apns", "APNs")])
def test_a_stalled_device_times_out_alone(gateways, settings, name, label):
    sender_class, make_token = SENDERS[name]
    fake = getattr(gateways, name)
    stalled, *others = batch = pushes(make_token, 21)
    fake.behaviour[stalled.token] = "stall"
    fake.stall_s = 5
    impatient = msgspec.structs.replace(settings, timeout_s=0.5)
    started = time.monotonic()
    outcomes = send(sender_class, impatient, batch)
    assert time.monotonic() - started < 2
    assert outcomes[0] == Outcome("retry", reason=f"{label} timed out after 0.5 s")
    assert [o.status for o in outcomes[1:]] == ["sent"] * 20
    answered = [r.answered for r in fake.received if r.token != stalled.token]
    assert len(answered) == 20 and max(answered) - started < 0.5  # none of them waited for it


@pytest.mark.parametrize("name", ["fcm", "apns"])
def test_a_stalled_device_times_out_while_other_answers_keep_the_connection_busy(gateways, settings, name):
    sender_class, make_token = SENDERS[name]
    fake = getattr(gateways, name)
    [stalled] = pushes(make_token, 1)
    fake.behaviour[stalled.token] = "stall"
    # 600 others, 4 at a time: 3 s of answers at least. The deadline is 1 s, not less: on a loaded CI machine
    # a sender and its gateway in one process can take longer than half a second over a neighbour's request.
    fake.stall_s, fake.delay_s = 8, 0.02

    async def script(sender):
        started = time.monotonic()

        async def alone():
            outcome = await sender.send([stalled])
            return outcome, time.monotonic() - started

        (outcome, waited), others = await asyncio.gather(alone(), sender.send(pushes(make_token, 600)))
        return outcome, waited, others

    outcome, waited, others = run(sender_class, msgspec.structs.replace(settings, timeout_s=1.0, concurrency=5),
                                  script)
    assert [o.status for o in outcome] == ["retry"] and Counter(o.status for o in others) == {"sent": 600}
    assert waited < 2.0  # its own 1 s, not until the connection falls quiet


def test_a_stalled_expo_request_holds_only_its_own_pushes(gateways, settings):
    batch = pushes(expo_token, 150)
    gateways.expo.behaviour[batch[7].token] = "stall"
    gateways.expo.stall_s = 5
    outcomes = send(Expo, msgspec.structs.replace(settings, timeout_s=0.5), batch)
    assert outcomes[:100] == [Outcome("retry", reason="Expo timed out after 0.5 s")] * 100
    assert [o.status for o in outcomes[100:]] == ["sent"] * 50


@pytest.mark.parametrize("name, status, body, expected", [
    ("fcm", 200, b"[]", Outcome("sent")),
    ("fcm", 400, b'{"error": {"status": "INVALID_ARGUMENT", "details": [{"@type": '
                 b'"type.googleapis.com/google.rpc.BadRequest", "fieldViolations": 5}, 7]}}',
     Outcome("failed", reason="FCM answered 400 INVALID_ARGUMENT: Bad Request")),
    ("fcm", 502, b"<html>Bad Gateway</html>", Outcome("retry", reason="FCM answered 502: Bad Gateway")),
    ("apns", 400, b'"BadDeviceToken"', Outcome("failed", reason="APNs answered 400 Bad Request")),
    ("apns", 410, b"", Outcome("gone", reason="APNs answered 410 Gone")),
    ("expo", 200, b"not json", Outcome("failed", reason="Expo answered 200 without a list of tickets")),
    ("expo", 200, b'{"data": [{"status": "error", "details": {"error": ["DeviceNotRegistered"]}}]}',
     Outcome("failed", reason="Expo refused a notification: an error: no message")),
    ("expo", 400, b'{"errors": "none"}', Outcome("failed", reason="Expo answered 400 Bad Request: no message")),
])
def test_a_malformed_answer_is_an_outcome_not_an_exception(gateways, settings, name, status, body, expected):
    sender_class, make_token = SENDERS[name]
    getattr(gateways, name).answer_next(1, status, body, {"content-type": "application/json"})
    assert send(sender_class, settings, pushes(make_token, 1)) == [expected]


@pytest.mark.parametrize("name, label", [("fcm", "FCM"), ("apns", "APNs"), ("expo", "Expo")])
def test_an_answer_a_sender_cannot_read_is_a_retry_of_its_own_pushes_only(gateways, settings, caplog, name, label):
    sender_class, make_token = SENDERS[name]
    fake = getattr(gateways, name)
    fake.answer_next(1, 400 if name != "expo" else 200, b"[" * 100_000, {"content-type": "application/json"})
    # One request at a time: the first takes the scripted answer (Expo: its first 100 pushes).
    batch = pushes(make_token, 101 if name == "expo" else 3)
    with caplog.at_level(logging.ERROR, logger="providers.push"):
        outcomes = send(sender_class, msgspec.structs.replace(settings, concurrency=1), batch)
    unreadable = Outcome("retry", reason=f"{label} failed unexpectedly (RecursionError)")
    first = 100 if name == "expo" else 1
    assert outcomes == [unreadable] * first + [o for o in outcomes[first:] if o.status == "sent"]
    [line] = [r.getMessage() for r in caplog.records if r.name.startswith("providers.push")]
    what = "100 notifications" if name == "expo" else "a notification"
    assert line.startswith(f"{label}: {what} met an unexpected RecursionError (maximum recursion depth exceeded")
    assert "json/decoder.py:" in line and f"push/{name}.py:" in line  # where it was raised, on one line
    assert "\n" not in line and not [p.token for p in batch if p.token in line]


def test_the_fake_expo_refuses_fields_expo_does_not_document(gateways):
    token = expo_token()
    answer = httpx.post(gateways.expo.url + "/--/api/v2/push/send", verify=gateways.ca.ssl_context(),
                        json=[{"to": token, "title": "Ana", "threadId": "c1"}])
    assert (answer.status_code, answer.json()) == (400, {"errors": [
        {"code": "VALIDATION_ERROR", "message": '"[0].threadId" is not allowed'}]})


def test_no_token_reaches_a_log_line_or_a_reason(gateways, settings, caplog):
    kinds = {"fcm": ["unregistered", "invalid-token", "invalid-argument", "unavailable", "stall"],
             "apns": ["Unregistered", "BadDeviceToken", "PayloadTooLarge", "ServiceUnavailable", "stall"],
             "expo": ["DeviceNotRegistered", "MessageTooBig", "MessageRateExceeded"]}
    secret = "expo-secret-3"
    tokens, outcomes = [], []
    quick = msgspec.structs.replace(settings, timeout_s=0.5, expo_access_token=secret)
    with caplog.at_level(logging.DEBUG, logger="providers.push"), caplog.at_level(logging.INFO):
        for name, behaviours in kinds.items():
            sender_class, make_token = SENDERS[name]
            fake = getattr(gateways, name)
            batch = pushes(make_token, len(behaviours) + 1)
            fake.behaviour.update({p.token: kind for p, kind in zip(batch, behaviours)})
            fake.stall_s = 2
            tokens += [p.token for p in batch]
            outcomes += send(sender_class, quick, batch)
    credentials = [t.access_token for t in gateways.fcm.token_requests] + [secret]
    assert Counter(o.status for o in outcomes) == {"sent": 3, "gone": 5, "failed": 3, "retry": 5}
    said = [r.getMessage() for r in caplog.records] + [o.reason for o in outcomes if o.reason]
    assert len([r for r in caplog.records if r.name.startswith("providers.push")]) == 13
    assert [(t, line) for t in tokens + credentials for line in said if t in line] == []


# The HTTP/2 client, against the bare server (tests/gateways.py), which says GOAWAY and drops on cue -------

@pytest.fixture(scope="module")
def bare_apns(gateways):
    with FakeAPNs(gateways.ca, server="h2") as fake:
        yield fake


@pytest.fixture
def bare(bare_apns, gateways) -> tuple[FakeAPNs, config.Push]:
    """FakeAPNs on the bare server, and [push] pointed at it (concurrency 8, 2 s timeout)."""
    bare_apns.reset()
    environ = {**gateways.env(), **bare_apns.env()}
    return bare_apns, msgspec.structs.replace(config.load(environ=environ).push, concurrency=8, timeout_s=2.0)


def connections(fake) -> list[str]:
    """The connections the fake's send requests came on, in the order they first did."""
    return list(dict.fromkeys(r.peer for r in fake.received))


def test_a_gateway_allowing_fewer_streams_than_the_concurrency_gets_no_more_and_every_push_goes(bare):
    fake, settings = bare
    fake.max_streams, fake.delay_s = 3, 0.05  # the bare server fails the connection on a 4th stream
    outcomes = send(APNs, settings, pushes(apns_token, 40))
    assert Counter(o.status for o in outcomes) == {"sent": 40}
    assert fake.max_in_flight == 3 and len(connections(fake)) == 1


def test_a_goaway_mid_burst_fails_only_the_streams_the_gateway_did_not_take(bare):
    fake, settings = bare
    fake.delay_s = 0.05
    # The first 8 requests leave in one write; the gateway takes 4 of them, answers those, and leaves
    # the 4 that came after on that connection.
    fake.goaway_after(4)
    outcomes = send(APNs, settings, pushes(apns_token, 60))
    assert [o for o in outcomes if o.status != "sent"] == [Outcome("retry", reason="APNs is unreachable (GoAway)")] * 4
    first, second = connections(fake)
    on_first = [r for r in fake.received if r.peer == first]
    assert len(on_first) == 4 and {r.status for r in on_first} == {200}  # answered after the GOAWAY
    assert len(fake.received) == 56  # the other 52 went on a new connection


def test_a_connection_dropped_mid_burst_fails_the_requests_on_it_and_the_rest_reconnect(bare):
    fake, settings = bare
    fake.delay_s = 0.05
    fake.drop_after(20)
    outcomes = send(APNs, settings, pushes(apns_token, 60))
    retried = [o for o in outcomes if o.status != "sent"]
    assert 1 <= len(retried) <= 8  # what was in flight on it: the 20th at least
    assert set(retried) == {Outcome("retry", reason="APNs is unreachable (ConnectionLost)")}
    assert len(connections(fake)) == 2
    assert Counter(o.status for o in outcomes)["sent"] == 60 - len(retried)


def test_a_timed_out_request_resets_its_own_stream_only(bare):
    fake, settings = bare
    stalled, *others = batch = pushes(apns_token, 9)
    fake.behaviour[stalled.token] = "stall"
    fake.delay_s, fake.stall_s = 0.05, 10

    async def script(sender):
        outcomes = await sender.send(batch)
        await asyncio.sleep(0.2)
        in_flight = fake.in_flight  # the gateway let go of the stalled one: its stream was reset
        return outcomes + await sender.send(pushes(apns_token, 4)), in_flight

    outcomes, in_flight = run(APNs, msgspec.structs.replace(settings, timeout_s=0.5), script)
    assert outcomes[0] == Outcome("retry", reason="APNs timed out after 0.5 s")
    assert [o.status for o in outcomes[1:]] == ["sent"] * 12
    assert in_flight == 0 and len(connections(fake)) == 1  # and the connection went on


def test_bodies_bigger_than_the_windows_go_and_come_in_full(bare):
    fake, settings = bare
    big = Notification(title="Ana", body="ü" * 100_000)  # 200 KB: 3 stream windows, all 5 the connection's 16
    refused = send(APNs, settings, pushes(apns_token, 5, big))
    assert refused == [Outcome("failed", reason="APNs answered 413 PayloadTooLarge")] * 5
    assert [r.body["aps"]["alert"]["body"] for r in fake.received] == [big.body] * 5
    fake.reset()
    fake.answer_next(5, 200, b"x" * 1_000_000, {"apns-id": "4d9a5b2e-0c1f-4e7a-9b3d-2f6c8e1a7b50"})
    assert send(APNs, settings, pushes(apns_token, 5)) == [
        Outcome("sent", ref="4d9a5b2e-0c1f-4e7a-9b3d-2f6c8e1a7b50")] * 5


def test_an_http_url_gets_prior_knowledge_h2c(gateways):
    with FakeAPNs(gateways.ca, server="h2", tls=False) as fake:
        settings = config.load(environ={**gateways.env(), **fake.env()}).push
        assert [o.status for o in send(APNs, settings, pushes(apns_token, 3))] == ["sent"] * 3
        assert fake.url.startswith("http://") and {r.http_version for r in fake.received} == {"2"}


def test_an_idle_connection_is_closed_and_the_next_request_makes_another(bare):
    fake, _ = bare

    async def script():
        client = Client(fake.url, max_in_flight=4, idle_s=0.2, connect_timeout_s=2)
        try:
            first = await client.request("POST", "/3/device/" + apns_token(), [], b"{}")
            await asyncio.sleep(0.5)
            return first, await client.request("POST", "/3/device/" + apns_token(), [], b"{}")
        finally:
            await client.aclose()

    answers = asyncio.run(script())
    assert [a.status for a in answers] == [403, 403]  # no provider token: Apple's MissingProviderToken
    assert len(connections(fake)) == 2


def test_a_gateway_that_is_not_there_is_a_retry(settings):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{unused.getsockname()[1]}"
    nowhere = msgspec.structs.replace(settings, apns_url=url)
    assert send(APNs, nowhere, pushes(apns_token, 2)) == [
        Outcome("retry", reason="APNs is unreachable (ConnectError)")] * 2

    async def direct():
        client = Client(url, max_in_flight=1, idle_s=1, connect_timeout_s=1)
        with pytest.raises(ConnectError):
            await client.request("POST", "/", [], b"")

    asyncio.run(direct())


# disabled() ---------------------------------------------------------------------------------------------

def test_every_gateway_is_on_when_configured(gateways, settings):
    assert push.disabled(settings) == {"fcm": None, "apns": None, "expo": None}

    async def build():
        senders = push.build(settings)
        for sender in senders.values():
            await sender.aclose()
        return {name: type(sender) for name, sender in senders.items()}

    assert asyncio.run(build()) == {"fcm": FCM, "apns": APNs, "expo": Expo}


def test_disabled_reads_a_key_file_again_only_once_it_changed(settings, tmp_path):
    key = tmp_path / "AuthKey.p8"
    real = Path(settings.apns_key_file).read_bytes()
    key.write_bytes(real)
    moved = msgspec.structs.replace(settings, apns_key_file=str(key))
    assert push.disabled(moved)["apns"] is None
    stamp = key.stat()
    # Spoilt in place, its size and mtime kept: what the last read found stands (it is not parsed again).
    key.write_bytes(b"x" * len(real))
    os.utime(key, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert push.disabled(moved)["apns"] is None
    os.utime(key, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000))  # changed, as an edit would
    assert push.disabled(moved)["apns"] == (f"APNs is off: {key} is not an APNs signing key (a PKCS#8 EC P-256 "
                                            ".p8 file).")
    key.write_bytes(real)  # put right later: on again
    os.utime(key, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 2_000_000))
    assert push.disabled(moved) == {"fcm": None, "apns": None, "expo": None}
    key.unlink()
    assert push.disabled(moved)["apns"].startswith(f"APNs is off: [push] apns_key_file {key} cannot be read")


def test_fcm_says_why_it_is_off(settings, tmp_path):
    def reason(contents=None, **changes):
        if contents is not None:
            (tmp_path / "key.json").write_text(contents)
            changes.setdefault("fcm_service_account_file", str(tmp_path / "key.json"))
        return FCM.disabled(msgspec.structs.replace(settings, **changes))

    account = json.loads(Path(settings.fcm_service_account_file).read_text())
    path = tmp_path / "key.json"
    assert reason(fcm_service_account_file="") == "FCM is off: [push] fcm_service_account_file is not set."
    assert reason(fcm_service_account_file=str(tmp_path / "none.json")) == (
        f"FCM is off: [push] fcm_service_account_file {tmp_path / 'none.json'} cannot be read (No such file or "
        "directory).")
    assert reason("{not json") == f"FCM is off: {path} is not JSON."
    assert reason(json.dumps(account | {"client_email": ""})) == (
        f"FCM is off: {path} is not a service account key: it has no client_email.")
    assert reason(json.dumps(account | {"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"})) == (
        f"FCM is off: the private_key in {path} is not a PEM RSA key.")
    assert reason(json.dumps(account | {"token_uri": ""}), fcm_token_url="") == (
        f"FCM is off: {path} has no token_uri and [push] fcm_token_url is not set.")
    assert reason(fcm_url="") == "FCM is off: [push] fcm_url is not an https:// URL."
    assert reason(json.dumps(account | {"token_uri": ""}), fcm_token_url="https://oauth2.example/token") is None


def test_apns_says_why_it_is_off(settings, tmp_path):
    def reason(**changes):
        return APNs.disabled(msgspec.structs.replace(settings, **changes))

    for setting in ("apns_key_file", "apns_key_id", "apns_team_id", "apns_topic"):
        assert reason(**{setting: ""}) == f"APNs is off: [push] {setting} is not set."
    assert reason(apns_key_file=str(tmp_path / "none.p8")) == (
        f"APNs is off: [push] apns_key_file {tmp_path / 'none.p8'} cannot be read (No such file or directory).")
    (tmp_path / "rsa.p8").write_text(json.loads(Path(settings.fcm_service_account_file).read_text())["private_key"])
    assert reason(apns_key_file=str(tmp_path / "rsa.p8")) == (
        f"APNs is off: {tmp_path / 'rsa.p8'} is not an APNs signing key (a PKCS#8 EC P-256 .p8 file).")
    assert reason() is None


def test_expo_says_why_it_is_off(settings):
    assert Expo.disabled(msgspec.structs.replace(settings, expo_url="")) == "Expo is off: [push] expo_url is empty."
    assert Expo.disabled(settings) is None
