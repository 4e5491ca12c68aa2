"""RosettaChat channels and invite links through HTTP: who sees, enters and manages a channel, how
slugs are made per workspace, and how invites are made, previewed, accepted, revoked and expire."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from ulid import ULID

from tests.api import unique
from tests.chat import channel, crew_of, join, messages_path, workspace
from tests.rosetta import AppUser

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
UNKNOWN_ID = "01j0000000000000000000000z"  # a well-formed ULID that names nothing
CHANNEL_KEYS = {"id", "workspace_id", "name", "slug", "description", "visibility", "kind", "entered", "created_at",
                "updated_at"}
INVITE_KEYS = {"id", "workspace_id", "created_by", "expires_at", "created_at"}
NOT_VALID = {"message": "This invite link is not valid."}
CHANNEL_NOT_FOUND = {"message": "Channel not found."}
PASSWORD = "open sesame"


@pytest.fixture(scope="module")
def stranger(rosetta_url) -> AppUser:
    """In none of `team`'s business: owns `elsewhere`, and accepts invites to new workspaces."""
    return AppUser(rosetta_url, name="Sam Stranger")


@pytest.fixture(scope="module")
def team(owner, admin, member) -> dict:
    """A private workspace with an owner, an admin and a member; tests add channels and invites to it."""
    return crew_of(owner, admin, member)


@pytest.fixture(scope="module")
def elsewhere(stranger, owner) -> dict:
    """Another workspace: `stranger` owns it and `team`'s owner is an admin of it."""
    ws = workspace(stranger, unique("Elsewhere"))
    join(owner, ws, "admin", by=stranger)
    return ws


def path(ws: dict, rest: str = "") -> str:
    return f"/workspaces/{ws['id']}{rest}"


def channel_path(ws: dict, ch: dict, rest: str = "") -> str:
    return path(ws, f"/channels/{ch['id']}{rest}")


def listed(user: AppUser, ws: dict) -> dict[str, dict]:
    """The channels `user` is shown in `ws`, by id."""
    answer = user.api.get(path(ws, "/channels"))
    assert answer.status_code == 200, answer.text
    return {ch["id"]: ch for ch in answer.json()["data"]}


def refused(answer, field: str) -> list[str]:
    """The messages of a 422 for `field`."""
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"] == "The given data was invalid."
    return answer.json()["errors"][field]


def invite(admin: AppUser, ws: dict, **fields) -> dict:
    answer = admin.api.post(path(ws, "/invites"), json=fields)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


# Listing and creating channels

def test_members_list_the_channels_with_whether_they_entered_them(admin, member, team):
    general = channel(admin, team, unique("general"))
    answer = member.api.get(path(team, "/channels"))
    assert answer.status_code == 200
    assert set(answer.json()) == {"data"}
    shown = {ch["id"]: ch for ch in answer.json()["data"]}[general["id"]]
    assert set(shown) == CHANNEL_KEYS and shown["entered"] is True


def test_an_admin_creates_a_channel_with_201(admin, team):
    answer = admin.api.post(path(team, "/channels"), json={"name": "Design Chat", "description": "Pixels."})
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    assert set(data) == CHANNEL_KEYS
    assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", data["id"])
    assert (data["workspace_id"], data["name"], data["description"], data["visibility"], data["kind"],
            data["entered"]) == (team["id"], "Design Chat", "Pixels.", "public", "standard", True)
    assert TIMESTAMP.fullmatch(data["created_at"]) and TIMESTAMP.fullmatch(data["updated_at"])


def test_a_member_cannot_create_a_channel(member, team):
    assert member.api.post(path(team, "/channels"), json={"name": "mine"}).status_code == 403


def test_a_channel_needs_a_name(admin, team):
    assert refused(admin.api.post(path(team, "/channels"), json={}), "name")


def test_a_password_channel_needs_a_password(admin, team):
    assert refused(admin.api.post(path(team, "/channels"), json={"name": "locked", "visibility": "password"}),
                   "password")


def test_a_channel_password_of_120_characters_is_accepted(admin, team):
    assert channel(admin, team, unique("locked"), visibility="password", password="p" * 120)["visibility"] == "password"


def test_a_channel_name_gets_the_plain_slug_in_each_workspace(admin, owner, team, elsewhere):
    name = unique("Random")
    here, there = channel(admin, team, name), channel(owner, elsewhere, name)
    assert here["slug"] == there["slug"] == name.lower()


def test_a_channel_name_taken_in_the_workspace_gets_a_numeric_suffix(admin, team):
    name = unique("Twin")
    first, second = channel(admin, team, name), channel(admin, team, name)
    assert second["slug"] == first["slug"] + "-2"


