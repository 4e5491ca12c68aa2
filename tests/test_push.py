"""Push fan-out through real workers: each new message reaches every device of its other readers on FCM,
APNs and Expo (local gateways speaking their protocols, tests/gateways.py), in the reader's language
when its translation comes in time (a local LibreTranslate, tests/engines.py), once; gone tokens delete
their devices, 5xx and 429 are retried after Retry-After, other refusals are not, one stalled device
holds up no other, and running an actor message again sends nothing twice.

One stack (2 worker processes) and one set of gateways for the module.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest
from ulid import ULID

import config
from tests import chat, translating
from tests.api import unique
from tests.engines import FakeLibreTranslate
from tests.gateways import Gateways
from tests.stack import Stack, bound_models, run_python, wait_for

WAIT_MS = 4000  # [push] translation_wait_ms: room for a loaded CI machine (2 cores, two suites)
TIMEOUT_S = 1.5  # [push] timeout_s


@pytest.fixture(scope="module")
def gateways():
    with Gateways() as running:
        yield running


@pytest.fixture(scope="module")
def engine():
    fake = FakeLibreTranslate(unescape_output=True).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def pstack(gateways, engine):
    stack = Stack()
    stack.env.update({**translating.FAST, **translating.engine_settings("libretranslate", engine.url),
                      **gateways.env(), "SECTOR_WORKERS_PROCESSES": "2",
                      "SECTOR_PUSH_TRANSLATION_WAIT_MS": str(WAIT_MS), "SECTOR_PUSH_TIMEOUT_S": str(TIMEOUT_S),
                      "SECTOR_PUSH_MAX_RETRIES": "2", "SECTOR_PUSH_EXPO_RECEIPT_DELAY_S": "0",
                      "SECTOR_PUSH_BATCH_SIZE": "4"})
    stack.settings = config.load(environ=stack.env)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def db(pstack):
    """The push stack's database, opened here (and the proxy given back to whoever had it)."""
    yield from bound_models(pstack)


@pytest.fixture(autouse=True)
def fresh(gateways, engine):
    """Every test starts with gateways and an engine that have seen nothing and answer at once."""
    gateways.reset()
    engine.reset()
    engine.delay_s = 0
    yield
    engine.delay_s = 0


@pytest.fixture(scope="module")
def team(pstack, db):
    """A public workspace: Alice writes in English; Bob reads Japanese, Carol English."""
    alice = translating.reader(pstack, "en", "Alice")
    bob = translating.reader(pstack, "ja", "Bob")
    carol = translating.reader(pstack, "en", "Carol")
    ws = chat.workspace(alice, unique("Crew"), visibility="public")
    for user in (bob, carol):
        chat.join(user, ws, by=alice)
    # One translation first, so the workers have loaded what they need (the language detector's model,
    # the engine's connection) before a test counts on a translation arriving within WAIT_MS.
    warm = chat.channel(alice, ws, unique("warm-up"))
    posted = chat.post(alice, ws, warm, "Warming up")
    translating.settled(bob, f"{chat.messages_path(ws, warm)}/{posted['id']}", timeout=60)
    assert wait_for(lambda: db.Message.get_by_id(as_uuid(posted["id"])).pushed_at is not None, timeout=30)
    return SimpleNamespace(stack=pstack, alice=alice, bob=bob, carol=carol, ws=ws)


def duo(stack: Stack) -> tuple:
    """(author, reader, workspace, channel): a workspace of its own whose reader has no devices yet, so what
    the gateways see is this test's alone."""
    author, reader = translating.reader(stack, "en", "Alice"), translating.reader(stack, "en", "Erin")
    ws = chat.workspace(author, unique("Duo"))
    chat.join(reader, ws, by=author)
    return author, reader, ws, chat.channel(author, ws, "general")


def apns_token() -> str:
    return secrets.token_hex(32)


def fcm_token() -> str:
    return "f" + secrets.token_urlsafe(60)


def expo_token() -> str:
    return f"ExponentPushToken[{secrets.token_urlsafe(16)}]"


