"""External temporary rooms through a stack of their own: short hours (`[rooms] hour_s`), a local
translation engine, the real worker and, where a test says so, the real scheduler.

An "hour" here is HOUR_S seconds, so rooms expire while the tests watch.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from ulid import ULID

from domain.realtime import Keys
from tests import translating
from tests.rosetta import AppUser, Browser
from tests.stack import ROOT, Stack, bound_models, wait_for

HOUR_S = 3
PUBLIC = "https://api.example.test"
GUEST = "X-Rosetta-Guest-Token"


@pytest.fixture(scope="module")
def rstack(libre_engine):
    stack = translating.translating_stack(
        "libretranslate", libre_engine.url, SECTOR_ROOMS_HOUR_S=str(HOUR_S), SECTOR_ROOMS_PURGE_AFTER_HOURS="1",
        SECTOR_ROOMS_PUBLIC_BASE_URL=PUBLIC, SECTOR_SCHEDULER_SWEEP_INTERVAL_S="1", SECTOR_SCHEDULER_LOCK_TTL_S="3")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def db(rstack):
    yield from bound_models(rstack)


@pytest.fixture(scope="module")
def url(rstack) -> str:
    return translating.rosetta_url(rstack)


def limits(stack: Stack, email: str, *flags: str) -> dict[str, tuple[int, str]]:
    """`app.py rooms limits --email <email> <flags>`: the limits it prints, by name."""
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "rooms", "limits", "--email", email, *flags],
                          env=stack.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {name: (int(value), source) for name, value, source in
            (line.split("\t") for line in done.stdout.strip().splitlines())}


class Developer:
    """A user whose token has every room ability, or only `abilities`."""

    def __init__(self, url: str, *abilities: str):
        self.user = AppUser(url, name="Dev")
        self.email = self.user.email
        minted = self.user.api.post("/me/tokens", json={"name": "rooms", "abilities": list(abilities) or [
            "temporary-rooms:create", "temporary-rooms:read", "temporary-rooms:extend"]})
        assert minted.status_code == 201, minted.text
        self.api = self.user.with_token(minted.json()["data"]["token"])

    def room(self, **fields) -> dict:
        answer = self.api.post("/external/rooms", json={"name": "Support", **fields})
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]


def join(url: str, room: dict, nickname: str = "Mei", language: str = "zh-CN") -> tuple[httpx.Client, dict]:
    answer = httpx.post(f"{url}/external/rooms/{room['room_id']}/guests",
                        json={"nickname": nickname, "preferred_language": language}, timeout=30)
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    return httpx.Client(base_url=f"{url}/external/rooms/{room['room_id']}", timeout=30,
                        headers={GUEST: data["session"]["token"]}), data


def at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def until(moment: dt.datetime) -> None:
    time.sleep(max(0.0, (moment - dt.datetime.now(dt.timezone.utc)).total_seconds()))


def test_a_room_is_created_listed_and_shown_as_the_spec_has_it(url, db):
    dev = Developer(url)
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    room = dev.room(name="Customer Support Room", external_reference="customer-123", ttl_hours=12)
    assert set(room) == {"room_id", "workspace_id", "channel_id", "name", "kind", "status", "external_reference",
                         "expires_at", "max_expires_at", "extension_count", "created_at", "join"}
    assert (room["name"], room["kind"], room["status"], room["external_reference"], room["extension_count"]) == (
        "Customer Support Room", "temporary_room", "active", "customer-123", 0)
    created = at(room["created_at"])
    assert before <= created <= before + dt.timedelta(seconds=2)
    assert room["expires_at"].endswith("+00:00")
    assert at(room["expires_at"]) - created == dt.timedelta(seconds=12 * HOUR_S)
    assert at(room["max_expires_at"]) - created == dt.timedelta(seconds=24 * HOUR_S)  # the default lifetime
    assert room["join"] == {"method": "POST", "endpoint": f"{PUBLIC}/api/v1/external/rooms/{room['room_id']}/guests"}

    listed = dev.api.get("/external/rooms").json()
    assert [r["room_id"] for r in listed["data"]] == [room["room_id"]] and listed["meta"]["total"] == 1
    assert dev.api.get(f"/external/rooms/{room['room_id']}").json()["data"] == room
    # The room is a workspace of the developer's with one channel of kind temporary_room.
    channels = dev.user.api.get(f"/workspaces/{room['workspace_id']}/channels").json()["data"]
    assert [(c["id"], c["kind"]) for c in channels] == [(room["channel_id"], "temporary_room")]
    default = dev.room()
    assert at(default["expires_at"]) - at(default["created_at"]) == dt.timedelta(seconds=24 * HOUR_S)
    assert [r["room_id"] for r in dev.api.get("/external/rooms").json()["data"]] == [default["room_id"],
                                                                                    room["room_id"]]
    # Nobody else sees them.
    other = Developer(url)
    assert other.api.get("/external/rooms").json()["data"] == []
    assert other.api.get(f"/external/rooms/{room['room_id']}").status_code == 404


def test_each_route_needs_a_token_with_its_ability(url, rosetta_browser_origin):
    reader = Developer(url, "temporary-rooms:read")
    refused = reader.api.post("/external/rooms", json={"name": "x"})
    assert (refused.status_code, refused.json()) == (403, {"message": "Invalid ability provided."})
    assert reader.api.get("/external/rooms").status_code == 200
    assert reader.api.get("/external/rooms/usage").status_code == 200
    creator = Developer(url, "temporary-rooms:create")
    room = creator.room()
    for call in (lambda: creator.api.get("/external/rooms"),
                 lambda: creator.api.post(f"/external/rooms/{room['room_id']}/extend", json={})):
        assert call().status_code == 403
    everything = Developer(url, "*")
    assert everything.api.post("/external/rooms", json={"name": "x"}).status_code == 201
    assert everything.user.api.get("/external/rooms").status_code == 200  # the sign-in token has `*` too
    # The spec asks for an API token: a web session is refused.
    browser = Browser(rosetta_browser_origin)
    browser.register()
    assert browser.get("/external/rooms").status_code == 403
    assert httpx.get(f"{url}/external/rooms").status_code == 401


@pytest.fixture(scope="module")
def rosetta_browser_origin(rstack) -> str:
    return f"http://127.0.0.1:{rstack.port}"


def test_ttl_hours_is_capped_by_the_owners_limits(url, rstack):
    dev = Developer(url)
    over = dev.api.post("/external/rooms", json={"name": "x", "ttl_hours": 25})
    assert (over.status_code, over.json()) == (422, {"message": "The given data was invalid.",
                                                     "errors": {"ttl_hours": ["ttl_hours_exceeds_limit"]}})
    assert dev.api.post("/external/rooms", json={"name": "x", "ttl_hours": 24.0}).status_code == 201  # JSON's 24.0
    limits(rstack, dev.email, "--max-ttl-hours", "48", "--max-lifetime-hours", "48")
    assert dev.api.post("/external/rooms", json={"name": "x", "ttl_hours": 48}).status_code == 201
    assert dev.api.post("/external/rooms", json={"name": "x", "ttl_hours": 49}).status_code == 422
    bad = dev.api.post("/external/rooms", json={"ttl_hours": 0})
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"name", "ttl_hours"}


def test_limits_are_set_shown_and_reset_from_the_command_line(url, rstack):
    dev = Developer(url)
    assert limits(rstack, dev.email, "--show") == {
        "active_limit": (3, "default"), "monthly_creation_limit": (10, "default"), "max_ttl_hours": (24, "default"),
        "extension_hours": (0, "default"), "max_lifetime_hours": (24, "default")}
    shown = limits(rstack, dev.email, "--active", "50", "--monthly", "1000", "--max-ttl-hours", "72",
                   "--extension-hours", "24", "--max-lifetime-hours", "720")
    assert shown == {"active_limit": (50, "own"), "monthly_creation_limit": (1000, "own"),
                     "max_ttl_hours": (72, "own"), "extension_hours": (24, "own"), "max_lifetime_hours": (720, "own")}
    usage = dev.api.get("/external/rooms/usage").json()["data"]
    assert usage["limits"] == {"active_limit": 50, "monthly_creation_limit": 1000}
    assert limits(rstack, dev.email, "--active", "7")["monthly_creation_limit"] == (1000, "own")  # the rest stay
    assert limits(rstack, dev.email, "--reset", "--active", "5") == {
        "active_limit": (5, "own"), "monthly_creation_limit": (10, "default"), "max_ttl_hours": (24, "default"),
        "extension_hours": (0, "default"), "max_lifetime_hours": (24, "default")}
    unknown = subprocess.run([sys.executable, str(ROOT / "app.py"), "rooms", "limits", "--email", "nobody@x.test",
                              "--show"], env=rstack.env, capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "No user has the email" in unknown.stderr


def test_parallel_creates_never_pass_the_quotas(url, rstack, db):
    dev = Developer(url)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: dev.api.post("/external/rooms", json={"name": f"r{i}"}), range(20)))
    assert sorted(a.status_code for a in answers) == [201] * 3 + [403] * 17
    refused = next(a for a in answers if a.status_code == 403)
    assert refused.json() == {"message": "Temporary Room active room limit exceeded.",
                              "errors": {"code": ["temporary_room_quota_exceeded"]}}
    owner_id = db.User.get(db.User.email_key == dev.email.casefold()).id
    assert db.Room.select().where(db.Room.owner == owner_id).count() == 3
    usage = dev.api.get("/external/rooms/usage").json()["data"]
    assert usage == {"limits": {"active_limit": 3, "monthly_creation_limit": 10},
                     "usage": {"active_room_count": 3, "monthly_creation_count": 3},
                     "abuse_signals": {"active_limit_reached": True, "monthly_creation_limit_reached": False}}

    limits(rstack, dev.email, "--active", "100", "--monthly", "8")
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: dev.api.post("/external/rooms", json={"name": f"m{i}"}), range(20)))
    assert sorted(a.status_code for a in answers) == [201] * 5 + [403] * 15
    assert next(a for a in answers if a.status_code == 403).json() == {
        "message": "Temporary Room monthly creation limit exceeded.",
        "errors": {"code": ["temporary_room_quota_exceeded"]}}
    signals = dev.api.get("/external/rooms/usage").json()["data"]["abuse_signals"]
    assert signals == {"active_limit_reached": False, "monthly_creation_limit_reached": True}


def test_extensions_need_limits_that_allow_them_and_stay_under_max_expires_at(url, rstack):
    dev = Developer(url)
    room = dev.room(ttl_hours=10)
    refused = dev.api.post(f"/external/rooms/{room['room_id']}/extend", json={})
    assert (refused.status_code, refused.json()) == (403, {"message": "Temporary Room extension is not allowed.",
                                                           "errors": {"code": ["temporary_room_extension_not_allowed"]}})
    limits(rstack, dev.email, "--extension-hours", "5", "--max-lifetime-hours", "20")
    room = dev.room(ttl_hours=10)
    extended = dev.api.post(f"/external/rooms/{room['room_id']}/extend")  # no body: the single-extension max
    assert extended.status_code == 200, extended.text
    data = extended.json()["data"]
    assert data == {"room_id": room["room_id"], "expires_at": (at(room["expires_at"]) + dt.timedelta(
        seconds=5 * HOUR_S)).isoformat(), "max_expires_at": room["max_expires_at"], "extension_count": 1}
    assert dev.api.post(f"/external/rooms/{room['room_id']}/extend", json={"extension_hours": 4}).status_code == 200
    for hours in (2, 6):  # past max_expires_at (19 + 2 > 20), and over the single-extension max
        over = dev.api.post(f"/external/rooms/{room['room_id']}/extend", json={"extension_hours": hours})
        assert (over.status_code, over.json()["errors"]) == (422, {"extension_hours": ["extension_hours_exceeds_limit"]})
    assert dev.api.post(f"/external/rooms/{room['room_id']}/extend", json={"extension_hours": 1}).json()["data"][
        "extension_count"] == 3
    assert Developer(url).api.post(f"/external/rooms/{room['room_id']}/extend").status_code == 404


def test_guests_read_everything_in_their_language_and_post_as_guests(url, db):
    dev = Developer(url)
    room = dev.room(name="Help")
    before = dev.api.get(f"/external/rooms/{room['room_id']}").json()["data"]
    mei, joined = join(url, room, "  Mei  ", "zh-CN")
    assert set(joined) == {"guest", "session", "room"}
    assert joined["guest"]["nickname"] == "Mei" and joined["guest"]["preferred_language"] == "zh-CN"
    ULID.from_str(joined["guest"]["id"].upper())
    session = joined["session"]
    assert session["token"].startswith("grst_") and session["token_type"] == "guest"
    assert session["header"] == GUEST and session["expires_at"] == room["expires_at"]
    assert joined["room"] == {"room_id": room["room_id"], "workspace_id": room["workspace_id"],
                              "channel_id": room["channel_id"], "name": "Help", "status": "active",
                              "expires_at": room["expires_at"]}
    assert db.Guest.select().where(db.Guest.token_hash == session["token"]).count() == 0  # only its hash is kept
    assert before == dev.api.get(f"/external/rooms/{room['room_id']}").json()["data"]

    posted = mei.post("/messages", json={"content": "Hello team"})
    assert posted.status_code == 201, posted.text
    message = posted.json()["data"]
    assert (message["original_content"], message["author"]["kind"], message["author"]["name"]) == (
        "Hello team", "guest", "Mei")
    assert message["translation_status"] == "pending"
    channel = f"/workspaces/{room['workspace_id']}/channels/{room['channel_id']}/messages"
    reply = dev.user.api.post(channel, json={"content": "How can we help?", "parent_message_id": message["id"]})
    assert reply.status_code == 201
    own = dev.user.api.post(channel, json={"content": "Welcome to support"}).json()["data"]
    # The guest reads the owner's message in Chinese once it is translated.
    assert wait_for(lambda: mei.get(f"/messages/{own['id']}").json()["data"]["display_source"] == "translated")
    seen = mei.get(f"/messages/{own['id']}").json()["data"]
    assert seen["display_content"] == "[zh-Hans] WELCOME TO SUPPORT" and seen["author"]["kind"] == "user"
    listed = mei.get("/messages").json()
    assert [m["id"] for m in listed["data"]] == [own["id"], message["id"]]
    thread = mei.get("/messages", params={"parent_message_id": message["id"]}).json()["data"]
    assert [m["original_content"] for m in thread] == ["How can we help?"]
    # The owner sees the guest's message as a guest's, in their own language.
    theirs = dev.user.api.get(f"{channel}/{message['id']}").json()["data"]
    assert (theirs["author"]["kind"], theirs["author"]["name"]) == ("guest", "Mei")
    members = dev.user.api.get(f"/workspaces/{room['workspace_id']}/members").json()["data"]
    assert sorted(m["role"] for m in members) == ["guest", "owner"]

    bad = mei.post("/messages", json={})
    assert bad.status_code == 422 and "content" in bad.json()["errors"]
    for nickname in ("", "   ", "x" * 65):
        answer = httpx.post(f"{url}/external/rooms/{room['room_id']}/guests",
                            json={"nickname": nickname, "preferred_language": "ja"})
        assert answer.status_code == 422 and "nickname" in answer.json()["errors"]
    assert httpx.post(f"{url}/external/rooms/{room['room_id']}/guests",
                      json={"nickname": "Kai", "preferred_language": "xx"}).status_code == 422


def test_a_guest_token_opens_its_own_room_only(url):
    dev = Developer(url)
    first, second = dev.room(), dev.room()
    guest, _ = join(url, first)
    assert guest.get("/messages").status_code == 200
    elsewhere = httpx.get(f"{url}/external/rooms/{second['room_id']}/messages", headers=guest.headers)
    assert (elsewhere.status_code, elsewhere.json()) == (401, {"message": "Unauthenticated."})
    for headers in ({}, {GUEST: "grst_forged"}, {GUEST: "not-a-guest-token"}):
        assert httpx.get(f"{url}/external/rooms/{first['room_id']}/messages", headers=headers).status_code == 401
    unknown = str(ULID()).lower()
    assert httpx.get(f"{url}/external/rooms/{unknown}/messages", headers=guest.headers).status_code == 404
    missing = httpx.post(f"{url}/external/rooms/{unknown}/guests", json={"nickname": "A", "preferred_language": "en"})
    assert (missing.status_code, missing.json()) == (404, {"message": "Temporary Room not found."})
    # A guest token is no bearer token, and reaches nothing outside its room.
    assert httpx.get(f"{url}/me", headers={"Authorization": f"Bearer {guest.headers[GUEST]}"}).status_code == 401
    assert httpx.get(f"{url}/me", headers=guest.headers).status_code == 401
    assert httpx.get(f"{url}/workspaces/{first['workspace_id']}/channels", headers=guest.headers).status_code == 401


def test_guests_attach_files_they_upload_with_their_token(url):
    dev = Developer(url)
    room = dev.room()
    guest, _ = join(url, room)
    upload = httpx.post(f"{url}/files", headers=guest.headers, files={"file": ("note.txt", b"hello from a guest")})
    assert upload.status_code == 201, upload.text
    file_id = upload.json()["data"]["id"]
    posted = guest.post("/messages", json={"attachment_ids": [file_id]})
    assert posted.status_code == 201, posted.text
    attachment = posted.json()["data"]["attachments"][0]
    download = attachment["download_url"]
    origin = url.removesuffix("/api/v1")
    assert httpx.get(origin + download, headers=guest.headers).content == b"hello from a guest"
    assert dev.user.api.get(origin + download).content == b"hello from a guest"
    stranger, _ = join(url, dev.room())
    assert httpx.get(origin + download, headers=stranger.headers).status_code == 404
    assert httpx.get(f"{url}/files/{file_id}", headers=stranger.headers).status_code == 404


def test_a_room_shuts_on_time_and_cuts_its_guests_off_mid_conversation(url, db):
    """No scheduler runs here: the room's own delayed message expires it."""
    dev = Developer(url)
    room = dev.room(ttl_hours=1)
    expires_at = at(room["expires_at"])
    guest, _ = join(url, room)
    sent = 0
    while dt.datetime.now(dt.timezone.utc) < expires_at - dt.timedelta(seconds=0.5):
        assert guest.post("/messages", json={"content": f"line {sent}"}).status_code == 201
        sent += 1
        time.sleep(0.1)
    assert sent >= 2
    until(expires_at)
    gone = {"message": "Temporary Room is not available.", "errors": {"code": ["temporary_room_expired"]}}
    cut = guest.post("/messages", json={"content": "too late"})
    assert (cut.status_code, cut.json()) == (410, gone)
    assert guest.get("/messages").status_code == 410
    late = httpx.post(f"{url}/external/rooms/{room['room_id']}/guests", json={"nickname": "B", "preferred_language": "en"})
    assert (late.status_code, late.json()) == (410, gone)
    assert dev.api.get(f"/external/rooms/{room['room_id']}").json()["data"]["status"] == "expired"
    stored = lambda: db.Room.get_by_id(uuid.UUID(str(ULID.from_str(room["room_id"].upper()).to_uuid())))  # noqa: E731
    assert wait_for(lambda: stored().status == "expired", timeout=5, interval=0.02)
    row = stored()
    assert row.expired_at - row.expires_at < dt.timedelta(seconds=1), (row.expires_at, row.expired_at)
    assert all(g.revoked_at is not None for g in db.Guest.select().where(db.Guest.room == row.id))
    assert dev.api.post(f"/external/rooms/{room['room_id']}/extend").status_code == 403  # the default: no extension
    assert len(dev.user.api.get(f"/workspaces/{room['workspace_id']}/channels/{room['channel_id']}/messages",
                                params={"per_page": 100}).json()["data"]) == sent  # kept until the purge