def test_an_explicit_channel_slug_taken_in_the_workspace_is_refused(admin, team):
    slug = channel(admin, team, unique("taken"))["slug"]
    answer = admin.api.post(path(team, "/channels"), json={"name": "another", "slug": slug})
    assert refused(answer, "slug") == ["The slug has already been taken."]


# Changing and deleting channels

def test_an_admin_renames_a_channel_and_changes_its_visibility(admin, team):
    ch = channel(admin, team, unique("before"))
    answer = admin.api.put(channel_path(team, ch), json={"name": "after", "visibility": "private"})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert (data["id"], data["name"], data["visibility"]) == (ch["id"], "after", "private")
    assert listed(admin, team)[ch["id"]]["name"] == "after"


def test_a_member_cannot_change_a_channel(admin, member, team):
    ch = channel(admin, team, unique("fixed"))
    assert member.api.put(channel_path(team, ch), json={"name": "mine now"}).status_code == 403


def test_an_admin_deletes_a_channel(admin, member, team):
    ch = channel(admin, team, unique("doomed"))
    deleted = admin.api.delete(channel_path(team, ch))
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert ch["id"] not in listed(member, team)
    assert member.api.get(messages_path(team, ch)).status_code == 404


def test_a_member_cannot_delete_a_channel(admin, member, team):
    ch = channel(admin, team, unique("kept"))
    assert member.api.delete(channel_path(team, ch)).status_code == 403
    assert ch["id"] in listed(member, team)


# Who sees and enters a channel

def test_a_public_channel_is_open_to_every_member(admin, member, team):
    ch = channel(admin, team, unique("open"))
    assert listed(member, team)[ch["id"]]["entered"] is True
    assert member.api.get(messages_path(team, ch)).status_code == 200


def test_a_private_channel_is_hidden_from_a_plain_member(admin, member, team):
    ch = channel(admin, team, unique("secret"), visibility="private")
    assert ch["id"] not in listed(member, team)
    answer = member.api.get(messages_path(team, ch))
    assert (answer.status_code, answer.json()) == (404, CHANNEL_NOT_FOUND)


@pytest.mark.parametrize("who", ["admin", "owner"])
def test_a_private_channel_is_open_to_its_creator_and_the_admins(request, admin, team, who):
    ch = channel(admin, team, unique("secret"), visibility="private")
    viewer = request.getfixturevalue(who)
    assert listed(viewer, team)[ch["id"]]["entered"] is True
    assert viewer.api.get(messages_path(team, ch)).status_code == 200


def test_a_password_channel_is_listed_to_members_as_not_entered(admin, member, team):
    ch = channel(admin, team, unique("locked"), visibility="password", password=PASSWORD)
    assert listed(member, team)[ch["id"]]["entered"] is False


def test_a_password_channel_refuses_its_messages_until_joined(admin, member, team):
    ch = channel(admin, team, unique("locked"), visibility="password", password=PASSWORD)
    answer = member.api.get(messages_path(team, ch))
    assert (answer.status_code, answer.json()) == (403, {"message": "This channel needs its password: join it first."})


def test_joining_a_password_channel_with_a_wrong_password_is_refused(admin, member, team):
    ch = channel(admin, team, unique("locked"), visibility="password", password=PASSWORD)
    answer = member.api.post(channel_path(team, ch, "/join"), json={"password": "open barley"})
    assert refused(answer, "password") == ["The password is incorrect."]
    assert member.api.get(messages_path(team, ch)).status_code == 403


def test_joining_a_password_channel_with_its_password_opens_it(admin, member, team):
    ch = channel(admin, team, unique("locked"), visibility="password", password=PASSWORD)
    joined = member.api.post(channel_path(team, ch, "/join"), json={"password": PASSWORD})
    assert joined.status_code == 200, joined.text
    assert joined.json()["data"]["entered"] is True
    assert listed(member, team)[ch["id"]]["entered"] is True
    assert member.api.get(messages_path(team, ch)).status_code == 200


def test_an_admin_enters_a_password_channel_without_its_password(owner, admin, team):
    ch = channel(admin, team, unique("locked"), visibility="password", password=PASSWORD)
    assert listed(owner, team)[ch["id"]]["entered"] is True
    assert owner.api.get(messages_path(team, ch)).status_code == 200


def test_an_admin_adds_a_member_to_a_private_channel_who_then_sees_it(admin, member, team):
    ch = channel(admin, team, unique("secret"), visibility="private")
    added = admin.api.post(channel_path(team, ch, "/members"), json={"user_id": member.id})
    assert added.status_code == 200, added.text
    assert listed(member, team)[ch["id"]]["entered"] is True
    assert member.api.get(messages_path(team, ch)).status_code == 200