TOKENS = {"apns": apns_token, "fcm": fcm_token, "expo": expo_token}


def device(user, provider: str, token: str | None = None) -> tuple[str, str]:
    """Register a device of `provider` for `user`; (its id, its token)."""
    token = token or TOKENS[provider]()
    platform = "android" if provider == "fcm" else "ios"
    answer = user.api.post("/devices", json={"platform": platform, "provider": provider, "push_token": token})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]["id"], token


def as_uuid(ulid: str) -> uuid.UUID:
    return ULID.from_str(ulid.upper()).to_uuid()


def requests_for(gateway, token: str) -> list:
    return [r for r in gateway.received if token in r.tokens]


def expo_message(received, token: str) -> dict:
    return next(m for m in received.body if m["to"] == token)


def arrived(gateway, token: str, count: int = 1, timeout: float = 20) -> list:
    assert wait_for(lambda: len([r for r in requests_for(gateway, token) if r.status is not None]) >= count,
                    timeout=timeout, interval=0.02), f"{count} push(es) to {token[:12]}... did not arrive"
    return requests_for(gateway, token)


def deliveries(db, message_id: str) -> list:
    return list(db.PushDelivery.select().where(db.PushDelivery.message == as_uuid(message_id)))


def settled(db, message_id: str, count: int, timeout: float = 20) -> list:
    """The message's deliveries once `count` of them are neither queued nor sending."""
    def done():
        rows = deliveries(db, message_id)
        return len([d for d in rows if d.status not in ("queued", "sending")]) >= count
    assert wait_for(done, timeout=timeout, interval=0.05), [(d.status, d.attempts) for d in deliveries(db, message_id)]
    return deliveries(db, message_id)


def device_ids(user) -> set[str]:
    return {d["id"] for d in user.api.get("/me/devices", params={"per_page": 100}).json()["data"]}


def test_a_channel_message_reaches_every_other_readers_devices_once_in_their_language(team, gateways, db):
    channel = chat.channel(team.alice, team.ws, unique("general"))
    _, own = device(team.alice, "fcm")
    _, bob_fcm = device(team.bob, "fcm")
    _, bob_apns = device(team.bob, "apns")
    _, carol_expo = device(team.carol, "expo")
    message = chat.post(team.alice, team.ws, channel, "Good morning everyone")
    title = f"{team.ws['name']} · {channel['name']}"
    data = {"type": "message", "message_id": message["id"], "workspace_id": team.ws["id"],
            "channel_id": channel["id"], "sender_id": str(team.alice.id)}

    (fcm,) = arrived(gateways.fcm, bob_fcm)
    sent = fcm.body["message"]
    assert fcm.http_version == "2"
    assert sent["token"] == bob_fcm
    assert sent["notification"] == {"title": title, "body": "Alice: [ja] GOOD MORNING EVERYONE"}
    assert sent["data"] == data
    assert sent["android"] == {"notification": {"tag": f"channel:{channel['id']}"}}

    (apns,) = arrived(gateways.apns, bob_apns)
    assert apns.http_version == "2"
    assert apns.headers["apns-topic"] == gateways.apns.topic
    assert (apns.headers["apns-push-type"], apns.headers["apns-collapse-id"]) == ("alert", message["id"])
    assert apns.body["aps"]["alert"] == {"title": title, "body": "Alice: [ja] GOOD MORNING EVERYONE"}
    assert apns.body["aps"]["thread-id"] == f"channel:{channel['id']}"

    (expo,) = arrived(gateways.expo, carol_expo)
    shown = expo_message(expo, carol_expo)
    assert (shown["title"], shown["body"]) == (title, "Alice: Good morning everyone")
    assert {k: v for k, v in shown["data"].items() if k in data} == data

    rows = settled(db, message["id"], 3)
    assert sorted(d.status for d in rows) == ["sent"] * 3 and all(d.ref for d in rows)
    time.sleep(1)
    assert requests_for(gateways.fcm, own) == []
    assert [len(requests_for(g, t)) for g, t in ((gateways.fcm, bob_fcm), (gateways.apns, bob_apns),
                                                 (gateways.expo, carol_expo))] == [1, 1, 1]