def test_an_extension_holds_the_room_open_past_its_first_expiry(url, rstack, db):
    dev = Developer(url)
    limits(rstack, dev.email, "--extension-hours", "1", "--max-lifetime-hours", "3", "--max-ttl-hours", "1")
    room = dev.room(ttl_hours=1)
    guest, _ = join(url, room)
    extended = dev.api.post(f"/external/rooms/{room['room_id']}/extend").json()["data"]
    first, second = at(room["expires_at"]), at(extended["expires_at"])
    assert second - first == dt.timedelta(seconds=HOUR_S)
    until(first + dt.timedelta(seconds=0.8))  # the first delayed message has come and gone
    assert guest.post("/messages", json={"content": "still here"}).status_code == 201
    row = db.Room.get_by_id(uuid.UUID(str(ULID.from_str(room["room_id"].upper()).to_uuid())))
    assert row.status == "active"
    until(second)
    assert guest.post("/messages", json={"content": "gone"}).status_code == 410
    assert wait_for(lambda: db.Room.get_by_id(row.id).status == "expired", timeout=5, interval=0.02)


def test_join_is_limited_per_room_and_per_ip(url, rstack):
    port = rstack.start_server(SECTOR_ROOMS_JOIN_ROOM="3", SECTOR_ROOMS_JOIN_IP="5")
    limited = f"http://127.0.0.1:{port}/api/v1"
    dev = Developer(url)
    first, second, third = dev.room(), dev.room(), dev.room()
    # From an address of its own (any of 127/8 reaches the server), so no other test's joins count.
    client = httpx.Client(transport=httpx.HTTPTransport(local_address=f"127.0.{uuid.uuid4().int % 250 + 2}.9"))

    def join_status(room):
        return client.post(f"{limited}/external/rooms/{room['room_id']}/guests",
                           json={"nickname": "N", "preferred_language": "en"}).status_code
    assert [join_status(first) for _ in range(4)] == [201, 201, 201, 429]
    assert [join_status(second) for _ in range(2)] == [201, 429]  # four of the IP's five are used up
    too_many = client.post(f"{limited}/external/rooms/{third['room_id']}/guests",
                           json={"nickname": "N", "preferred_language": "en"})
    assert too_many.status_code == 429 and int(too_many.headers["Retry-After"]) >= 1
    # The per-room count is the room's whoever joins.
    assert httpx.post(f"{limited}/external/rooms/{first['room_id']}/guests",
                      json={"nickname": "N", "preferred_language": "en"}).status_code == 429