def test_only_members_of_the_workspace_can_be_added_to_a_channel(admin, stranger, team):
    ch = channel(admin, team, unique("secret"), visibility="private")
    answer = admin.api.post(channel_path(team, ch, "/members"), json={"user_id": stranger.id})
    assert refused(answer, "user_id") == ["The selected user id is invalid."]


def test_a_member_cannot_add_anyone_to_a_channel(admin, member, team):
    ch = channel(admin, team, unique("locked"), visibility="password", password=PASSWORD)
    assert member.api.post(channel_path(team, ch, "/members"), json={"user_id": member.id}).status_code == 403


# Channels belong to one workspace

CHANNEL_CALLS = [("GET", "/messages"), ("POST", "/messages"), ("PUT", ""), ("DELETE", ""), ("POST", "/join"),
                 ("POST", "/members")]


@pytest.mark.parametrize(("method", "rest"), CHANNEL_CALLS)
@pytest.mark.parametrize("who", ["owner", "stranger"], ids=["admin-of-both", "owner-of-the-other-only"])
def test_a_channel_is_not_found_under_another_workspaces_path(request, admin, team, elsewhere, who, method, rest):
    ch = channel(admin, team, unique("here"))
    viewer = request.getfixturevalue(who)
    answer = viewer.api.request(method, channel_path(elsewhere, ch, rest),
                                json={"content": "hi", "name": "moved", "user_id": viewer.id})
    assert (answer.status_code, answer.json()) == (404, CHANNEL_NOT_FOUND)
    assert ch["id"] in listed(admin, team)


@pytest.mark.parametrize(("method", "rest"), CHANNEL_CALLS)
@pytest.mark.parametrize("channel_id", [UNKNOWN_ID, "garbage"])
def test_an_unknown_or_garbage_channel_id_is_not_found(owner, team, channel_id, method, rest):
    answer = owner.api.request(method, channel_path(team, {"id": channel_id}, rest),
                               json={"content": "hi", "name": "x", "user_id": owner.id})
    assert (answer.status_code, answer.json()) == (404, CHANNEL_NOT_FOUND)


# Invites

def test_an_admin_creates_an_invite_with_a_token_and_a_link(admin, team):
    answer = admin.api.post(path(team, "/invites"), json={})
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    assert set(data) == INVITE_KEYS | {"token", "url"}
    assert (data["workspace_id"], data["created_by"], data["expires_at"]) == (team["id"], admin.id, None)
    assert re.fullmatch(r"[0-9a-f]{32,}", data["token"])  # at least 128 bits
    assert data["url"].endswith("/invites/" + data["token"])


def test_a_member_cannot_create_an_invite(member, team):
    assert member.api.post(path(team, "/invites"), json={}).status_code == 403


@pytest.mark.parametrize("days", [1, 7, 365])
def test_an_invite_expires_after_the_days_asked_for(admin, team, days):
    expires = parse(invite(admin, team, expires_in_days=days)["expires_at"])
    expected = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)
    assert abs(expires - expected) < dt.timedelta(minutes=1)


@pytest.mark.parametrize("days", [0, 366, -1])
def test_an_invite_expires_in_1_to_365_days(admin, team, days):
    assert refused(admin.api.post(path(team, "/invites"), json={"expires_in_days": days}), "expires_in_days")


def test_admins_list_the_invites_without_their_tokens(admin, owner, team):
    made = invite(admin, team)
    answer = owner.api.get(path(team, "/invites"))
    assert answer.status_code == 200
    page = answer.json()
    assert set(page) == {"data", "meta", "links"}
    shown = {i["id"]: i for i in page["data"]}[made["id"]]
    assert set(shown) == INVITE_KEYS
    assert made["token"] not in answer.text


def test_a_member_cannot_list_the_invites(member, team):
    assert member.api.get(path(team, "/invites")).status_code == 403


def test_an_invite_is_previewed_without_signing_in(owner, admin, team):
    made = invite(admin, team)
    answer = owner.anonymous.get(f"/invites/{made['token']}")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"data": {"workspace": {"id": team["id"], "name": team["name"], "visibility": "private",
                                                    "member_count": 3},
                                      "expires_at": None}}


@pytest.mark.parametrize("token", ["0" * 64, "not-a-token", "x" * 300])
def test_a_bad_token_is_not_a_valid_invite(owner, stranger, token):
    preview = owner.anonymous.get(f"/invites/{token}")
    assert (preview.status_code, preview.json()) == (404, NOT_VALID)
    accept = stranger.api.post(f"/invites/{token}/accept")
    assert (accept.status_code, accept.json()) == (404, NOT_VALID)