def test_a_direct_message_is_titled_with_the_senders_name(team, gateways):
    conversation = team.alice.api.post("/direct-conversations", json={"participant_user_id": str(team.carol.id)})
    assert conversation.status_code in (200, 201), conversation.text
    conversation_id = conversation.json()["data"]["id"]
    _, token = device(team.carol, "apns")
    posted = team.alice.api.post(f"/direct-conversations/{conversation_id}/messages", json={"content": "lunch?"})
    assert posted.status_code == 201, posted.text
    (apns,) = arrived(gateways.apns, token)
    assert apns.body["aps"]["alert"] == {"title": "Alice", "body": "lunch?"}
    assert apns.body["aps"]["thread-id"] == f"conversation:{conversation_id}"
    assert apns.body["conversation_id"] == conversation_id and "workspace_id" not in apns.body


def test_a_translation_slower_than_the_wait_sends_the_original_on_time(team, gateways, engine):
    channel = chat.channel(team.alice, team.ws, unique("slow"))
    _, token = device(team.bob, "fcm")
    engine.delay_s = WAIT_MS / 1000 + 2
    started = time.monotonic()
    chat.post(team.alice, team.ws, channel, "Good evening everyone")
    (fcm,) = arrived(gateways.fcm, token)
    waited = fcm.time - started
    assert fcm.body["message"]["notification"]["body"] == "Alice: Good evening everyone"
    assert WAIT_MS / 1000 - 0.3 < waited < WAIT_MS / 1000 + 1.5, waited


def test_readers_who_may_not_enter_or_are_inactive_get_nothing(team, gateways, pstack):
    private = chat.channel(team.alice, team.ws, unique("secret"), visibility="private")
    _, bob_token = device(team.bob, "fcm")  # a member, but not of the private channel
    dave = translating.reader(pstack, "en", "Dave")
    chat.join(dave, team.ws, by=team.alice)
    _, dave_token = device(dave, "fcm")
    run_python(pstack.env, "import models\nfrom config import settings\nmodels.open_database(settings().database_url)\n"
                           f"models.User.update(is_active=False).where(models.User.id == {dave.id}).execute()\n")
    public = chat.channel(team.alice, team.ws, unique("open"))
    _, carol_token = device(team.carol, "fcm")
    chat.post(team.alice, team.ws, private, "for admins only")
    chat.post(team.alice, team.ws, public, "for all")
    arrived(gateways.fcm, carol_token)
    time.sleep(1)
    assert requests_for(gateways.fcm, dave_token) == []
    assert [r.body["message"]["notification"]["body"] for r in requests_for(gateways.fcm, bob_token)] \
        == ["Alice: [ja] FOR ALL"]


def test_gone_tokens_delete_their_devices_and_the_rest_stay(team, gateways, pstack, db):
    author, erin, ws, channel = duo(team.stack)
    gone = {"fcm": "unregistered", "apns": "Unregistered"}
    kept, dropped = set(), set()
    for provider, behaviour in gone.items():
        gateway = getattr(gateways, provider)
        dead_id, dead = device(erin, provider)
        gateway.behaviour[dead] = behaviour
        dropped.add(dead_id)
        kept.add(device(erin, provider)[0])
    bad_id, bad = device(erin, "apns")
    gateways.apns.behaviour[bad] = "BadDeviceToken"
    ticket_id, in_ticket = device(erin, "expo")
    gateways.expo.behaviour[in_ticket] = "DeviceNotRegistered"
    receipt_id, in_receipt = device(erin, "expo")
    gateways.expo.receipt_behaviour[in_receipt] = "DeviceNotRegistered"
    dropped |= {bad_id, ticket_id}
    message = chat.post(author, ws, channel, "anyone there?")
    settled(db, message["id"], 2)  # the two kept devices' (the gone ones' rows go with their devices)
    assert wait_for(lambda: not (device_ids(erin) & dropped), timeout=10), device_ids(erin) & dropped
    assert receipt_id in device_ids(erin)  # its ticket was fine; Expo tells later, in the receipt
    run_python(pstack.env, "import actors\nfrom actors import push\npush.check_receipts.send()\n")
    assert wait_for(lambda: receipt_id not in device_ids(erin), timeout=10)
    assert kept <= device_ids(erin)


