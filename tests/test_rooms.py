"""External temporary rooms through a stack of their own: short hours (`[rooms] hour_s`), a local
translation engine, the real worker and, where a test says so, the real scheduler.

An "hour" here is HOUR_S seconds, so rooms expire while the tests watch.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from ulid import ULID

from domain import tokens
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


def uid(ulid: str) -> uuid.UUID:
    """The row id behind an id as the API shows it."""
    return uuid.UUID(str(ULID.from_str(ulid.upper()).to_uuid()))


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


def test_each_route_needs_a_token_with_its_ability(url, rstack, rosetta_browser_origin):
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
    extender = Developer(url, "temporary-rooms:extend")
    for call in (lambda: extender.api.post("/external/rooms", json={"name": "x"}),
                 lambda: extender.api.get("/external/rooms"), lambda: extender.api.get("/external/rooms/usage")):
        refused = call()
        assert (refused.status_code, refused.json()) == (403, {"message": "Invalid ability provided."})
    everything = Developer(url, "*")
    limits(rstack, everything.email, "--extension-hours", "1", "--max-lifetime-hours", "48")
    mine = everything.api.post("/external/rooms", json={"name": "x"})
    assert mine.status_code == 201
    assert everything.api.get("/external/rooms/usage").json()["data"]["usage"]["active_room_count"] == 1
    extended = everything.api.post(f"/external/rooms/{mine.json()['data']['room_id']}/extend")
    assert (extended.status_code, extended.json()["data"]["extension_count"]) == (200, 1)
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


def test_an_omitted_ttl_hours_is_capped_by_the_owners_limits_too(url, rstack):
    dev = Developer(url)
    limits(rstack, dev.email, "--max-ttl-hours", "6")
    room = dev.room()
    assert at(room["expires_at"]) - at(room["created_at"]) == dt.timedelta(seconds=6 * HOUR_S)
    over = dev.api.post("/external/rooms", json={"name": "x", "ttl_hours": 7})
    assert (over.status_code, over.json()["errors"]) == (422, {"ttl_hours": ["ttl_hours_exceeds_limit"]})
    limits(rstack, dev.email, "--max-ttl-hours", "24", "--max-lifetime-hours", "4")  # the lifetime caps it as well
    room = dev.room()
    assert at(room["expires_at"]) - at(room["created_at"]) == dt.timedelta(seconds=4 * HOUR_S)
    limits(rstack, dev.email, "--max-ttl-hours", "0")  # no hour allowed: no room, whatever the request says
    none = dev.api.post("/external/rooms", json={"name": "x"})
    assert (none.status_code, none.json()["errors"]) == (422, {"ttl_hours": ["ttl_hours_exceeds_limit"]})


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
    for flags in (["--active", "9"], ["--reset"]):  # --show only shows: with a change it is a usage error
        mixed = subprocess.run([sys.executable, str(ROOT / "app.py"), "rooms", "limits", "--email", dev.email, "--show",
                                *flags], env=rstack.env, capture_output=True, text=True, timeout=60)
        assert (mixed.returncode, mixed.stdout) == (2, "") and "--show only shows the limits" in mixed.stderr
    assert limits(rstack, dev.email, "--show")["active_limit"] == (5, "own")
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
    # Left out, the single-extension max (5) is capped at max_expires_at, as an omitted ttl_hours is.
    clamped = dev.api.post(f"/external/rooms/{room['room_id']}/extend", json={}).json()["data"]
    assert (clamped["expires_at"], clamped["extension_count"]) == (room["max_expires_at"], 3)
    for body in ({}, {"extension_hours": 1}):  # nothing is left to add
        over = dev.api.post(f"/external/rooms/{room['room_id']}/extend", json=body)
        assert (over.status_code, over.json()["errors"]) == (422, {"extension_hours": ["extension_hours_exceeds_limit"]})
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
    assert db.Guest.get_by_id(uid(joined["guest"]["id"])).token_hash == tokens.digest(session["token"])  # only that
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
    answered = mei.post("/messages", json={"content": "Thanks", "parent_message_id": own["id"]})
    assert answered.status_code == 201, answered.text
    assert answered.json()["data"]["parent_message_id"] == own["id"]
    replies = mei.get("/messages", params={"parent_message_id": own["id"]}).json()["data"]
    assert [(m["id"], m["author"]["kind"]) for m in replies] == [(answered.json()["data"]["id"], "guest")]
    assert mei.get(f"/messages/{own['id']}").json()["data"]["reply_count"] == 1
    assert [m["id"] for m in mei.get("/messages").json()["data"]] == [own["id"], message["id"]]  # no reply at the top
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
    posted = httpx.post(f"{url}/external/rooms/{unknown}/messages", headers=guest.headers, json={"content": "hi"})
    assert (posted.status_code, posted.json()) == (404, {"message": "Temporary Room not found."})
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


def test_a_guest_reads_only_its_own_files_and_those_attached_in_its_room(url):
    dev = Developer(url)
    room = dev.room()
    guest, _ = join(url, room)
    origin = url.removesuffix("/api/v1")

    def upload(client, name: str) -> str:
        answer = client.post(f"{url}/files", files={"file": (name, name.encode())}, data={"visibility": "public"})
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]["id"]

    def reads(file_id: str) -> tuple[int, int]:
        return (httpx.get(f"{url}/files/{file_id}", headers=guest.headers).status_code,
                httpx.get(f"{url}/files/{file_id}/download", headers=guest.headers).status_code)
    # A public file is anyone's signed in, not a guest's: neither staged nor attached outside its room.
    assert reads(upload(dev.user.api, "staged.txt")) == (404, 404)
    stranger, _ = join(url, dev.room())
    theirs = upload(httpx.Client(headers=stranger.headers), "theirs.txt")
    attachment = stranger.post("/messages", json={"attachment_ids": [theirs]}).json()["data"]["attachments"][0]
    assert reads(theirs) == (404, 404)
    assert httpx.get(origin + attachment["download_url"], headers=guest.headers).status_code == 404
    # What is attached in its room, and its own uploads, it reads.
    shared = upload(dev.user.api, "shared.txt")
    channel = f"/workspaces/{room['workspace_id']}/channels/{room['channel_id']}/messages"
    assert dev.user.api.post(channel, json={"attachment_ids": [shared]}).status_code == 201
    assert reads(shared) == (200, 200)
    assert reads(upload(httpx.Client(headers=guest.headers), "mine.txt")) == (200, 200)


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
    upload = httpx.post(f"{url}/files", headers=guest.headers, files={"file": ("late.txt", b"late")})
    assert (upload.status_code, upload.json()) == (410, gone)
    # The room is over for its owner too: nothing more goes into what is to be purged.
    channel = f"/workspaces/{room['workspace_id']}/channels/{room['channel_id']}/messages"
    owners = dev.user.api.post(channel, json={"content": "anyone there?"})
    assert (owners.status_code, owners.json()) == (410, gone)
    assert len(dev.user.api.get(channel, params={"per_page": 100}).json()["data"]) == sent  # kept until the purge


def test_a_post_let_in_before_expires_at_does_not_commit_after_it(url, rstack, db):
    """The handler checks the room as the request arrives; the write checks it again as it commits."""
    dev = Developer(url)
    room = dev.room(ttl_hours=1)
    guest, _ = join(url, room)
    rstack.kill_worker()  # the write waits in its queue while the room runs out
    try:
        accepted = guest.post("/messages", json={"content": "just in time"}, headers={"Prefer": "respond-async"})
        assert accepted.status_code == 202, accepted.text
        until(at(room["expires_at"]) + dt.timedelta(seconds=0.2))
    finally:
        rstack.start_worker()
    assert wait_for(lambda: db.Room.get_by_id(uid(room["room_id"])).status == "expired", timeout=15)
    channel = f"/workspaces/{room['workspace_id']}/channels/{room['channel_id']}/messages"
    assert dev.user.api.post(channel, json={"content": "after it"}).status_code == 410  # the writes queue is served
    time.sleep(1)
    assert db.Message.select().where(db.Message.channel == uid(room["channel_id"])).count() == 0


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
    row = db.Room.get_by_id(uid(room["room_id"]))
    assert row.status == "active"
    until(second - dt.timedelta(seconds=0.5))  # a stale first message handled late would have shut it by now
    assert guest.post("/messages", json={"content": "nearly gone"}).status_code == 201
    assert db.Room.get_by_id(row.id).status == "active"
    assert dev.api.get(f"/external/rooms/{room['room_id']}").json()["data"]["status"] == "active"
    until(second)
    assert guest.post("/messages", json={"content": "gone"}).status_code == 410
    assert wait_for(lambda: db.Room.get_by_id(row.id).status == "expired", timeout=5, interval=0.02)
    # Its limits would allow one more hour (2 + 1 <= 3), but an expired room stays expired.
    late = dev.api.post(f"/external/rooms/{room['room_id']}/extend")
    assert (late.status_code, late.json()) == (410, {"message": "Temporary Room is not available.",
                                                     "errors": {"code": ["temporary_room_expired"]}})


def test_guests_who_join_beside_extensions_get_the_rooms_expiry(url, rstack, db):
    """A join reads the room's expires_at under the lock an extension takes (it matters on PostgreSQL: on
    SQLite a write holds the whole database). A server that sends each command alone, so that the worker's
    threads commit joins and extensions side by side."""
    alone = f"http://127.0.0.1:{rstack.start_server(SECTOR_WRITES_BATCH_MAX='1')}/api/v1"
    dev = Developer(url)
    limits(rstack, dev.email, "--active", "10", "--extension-hours", "1", "--max-lifetime-hours", "1000",
           "--max-ttl-hours", "10")
    owner = httpx.Client(base_url=alone, timeout=30, headers={"Authorization": dev.api.headers["Authorization"]})
    for room in (dev.room(ttl_hours=10) for _ in range(6)):
        extend = lambda room=room: owner.post(f"/external/rooms/{room['room_id']}/extend",  # noqa: E731
                                              json={"extension_hours": 1})
        with ThreadPoolExecutor(16) as pool:
            calls = [pool.submit(extend if n % 3 == 0 else lambda n=n, room=room: join(alone, room, f"G{n}"))
                     for n in range(36)]
            assert all(answer.status_code == 200 for answer in [call.result() for call in calls][::3])
        expires_at = db.Room.get_by_id(uid(room["room_id"])).expires_at
        guests = db.Guest.select().where(db.Guest.room == uid(room["room_id"]))
        assert [g.expires_at for g in guests] == [expires_at] * 24


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
    owners = dev.user.api.post(f"/workspaces/{room['workspace_id']}/channels/{room['channel_id']}/messages",
                               json={"content": "from the owner"}).json()["data"]["id"]
    translations = db.Translation.select().where(db.Translation.message == uid(owners))
    assert wait_for(lambda: translations.count() == 1, timeout=HOUR_S)  # into the guest's Chinese
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
    assert translations.count() == 0
    assert db.File.get_or_none(db.File.id == file_row.id) is None
    assert wait_for(lambda: not stored.exists(), timeout=10)
    assert db.User.select().where(db.User.id.in_(guest_users)).count() == 0
    shown = dev.api.get(f"/external/rooms/{room['room_id']}").json()["data"]
    assert (shown["status"], shown["workspace_id"], shown["channel_id"]) == ("expired", None, None)
    assert dev.api.get("/external/rooms/usage").json()["data"]["usage"]["monthly_creation_count"] == 2


SWEEP = """
import logging, sys, time
import actors  # noqa: F401  (the broker, as a worker has it)
import models
from actors import rooms
from config import settings
logging.basicConfig(stream=sys.stdout, format="%(message)s")
logging.getLogger("actors.rooms").setLevel(logging.INFO)  # what each sweep says it did
models.open_database(settings().database_url)
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # both start at once
rooms.expire_rooms.fn()
rooms.purge_rooms.fn()
print("swept")
"""


def swept(out: str, what: str) -> int:
    """The rooms a sweep's log says it expired or purged."""
    return sum(int(n) for n in re.findall(rf"^{what} (\d+) ", out, re.M))


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
    now = db.utcnow()
    lost_ids = [db.Room.create(id=uuid.uuid4(), owner=owner_id, name="lost", expires_at=now, max_expires_at=now,
                               created_at=now).id for _ in range(60)]
    # Rooms whose workspace is gone already, due for the purge too: both sweeps are some batches deep at once.
    emptied = [db.Room.create(id=uuid.uuid4(), owner=owner_id, name="emptied", status="expired", expires_at=long_ago,
                              expired_at=long_ago, max_expires_at=long_ago, created_at=long_ago).id for _ in range(57)]
    since, start = db.utcnow(), time.time() + 2
    sweeps = [subprocess.Popen([sys.executable, "-c", SWEEP, str(start)], env=rstack.env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = []
    for sweep in sweeps:
        out, err = sweep.communicate(timeout=60)
        assert sweep.returncode == 0 and out.strip().endswith("swept"), err
        outs.append(out)
    # Each room was expired, and purged, by one of them: together they say so of each once. (Rooms of the
    # other tests come due meanwhile too; no scheduler runs, but the worker's delayed messages expire some.)
    assert 60 <= sum(swept(out, "Expired") for out in outs) <= db.Room.select().where(
        db.Room.expired_at >= since).count(), outs
    assert sum(swept(out, "Purged") for out in outs) == db.Room.select().where(
        db.Room.purged_at >= since).count() >= 3 + 57, outs
    assert all(db.Room.get_by_id(i).status == "expired" for i in lost_ids)
    assert all(db.Room.get_by_id(i).purged_at is not None for i in emptied)
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
