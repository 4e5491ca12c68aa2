"""Push fan-out through real workers: each new message reaches every device of its other readers on FCM,
APNs and Expo (local gateways speaking their protocols, tests/gateways.py), in the reader's language
when its translation comes in time (a local LibreTranslate, tests/engines.py), once; gone tokens delete
their devices, 5xx and 429 are retried after Retry-After, other refusals are not, one stalled device
holds up no other, a sender's unexpected failure loses no push, running an actor message again (twice
at once, too) sends nothing twice, and Expo's receipts are all asked for, 1000 a call.

One stack (2 worker processes) and one set of gateways for the module; a gateway that is off gets a
stack of its own.
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
import redis
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


def test_readers_who_may_not_enter_or_are_inactive_get_nothing(team, gateways, pstack, db):
    private = chat.channel(team.alice, team.ws, unique("secret"), visibility="private")
    bob_device, bob_token = device(team.bob, "fcm")  # a member, but not of the private channel
    dave = translating.reader(pstack, "en", "Dave")
    chat.join(dave, team.ws, by=team.alice)
    dave_device, dave_token = device(dave, "fcm")
    run_python(pstack.env, "import models\nfrom config import settings\nmodels.open_database(settings().database_url)\n"
                           f"models.User.update(is_active=False).where(models.User.id == {dave.id}).execute()\n")
    public = chat.channel(team.alice, team.ws, unique("open"))
    _, carol_token = device(team.carol, "fcm")
    secret = chat.post(team.alice, team.ws, private, "for admins only")
    for_all = chat.post(team.alice, team.ws, public, "for all")
    for message in (secret, for_all):  # its deliveries are written in the transaction that sets pushed_at
        assert wait_for(lambda: db.Message.get_by_id(as_uuid(message["id"])).pushed_at is not None, timeout=30)
    planned = {(str(d.message_id), str(d.device_id))
               for message in (secret, for_all) for d in deliveries(db, message["id"])}
    assert (str(as_uuid(for_all["id"])), str(as_uuid(bob_device))) in planned
    assert {device_id for _, device_id in planned} & {str(as_uuid(dave_device))} == set()
    assert (str(as_uuid(secret["id"])), str(as_uuid(bob_device))) not in planned
    arrived(gateways.fcm, carol_token)
    (bob,) = arrived(gateways.fcm, bob_token)
    assert bob.body["message"]["notification"]["body"] == "Alice: [ja] FOR ALL"
    assert requests_for(gateways.fcm, dave_token) == []


def test_a_long_message_is_cut_to_preview_chars_and_one_of_attachments_only_names_its_first_file(team, gateways):
    author, erin, ws, channel = duo(team.stack)
    _, token = device(erin, "expo")
    long = "word  \n " * 100  # its runs of whitespace are one space each in the preview
    chat.post(author, ws, channel, long)
    files = [author.api.post("/files", files={"file": (name, secrets.token_bytes(64))}) for name in ("deck.pdf",
                                                                                                    "notes.txt")]
    assert [f.status_code for f in files] == [201, 201], [f.text for f in files]
    chat.post(author, ws, channel, "", attachment_ids=[f.json()["data"]["id"] for f in files])
    first, second = arrived(gateways.expo, token, 2)
    bodies = sorted(expo_message(r, token)["body"] for r in (first, second))
    preview_chars = team.stack.settings.push.preview_chars
    assert bodies == sorted([("Alice: " + "word " * 100)[:preview_chars - 1] + "…", "Alice: 📎 deck.pdf +1"])
    assert len(bodies[0 if bodies[0].endswith("…") else 1]) == preview_chars


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


@pytest.mark.parametrize("behaviour, code", [("invalid-argument", "INVALID_ARGUMENT"),
                                             ("not-found", "404 NOT_FOUND")])  # a 404 without UNREGISTERED
def test_other_refusals_are_not_retried_and_keep_the_device(team, gateways, db, behaviour, code):
    author, erin, ws, channel = duo(team.stack)
    device_id, token = device(erin, "fcm")
    gateways.fcm.behaviour[token] = behaviour
    message = chat.post(author, ws, channel, "refused")
    (row,) = settled(db, message["id"], 1)
    assert (row.status, row.attempts) == ("failed", 1) and code in row.error
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


def push_queue_drained(stack: Stack) -> bool:
    """Whether every message of the `push` queue, its delay queue's too, was acked (actors/queues.py)."""
    client = redis.Redis.from_url(stack.settings.redis_url)
    key = f"{stack.settings.redis.namespace}:dramatiq:push"
    return not any(client.hlen(f"{key}{queue}.msgs") for queue in ("", ".DQ"))


def test_running_the_actor_messages_again_sends_nothing_twice(team, gateways, pstack, db):
    author, erin, ws, channel = duo(team.stack)
    tokens = {provider: device(erin, provider)[1] for provider in TOKENS}
    message = chat.post(author, ws, channel, "once only")
    rows = settled(db, message["id"], 3)
    by_provider = {}
    for row in rows:
        by_provider.setdefault(db.Device.get_by_id(row.device_id).provider, []).append(row.id)
    assert wait_for(lambda: push_queue_drained(pstack), timeout=20)
    # Each twice at once: two worker processes race for the same claims.
    run_python(pstack.env, "import actors, json, sys\nfrom actors import push\n"
                           "args = json.load(sys.stdin)\n"
                           "for _ in range(2):\n"
                           "    push.fan_out.send([args['message']])\n"
                           "    for provider, ids in args['batches'].items():\n"
                           "        push.send_batch.send(provider, ids)\n",
               stdin=json.dumps({"message": str(as_uuid(message["id"])), "batches": by_provider}))
    assert wait_for(lambda: push_queue_drained(pstack), timeout=20), "the messages sent again did not all run"
    for provider, token in tokens.items():
        assert len(requests_for(getattr(gateways, provider), token)) == 1, provider
    assert [(d.status, d.attempts) for d in deliveries(db, message["id"])] == [("sent", 1)] * 3