def test_the_scheduler_backs_up_lost_expiries_and_purges_expired_rooms(url, rstack, db):
    dev = Developer(url)
    room = dev.room(ttl_hours=1)
    guest, _ = join(url, room)
    upload = httpx.post(f"{url}/files", headers=guest.headers, files={"file": ("a.txt", b"guest bytes")})
    file_id = upload.json()["data"]["id"]
    assert guest.post("/messages", json={"content": "bye", "attachment_ids": [file_id]}).status_code == 201
    dev.user.api.post(f"/workspaces/{room['workspace_id']}/channels/{room['channel_id']}/messages",
                      json={"content": "from the owner"})
    room_id = uuid.UUID(str(ULID.from_str(room["room_id"].upper()).to_uuid()))
    file_row = db.File.get_by_id(uuid.UUID(str(ULID.from_str(file_id.upper()).to_uuid())))
    stored = rstack.data_dir / "files" / file_row.storage_key
    guest_users = [g.user_id for g in db.Guest.select().where(db.Guest.room == room_id)]
    # A room whose delayed message was lost: open, and past its time, in the database alone.
    lost = db.Room.create(id=uuid.uuid4(), owner=db.User.get(db.User.email_key == dev.email.casefold()).id,
                          name="lost", expires_at=db.utcnow() - dt.timedelta(seconds=5),
                          max_expires_at=db.utcnow(), created_at=db.utcnow() - dt.timedelta(seconds=10))
    scheduler = rstack._spawn("scheduler")
    try:
        assert wait_for(lambda: db.Room.get_by_id(lost.id).status == "expired", timeout=10)
        assert wait_for(lambda: db.Room.get_by_id(room_id).purged_at is not None, timeout=10 + 2 * HOUR_S)
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=15)
    purged = db.Room.get_by_id(room_id)
    assert (purged.status, purged.workspace_id, purged.channel_id) == ("expired", None, None)
    assert db.Message.select().where(db.Message.channel == uuid.UUID(str(ULID.from_str(
        room["channel_id"].upper()).to_uuid()))).count() == 0
    assert db.File.get_or_none(db.File.id == file_row.id) is None
    assert wait_for(lambda: not stored.exists(), timeout=10)
    assert db.User.select().where(db.User.id.in_(guest_users)).count() == 0
    shown = dev.api.get(f"/external/rooms/{room['room_id']}").json()["data"]
    assert (shown["status"], shown["workspace_id"], shown["channel_id"]) == ("expired", None, None)
    assert dev.api.get("/external/rooms/usage").json()["data"]["usage"]["monthly_creation_count"] == 2