def test_a_revoked_invite_is_no_longer_valid(owner, admin, stranger, team):
    made = invite(admin, team)
    revoked = admin.api.delete(path(team, f"/invites/{made['id']}"))
    assert (revoked.status_code, revoked.content) == (204, b"")
    assert made["id"] not in {i["id"] for i in admin.api.get(path(team, "/invites")).json()["data"]}
    preview = owner.anonymous.get(f"/invites/{made['token']}")
    assert (preview.status_code, preview.json()) == (404, NOT_VALID)
    accept = stranger.api.post(f"/invites/{made['token']}/accept")
    assert (accept.status_code, accept.json()) == (404, NOT_VALID)


def test_an_invite_cannot_be_revoked_under_another_workspaces_path(owner, admin, elsewhere, team):
    made = invite(admin, team)
    answer = owner.api.delete(path(elsewhere, f"/invites/{made['id']}"))
    assert (answer.status_code, answer.json()) == (404, {"message": "Invite not found."})
    assert owner.anonymous.get(f"/invites/{made['token']}").status_code == 200


def test_the_invites_of_a_deleted_workspace_are_no_longer_valid(owner, stranger):
    ws = workspace(owner, unique("Short-lived"))
    made = invite(owner, ws)
    assert owner.api.delete(path(ws)).status_code == 204
    preview = owner.anonymous.get(f"/invites/{made['token']}")
    assert (preview.status_code, preview.json()) == (404, NOT_VALID)
    accept = stranger.api.post(f"/invites/{made['token']}/accept")
    assert (accept.status_code, accept.json()) == (404, NOT_VALID)


def test_a_member_cannot_revoke_an_invite(admin, member, team):
    made = invite(admin, team)
    assert member.api.delete(path(team, f"/invites/{made['id']}")).status_code == 403
    assert member.anonymous.get(f"/invites/{made['token']}").status_code == 200


def test_an_expired_invite_is_no_longer_valid(owner, admin, stranger, team, database):
    made = invite(admin, team, expires_in_days=1)
    past = database.utcnow() - dt.timedelta(minutes=1)
    assert database.Invite.update(expires_at=past).where(database.Invite.token_hash == sha256(made["token"])).execute()
    preview = owner.anonymous.get(f"/invites/{made['token']}")
    assert (preview.status_code, preview.json()) == (404, NOT_VALID)
    accept = stranger.api.post(f"/invites/{made['token']}/accept")
    assert (accept.status_code, accept.json()) == (404, NOT_VALID)


def test_accepting_an_invite_needs_sign_in(owner, admin, team):
    made = invite(admin, team)
    answer = owner.anonymous.post(f"/invites/{made['token']}/accept")
    assert (answer.status_code, answer.json()) == (401, {"message": "Unauthenticated."})


def test_accepting_an_invite_adds_the_user_201_then_200_with_the_same_membership(owner, stranger):
    ws = workspace(owner, unique("Welcoming"))
    made = invite(owner, ws)
    first = stranger.api.post(f"/invites/{made['token']}/accept")
    assert first.status_code == 201, first.text
    data = first.json()["data"]
    assert (data["workspace_id"], data["user_id"], data["role"]) == (ws["id"], stranger.id, "member")
    again = stranger.api.post(f"/invites/{made['token']}/accept")
    assert (again.status_code, again.json()["data"]) == (200, data)
    assert stranger.api.get(path(ws)).json()["data"]["role"] == "member"


def test_only_the_sha256_of_an_invite_token_is_stored(admin, team, database):
    made = invite(admin, team)
    row = database.Invite.get_by_id(ULID.from_str(made["id"].upper()).to_uuid())
    assert row.token_hash != made["token"]
    assert row.token_hash == sha256(made["token"])


# Signing in

@pytest.mark.parametrize(("method", "route"), [
    ("GET", f"/workspaces/{UNKNOWN_ID}/channels"), ("POST", f"/workspaces/{UNKNOWN_ID}/channels"),
    ("PUT", f"/workspaces/{UNKNOWN_ID}/channels/{UNKNOWN_ID}"),
    ("DELETE", f"/workspaces/{UNKNOWN_ID}/channels/{UNKNOWN_ID}"),
    ("POST", f"/workspaces/{UNKNOWN_ID}/channels/{UNKNOWN_ID}/join"),
    ("POST", f"/workspaces/{UNKNOWN_ID}/channels/{UNKNOWN_ID}/members"),
    ("GET", f"/workspaces/{UNKNOWN_ID}/invites"), ("POST", f"/workspaces/{UNKNOWN_ID}/invites"),
    ("DELETE", f"/workspaces/{UNKNOWN_ID}/invites/{UNKNOWN_ID}"), ("POST", "/invites/some-token/accept"),
])
def test_channel_and_invite_routes_need_sign_in(owner, method, route):
    answer = owner.anonymous.request(method, route, json={} if method in ("POST", "PUT") else None)
    assert (answer.status_code, answer.json()) == (401, {"message": "Unauthenticated."})