def test_5xx_and_429_are_retried_after_retry_after_and_delivered_once(team, gateways, db):
    author, erin, ws, channel = duo(team.stack)
    _, fcm = device(erin, "fcm")
    _, expo = device(erin, "expo")
    _, apns = device(erin, "apns")
    gateways.fcm.fail_next(1, 503, retry_after=1)
    gateways.expo.fail_next(1, 429, retry_after=1)
    gateways.apns.fail_next(1, 500)
    message = chat.post(author, ws, channel, "try again")
    first, second = arrived(gateways.fcm, fcm, 2)
    assert (first.status, second.status) == (503, 200) and second.time - first.time >= 0.95
    first, second = arrived(gateways.expo, expo, 2)
    assert (first.status, second.status) == (429, 200) and second.time - first.time >= 0.95
    assert [r.status for r in arrived(gateways.apns, apns, 2)] == [500, 200]
    rows = settled(db, message["id"], 3)
    assert [(d.status, d.attempts) for d in rows] == [("sent", 2)] * 3
    time.sleep(1)
    assert (len(requests_for(gateways.fcm, fcm)), len(requests_for(gateways.expo, expo)),
            len(requests_for(gateways.apns, apns))) == (2, 2, 2)


def test_a_gateway_failing_every_try_fails_the_delivery_after_the_last(team, gateways, db):
    author, erin, ws, channel = duo(team.stack)
    _, token = device(erin, "apns")
    gateways.apns.fail_next(3, 503)
    message = chat.post(author, ws, channel, "is it down?")
    (row,) = settled(db, message["id"], 1)
    assert (row.status, row.attempts) == ("failed", 3)
    assert "503" in row.error and "after 3 tries" in row.error
    assert len(requests_for(gateways.apns, token)) == 3


def test_other_refusals_are_not_retried_and_keep_the_device(team, gateways, db):
    author, erin, ws, channel = duo(team.stack)
    device_id, token = device(erin, "fcm")
    gateways.fcm.behaviour[token] = "invalid-argument"
    message = chat.post(author, ws, channel, "refused")
    (row,) = settled(db, message["id"], 1)
    assert (row.status, row.attempts) == ("failed", 1) and "INVALID_ARGUMENT" in row.error
    assert token not in row.error
    time.sleep(1)
    assert len(requests_for(gateways.fcm, token)) == 1
    assert device_id in device_ids(erin)


def test_a_stalled_device_holds_up_no_other(team, gateways, db):
    author, erin, ws, channel = duo(team.stack)
    _, stalled = device(erin, "apns")
    others = [device(erin, "apns")[1] for _ in range(5)]  # two batches of [push] batch_size 4
    gateways.apns.behaviour[stalled] = "stall"
    started = time.monotonic()
    message = chat.post(author, ws, channel, "who is slow?")
    for token in others:
        (request,) = arrived(gateways.apns, token)
        assert request.answered - started < TIMEOUT_S, request.answered - started
    gateways.apns.behaviour.pop(stalled)  # it answers the next try
    rows = settled(db, message["id"], 6)
    assert sorted((d.status, d.attempts) for d in rows) == [("sent", 1)] * 5 + [("sent", 2)]