SWEEP = """
import sys, time
import actors  # noqa: F401  (the broker, as a worker has it)
import models
from actors import rooms
from config import settings
models.open_database(settings().database_url)
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # both start at once
rooms.expire_rooms.fn()
rooms.purge_rooms.fn()
print("swept")
"""


def test_two_sweeps_at_once_change_nothing_twice(url, rstack, db):
    dev = Developer(url)
    limits(rstack, dev.email, "--active", "20")
    owner_id = db.User.get(db.User.email_key == dev.email.casefold()).id
    expired_ids, stored = [], []
    for n in range(3):
        room = dev.room(ttl_hours=1)
        guest, _ = join(url, room)
        file_id = httpx.post(f"{url}/files", headers=guest.headers,
                             files={"file": (f"{n}.txt", b"bytes %d" % n)}).json()["data"]["id"]
        assert guest.post("/messages", json={"content": "hi", "attachment_ids": [file_id]}).status_code == 201
        expired_ids.append(uuid.UUID(str(ULID.from_str(room["room_id"].upper()).to_uuid())))
        key = db.File.get_by_id(uuid.UUID(str(ULID.from_str(file_id.upper()).to_uuid()))).storage_key
        stored.append(rstack.data_dir / "files" / key)
    assert wait_for(lambda: all(db.Room.get_by_id(i).status == "expired" for i in expired_ids), timeout=15)
    long_ago = db.utcnow() - dt.timedelta(seconds=10 * HOUR_S)
    db.Room.update(expired_at=long_ago).where(db.Room.id.in_(expired_ids)).execute()  # due for the purge
    lost_ids = [db.Room.create(id=uuid.uuid4(), owner=owner_id, name="lost", expires_at=db.utcnow(),
                               max_expires_at=db.utcnow(), created_at=db.utcnow()).id for _ in range(3)]
    start = time.time() + 2
    sweeps = [subprocess.Popen([sys.executable, "-c", SWEEP, str(start)], env=rstack.env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for sweep in sweeps:
        out, err = sweep.communicate(timeout=60)
        assert sweep.returncode == 0 and out.strip() == "swept", err
    assert all(db.Room.get_by_id(i).status == "expired" for i in lost_ids)
    for room_id in expired_ids:
        row = db.Room.get_by_id(room_id)
        assert row.purged_at is not None and row.workspace_id is None
        assert db.Guest.select().where(db.Guest.room == room_id).count() == 0
    assert not any(path.exists() for path in stored)


def test_a_rooms_connected_readers_hear_that_it_expired(url, rstack, db):
    dev = Developer(url)
    room = dev.room(ttl_hours=1)
    guest, joined = join(url, room)
    guest_user = db.Guest.get_by_id(uuid.UUID(str(ULID.from_str(joined["guest"]["id"].upper()).to_uuid()))).user_id
    r, keys = redis.Redis.from_url(rstack.settings.redis_url), Keys(rstack.settings.redis.namespace)
    r.zadd(keys.active, {str(guest_user): int(time.time() * 1000)})  # as the guest's connected client's process does

    def expired_events():
        return [json.loads(fields[b"e"]) for _, fields in r.xrange(keys.stream(guest_user))
                if json.loads(fields[b"e"])["type"] == "room.expired"]
    assert wait_for(lambda: expired_events(), timeout=4 * HOUR_S)
    (event,) = expired_events()
    assert event["data"]["room_id"] == uuid.UUID(str(ULID.from_str(room["room_id"].upper()).to_uuid())).hex