def test_a_sender_meeting_the_unexpected_loses_no_push_and_sends_none_twice(team, gateways, db):
    author, erin, ws, channel = duo(team.stack)
    tokens = [device(erin, "apns")[1] for _ in range(3)]
    # An answer no parser takes (RecursionError, not a ValueError): what the sender could not foresee.
    gateways.apns.answer_next(1, 400, b"[" * 100_000, {"content-type": "application/json"})
    message = chat.post(author, ws, channel, "all of them")
    rows = settled(db, message["id"], 3)
    assert sorted((d.status, d.attempts) for d in rows) == [("sent", 1), ("sent", 1), ("sent", 2)]
    answered = [[r.status for r in requests_for(gateways.apns, token)] for token in tokens]
    assert sorted(answered) == [[200], [200], [400, 200]]


def test_expo_receipts_are_all_asked_for_in_one_run_1000_at_a_time(team, gateways, pstack, db):
    author, erin, ws, channel = duo(team.stack)
    message = chat.post(author, ws, channel, "to many")  # pushed to nobody: erin has no device yet
    assert wait_for(lambda: db.Message.get_by_id(as_uuid(message["id"])).pushed_at is not None, timeout=30)
    now = db.utcnow()
    devices = [{"id": uuid.uuid4(), "user": erin.id, "platform": "ios", "provider": "expo",
                "token_hash": secrets.token_hex(32), "token_sealed": "-", "created_at": now, "last_used_at": now}
               for _ in range(2500)]
    # Expo no longer has the receipts of the older half (its day is over) and not yet those of the rest.
    tickets = [{"message": as_uuid(message["id"]), "device": d["id"], "language": "en", "status": "sent",
                "attempts": 1, "ref": str(uuid.uuid4()), "due_at": now, "created_at": now, "receipt_at": now,
                "sent_at": now - dt.timedelta(days=2 if n % 2 else 0)} for n, d in enumerate(devices)]
    with db.db.atomic():
        for start in range(0, 2500, 500):
            db.Device.insert_many(devices[start:start + 500]).execute()
            db.PushDelivery.insert_many(tickets[start:start + 500]).execute()
    due = db.PushDelivery.select().where(db.PushDelivery.receipt_at <= db.utcnow())
    everywhere = due.count()  # earlier tests' tickets too: no scheduler runs here
    assert everywhere >= 2500
    run_python(pstack.env, "import actors\nfrom actors import push\npush.check_receipts.send()\n")
    assert wait_for(lambda: due.count() == 0, timeout=30), due.count()
    assert [len(r.body["ids"]) for r in gateways.expo.receipt_requests] == [1000, 1000, everywhere - 2000]
    gone = [row.receipt_at for row in deliveries(db, message["id"])]
    assert sum(at is None for at in gone) == 1250  # the older half: done; the rest asked again later
    db.Device.delete().where(db.Device.id.in_([d["id"] for d in devices])).execute()


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


@pytest.fixture
def without_apns(gateways):
    """A stack of its own whose APNs is off (no key file): FCM and Expo on, at the same gateways."""
    stack = Stack()
    stack.env.update({**gateways.env(), "SECTOR_PUSH_APNS_KEY_FILE": "", "SECTOR_PUSH_EXPO_RECEIPT_DELAY_S": "0"})
    stack.settings = config.load(environ=stack.env)
    stack.start()
    yield stack
    stack.stop()


def test_a_gateway_that_is_off_has_its_devices_passed_over_with_no_delivery(without_apns, gateways):
    author, erin, ws, channel = duo(without_apns)
    _, fcm = device(erin, "fcm")
    apns_id, _ = device(erin, "apns")
    message = chat.post(author, ws, channel, "only where it can go")
    arrived(gateways.fcm, fcm)
    counted = run_python(without_apns.env, "import models, sys, uuid\nfrom config import settings\n"
                                           "models.open_database(settings().database_url)\n"
                                           "message, apns = [uuid.UUID(v) for v in sys.stdin.read().split()]\n"
                                           "rows = models.PushDelivery.select().where("
                                           "models.PushDelivery.message == message)\n"
                                           "print(rows.count(), "
                                           "rows.where(models.PushDelivery.device == apns).count())\n",
                         stdin=f"{as_uuid(message['id'])} {as_uuid(apns_id)}")
    assert counted.split() == ["1", "0"]  # FCM's; none for the APNs device, which stays registered
    assert apns_id in device_ids(erin) and gateways.apns.received == []
    health = httpx.get(f"http://127.0.0.1:{without_apns.port}/v1/api/health/details", timeout=10).json()["push"]
    assert {name: gateway["enabled"] for name, gateway in health.items()} == {"fcm": True, "apns": False, "expo": True}


def test_a_batch_that_stops_before_anything_went_is_sent_by_dramatiqs_retry(without_apns, gateways):
    author, erin, ws, channel = duo(without_apns)
    _, token = device(erin, "fcm")
    # The stack's first FCM batch fetches an access token, and no parser takes this answer (RecursionError):
    # FCM's send stops before any push went out.
    gateways.fcm.answer_token_next(1, 200, b"[" * 100_000)
    chat.post(author, ws, channel, "after all")
    (sent,) = arrived(gateways.fcm, token)
    assert sent.status == 200 and [r.status for r in gateways.fcm.token_requests][:2] == [200, 200]
    time.sleep(1)
    assert len(requests_for(gateways.fcm, token)) == 1


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
