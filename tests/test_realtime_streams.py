"""The publishing half of realtime events (actors/realtime.py): what the workers append to each reader's
stream in Redis and announce on the notify channel, through a stack of its own with a local translation
engine. The clients' half (WebSocket, SSE, resume) is tests/test_realtime.py.

A reader counts as connected when its user id has a recent score in `rt:active`, which the API
processes keep; here the test sets it, as a connected client's process would.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
from ulid import ULID

from domain.realtime import Keys
from tests import translating
from tests.api import Account
from tests.rosetta import AppUser
from tests.stack import bound_models, run_python, wait_for


@pytest.fixture(scope="module")
def tstack(libre_engine):
    stack = translating.translating_stack("libretranslate", libre_engine.url, SECTOR_REALTIME_REPLAY_MAX_EVENTS="50")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def r(tstack) -> redis.Redis:
    return redis.Redis.from_url(tstack.settings.redis_url)


@pytest.fixture(scope="module")
def keys(tstack) -> Keys:
    return Keys(tstack.settings.redis.namespace)


@pytest.fixture(scope="module")
def db(tstack):
    yield from bound_models(tstack)


@pytest.fixture(scope="module")
def url(tstack) -> str:
    return translating.rosetta_url(tstack)


def connect(r: redis.Redis, keys: Keys, *users: AppUser) -> None:
    r.zadd(keys.active, {str(user.id): int(time.time() * 1000) for user in users})


def events(r: redis.Redis, keys: Keys, user: AppUser) -> list[tuple[int, dict]]:
    return [(int(entry_id.decode().split("-")[0]), json.loads(fields[b"e"]))
            for entry_id, fields in r.xrange(keys.stream(user.id))]


def team(url: str):
    owner, ja, away = (AppUser(url, preferred_language=language) for language in ("en", "ja", "th"))
    ws = owner.api.post("/workspaces", json={"name": "Realtime", "visibility": "public"}).json()["data"]["id"]
    for user in (ja, away):
        assert user.api.post(f"/workspaces/{ws}/join").status_code == 201
    channel = owner.api.post(f"/workspaces/{ws}/channels", json={"name": "general"}).json()["data"]["id"]
    return owner, ja, away, f"/workspaces/{ws}/channels/{channel}/messages"


def test_a_message_reaches_the_streams_of_its_connected_readers_once_each_in_order(url, r, keys):
    owner, ja, away, messages = team(url)
    connect(r, keys, owner, ja)
    listener = r.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(keys.notify)
    posted = [owner.api.post(messages, json={"content": f"hello {n}", "skip_translation": True}).json()["data"]
              for n in range(3)]
    assert wait_for(lambda: len(events(r, keys, ja)) == 3, timeout=15)
    time.sleep(1)  # the messages actors' publish of the same follow-ups has run by now: nothing is added
    for reader in (owner, ja):
        got = events(r, keys, reader)
        assert [seq for seq, _ in got] == [1, 2, 3]
        assert [e["type"] for _, e in got] == ["message.created"] * 3
        assert [e["data"]["body"] for _, e in got] == ["hello 0", "hello 1", "hello 2"]
    first = events(r, keys, ja)[0][1]
    assert first["id"].startswith("message.created:") and first["data"]["author"]["id"] == owner.id
    assert first["data"]["version"] == 1 and first["data"]["direct"] is False and isinstance(first["ts"], int)
    assert r.exists(keys.stream(away.id)) == 0, "a reader not connected (nor lately) gets nothing written"
    assert r.get(keys.epoch(ja.id)) is not None
    heard, quiet_until = [], time.monotonic() + 1
    while time.monotonic() < quiet_until:  # whatever was published, until a second passes without any
        if (message := listener.get_message(timeout=0.2)) is not None:
            heard.append(json.loads(message["data"]))
            quiet_until = time.monotonic() + 1
    assert [sum(1 for n in heard if [ja.id, seq] in n["to"]) for seq in (1, 2, 3)] == [1, 1, 1]
    notice = next(n for n in heard if [ja.id, 1] in n["to"])
    assert sorted(notice["to"]) == sorted([[owner.id, 1], [ja.id, 1]]) and notice["event"] == first
    listener.close()

    # An edit and a deletion follow in the same stream.
    edit = owner.api.patch(f"{messages}/{posted[0]['id']}", json={"content": "hello again"})
    assert edit.status_code == 200
    # Its actor publishes after it answered: a commit right after the answer may take the next seq first.
    assert wait_for(lambda: len(events(r, keys, ja)) >= 4, timeout=15)
    assert owner.api.delete(f"{messages}/{posted[1]['id']}").status_code == 204
    assert wait_for(lambda: len(events(r, keys, ja)) >= 5, timeout=15)
    kinds = [(e["type"], e["data"].get("body")) for _, e in events(r, keys, ja)[3:]]
    assert kinds[0] == ("message.updated", "hello again") and kinds[1][0] == "message.deleted"


def test_each_reader_gets_the_translation_into_its_own_language_only(url, r, keys):
    owner, ja, away, messages = team(url)
    connect(r, keys, owner, ja, away)
    owner.api.post(messages, json={"content": "Good morning"})
    translated = lambda user: [e for _, e in events(r, keys, user)  # noqa: E731
                               if e["type"] == "message.translation.completed"]
    assert wait_for(lambda: translated(ja) and translated(away), timeout=20)
    time.sleep(0.5)
    assert [(e["data"]["language"], e["data"]["display_content"]) for e in translated(ja)] == [
        ("ja", "[ja] GOOD MORNING")]
    assert [e["data"]["language"] for e in translated(away)] == ["th"]
    assert translated(owner) == [], "the author reads the original"


def test_a_lost_epoch_starts_a_fresh_stream_and_the_cap_holds(url, r, keys):
    owner, ja, _, messages = team(url)
    connect(r, keys, ja)
    owner.api.post(messages, json={"content": "one", "skip_translation": True})
    assert wait_for(lambda: len(events(r, keys, ja)) == 1, timeout=15)
    before = r.get(keys.epoch(ja.id))
    r.delete(keys.epoch(ja.id))  # lost (an eviction, a FLUSHALL): what the stream holds can no longer be trusted
    owner.api.post(messages, json={"content": "two", "skip_translation": True})
    assert wait_for(lambda: [e["data"]["body"] for _, e in events(r, keys, ja)] == ["two"], timeout=15)
    assert events(r, keys, ja)[0][0] == 1 and r.get(keys.epoch(ja.id)) not in (None, before)
    for n in range(120):
        owner.api.post(messages, json={"content": f"n{n}", "skip_translation": True, }, headers={
            "Prefer": "respond-async"})
    assert wait_for(lambda: events(r, keys, ja)[-1][0] == 121, timeout=30)
    kept = events(r, keys, ja)
    assert 50 <= len(kept) < 121, "the stream is capped near [realtime] replay_max_events"
    assert [seq for seq, _ in kept] == list(range(kept[0][0], 122))
    assert 0 < r.ttl(keys.stream(ja.id)) <= 1800
    # A lost counter (the stream stayed): the next seq would go backwards, so the stream starts afresh too.
    epoch = r.get(keys.epoch(ja.id))
    r.delete(keys.seq(ja.id))
    owner.api.post(messages, json={"content": "after the loss", "skip_translation": True})
    assert wait_for(lambda: [e["data"]["body"] for _, e in events(r, keys, ja)] == ["after the loss"], timeout=15)
    assert events(r, keys, ja)[0][0] == 1 and r.get(keys.epoch(ja.id)) != epoch


def test_members_channels_and_conversations_are_announced_to_who_sees_them(url, r, keys):
    owner, joiner, outsider = (AppUser(url) for _ in range(3))
    connect(r, keys, owner, joiner, outsider)
    ws = owner.api.post("/workspaces", json={"name": "Announced", "visibility": "public"}).json()["data"]["id"]
    assert joiner.api.post(f"/workspaces/{ws}/join").status_code == 201
    public = owner.api.post(f"/workspaces/{ws}/channels", json={"name": "open"}).json()["data"]["id"]
    private = owner.api.post(f"/workspaces/{ws}/channels", json={"name": "secret", "visibility": "private"}
                             ).json()["data"]["id"]
    assert owner.api.put(f"/workspaces/{ws}/members/{joiner.id}", json={"role": "admin"}).status_code == 200
    assert owner.api.delete(f"/workspaces/{ws}/channels/{public}").status_code == 204
    opened = owner.api.post("/direct-conversations", json={"participant_user_id": str(outsider.id)})
    assert opened.status_code == 201, opened.text

    def types(user):
        return [(e["type"], e["data"].get("id") or e["data"].get("user", {}).get("id")) for _, e in events(r, keys, user)]
    hex_of = lambda ulid: uuid.UUID(str(ULID.from_str(ulid.upper()).to_uuid())).hex  # noqa: E731
    conversation = hex_of(opened.json()["data"]["id"])
    assert wait_for(lambda: ("conversation.created", conversation) in types(outsider), timeout=15)
    assert types(owner) == [("membership.added", joiner.id), ("channel.created", hex_of(public)),
                            ("channel.created", hex_of(private)), ("membership.role_changed", joiner.id),
                            ("channel.deleted", hex_of(public)), ("conversation.created", conversation)]
    # The joiner was a member when each came, but the private channel was not theirs to see.
    assert types(joiner) == [("membership.added", joiner.id), ("channel.created", hex_of(public)),
                             ("membership.role_changed", joiner.id), ("channel.deleted", hex_of(public))]
    assert types(outsider) == [("conversation.created", conversation)]
    role = next(e for _, e in events(r, keys, joiner) if e["type"] == "membership.role_changed")
    assert (role["data"]["role"], role["data"]["previous_role"]) == ("admin", "member")


def test_a_pin_again_after_an_unpin_is_an_event_of_its_own(tstack, r, keys, db):
    base = f"http://127.0.0.1:{tstack.port}/v1/api"
    author, reader = Account(base), Account(base)
    channel = author.channel(author.group(members=[reader]))
    reader_id = db.User.get(db.User.uid == uuid.UUID(reader.id)).id
    r.zadd(keys.active, {str(reader_id): int(time.time() * 1000)})
    message = author.post(channel, "pin me").json()
    path = f"/group/{channel['group']}/channel/{channel['id']}/message/{message['id']}"
    for pinned in (True, False, True):
        answer = author.api.put(path, json={"pinned": pinned})
        assert answer.status_code == 201, answer.text
    updates = lambda: [json.loads(fields[b"e"]) for _, fields in r.xrange(keys.stream(reader_id))  # noqa: E731
                       if b'"message.updated"' in fields[b"e"]]
    assert wait_for(lambda: len(updates()) == 3, timeout=15), updates()
    assert [e["data"]["pinned"] for e in updates()] == [True, False, True]
    assert len({e["id"] for e in updates()}) == 3


def test_translations_whose_worker_died_before_publishing_them_are_published_from_the_outbox(
        url, r, keys, tstack, db, tmp_path):
    owner, ja, _, messages = team(url)
    connect(r, keys, ja)
    log_path = tmp_path / "crashing.log"
    tstack.kill_worker()
    tstack.start_worker(stderr=log_path.open("w"), SECTOR_TEST_CRASH_AFTER_TRANSLATION="1",
                        SECTOR_LOGGING_LEVEL="INFO")
    groups = len(tstack.settings.workers.groups.split(";"))
    assert wait_for(lambda: log_path.read_text().count("Worker process is ready for action.") >= groups, timeout=30)
    posted = owner.api.post(messages, json={"content": "Good night"}).json()["data"]
    message_id = ULID.from_str(posted["id"].upper()).to_uuid()
    stored = lambda: db.Translation.select().where(db.Translation.message == message_id).count() > 0  # noqa: E731
    assert wait_for(stored, timeout=20), "the translation was not stored"
    tstack.kill_worker()  # it died (exit 70) right after storing; its parent goes down with it
    translated = lambda: [e["data"]["display_content"] for _, e in events(r, keys, ja)  # noqa: E731
                          if e["type"] == "message.translation.completed"]
    assert translated() == []
    left = db.Outbox.select().where(db.Outbox.kind == "message_translated")
    assert [json.loads(row.arguments) for row in left] == [[{"message_id": str(message_id)}]]

    tstack.start_worker(SECTOR_WRITES_OUTBOX_RESEND_S="1")
    time.sleep(1.2)  # the row is older than outbox_resend_s now: the sweep takes it
    run_python({**tstack.env, "SECTOR_WRITES_OUTBOX_RESEND_S": "1"},
               "from actors import outbox; outbox.resend_outbox.send()")
    assert wait_for(lambda: translated() == ["[ja] GOOD NIGHT"], timeout=20), events(r, keys, ja)
    assert wait_for(lambda: left.count() == 0, timeout=10)