def test_running_the_actor_messages_again_sends_nothing_twice(team, gateways, pstack, db):
    author, erin, ws, channel = duo(team.stack)
    tokens = {provider: device(erin, provider)[1] for provider in TOKENS}
    message = chat.post(author, ws, channel, "once only")
    rows = settled(db, message["id"], 3)
    by_provider = {}
    for row in rows:
        by_provider.setdefault(db.Device.get_by_id(row.device_id).provider, []).append(row.id)
    run_python(pstack.env, "import actors, json, sys\nfrom actors import push\n"
                           "args = json.load(sys.stdin)\n"
                           "push.fan_out.send([args['message']])\n"
                           "for provider, ids in args['batches'].items():\n"
                           "    push.send_batch.send(provider, ids)\n",
               stdin=json.dumps({"message": str(as_uuid(message["id"])), "batches": by_provider}))
    time.sleep(1.5)
    for provider, token in tokens.items():
        assert len(requests_for(getattr(gateways, provider), token)) == 1, provider


def test_the_fcm_access_token_is_reused_and_renewed_when_refused(team, gateways, db):
    author, erin, ws, channel = duo(team.stack)
    tokens = [device(erin, "fcm")[1] for _ in range(3)]
    chat.post(author, ws, channel, "warm up")
    for token in tokens:
        arrived(gateways.fcm, token)
    before = len(gateways.fcm.token_requests)
    message = chat.post(author, ws, channel, "reuse")
    settled(db, message["id"], 3)
    assert len(gateways.fcm.token_requests) == before  # one access token serves every send
    gateways.fcm.expire_tokens()
    message = chat.post(author, ws, channel, "renew")
    rows = settled(db, message["id"], 3)
    assert [d.status for d in rows] == ["sent"] * 3
    assert before < len(gateways.fcm.token_requests) <= before + 2  # at most once in each worker process


def test_health_details_say_which_gateways_are_on(pstack, stack):
    on = httpx.get(f"http://127.0.0.1:{pstack.port}/v1/api/health/details", timeout=10).json()["push"]
    assert {name: gateway["enabled"] for name, gateway in on.items()} == {"fcm": True, "apns": True, "expo": True}
    off = httpx.get(f"http://127.0.0.1:{stack.port}/v1/api/health/details", timeout=10).json()["push"]
    assert {name: gateway["enabled"] for name, gateway in off.items()} == {"fcm": False, "apns": False, "expo": False}
    assert "fcm_service_account_file" in off["fcm"]["detail"] and "apns_" in off["apns"]["detail"]
    assert "expo_url" in off["expo"]["detail"]


def test_the_sweep_sends_lost_deliveries_and_fails_those_a_dead_worker_left_mid_send(team, gateways, pstack, db):
    author, erin, ws, channel = duo(team.stack)
    message = chat.post(author, ws, channel, "before any device")  # pushed to nobody: erin had no device yet
    assert wait_for(lambda: db.Message.get_by_id(as_uuid(message["id"])).pushed_at is not None, timeout=30)
    (lost_id, lost), (half_id, half) = device(erin, "fcm"), device(erin, "fcm")
    long_ago = db.utcnow() - dt.timedelta(minutes=10)
    for device_id, status in ((lost_id, "queued"), (half_id, "sending")):
        db.PushDelivery.create(message=as_uuid(message["id"]), device=as_uuid(device_id), language="en", status=status,
                               claim="dead-worker" if status == "sending" else None, attempts=int(status == "sending"),
                               due_at=long_ago, created_at=long_ago)
    run_python(pstack.env, "import actors\nfrom actors import push\npush.resend_stuck_pushes.send()\n")
    # A worker that sent nothing since the access-token test still holds the token that test expired: its
    # first request is refused (401) and sent again with a new one. One is taken.
    assert wait_for(lambda: any(r.status == 200 for r in requests_for(gateways.fcm, lost)), timeout=20)
    (request,) = [r for r in requests_for(gateways.fcm, lost) if r.status != 401]
    assert request.status == 200 and request.body["message"]["notification"]["body"] == "Alice: before any device"
    rows = {str(d.device_id): d for d in settled(db, message["id"], 2)}
    assert rows[str(as_uuid(lost_id))].status == "sent"
    half_row = rows[str(as_uuid(half_id))]
    assert half_row.status == "failed" and "never shown twice" in half_row.error
    time.sleep(1)
    assert requests_for(gateways.fcm, half) == []
