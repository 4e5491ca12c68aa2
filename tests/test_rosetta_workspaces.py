"""RosettaChat workspaces through HTTP: creating, listing, showing, changing, deleting and joining
them, and their members and roles."""

from __future__ import annotations

import re

import pytest

from tests.api import unique
from tests.chat import channel, crew_of, join, messages_path, workspace
from tests.rosetta import AppUser

ULID = re.compile(r"[0-9a-hjkmnp-tv-z]{26}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
UNKNOWN_ID = "01j0000000000000000000000z"  # a well-formed ULID that names nothing
WORKSPACE_KEYS = {"id", "name", "slug", "description", "visibility", "role", "member_count", "created_at",
                  "updated_at"}
MEMBER_KEYS = {"workspace_id", "user_id", "name", "role", "preferred_language", "joined_at"}
NOT_FOUND = {"message": "Workspace not found."}


@pytest.fixture(scope="module")
def outsider(rosetta_url) -> AppUser:
    return AppUser(rosetta_url, name="Oscar Outsider")


@pytest.fixture(scope="module")
def team(owner, admin, member) -> dict:
    """A private workspace the module's tests only read."""
    return crew_of(owner, admin, member)


@pytest.fixture
def crew(owner, admin, member) -> dict:
    """A private workspace of its own for a test that changes its members."""
    return crew_of(owner, admin, member)


def path(ws: dict, rest: str = "") -> str:
    return f"/workspaces/{ws['id']}{rest}"


def member_path(ws: dict, user: AppUser) -> str:
    return path(ws, f"/members/{user.id}")


def refused(answer, field: str) -> list[str]:
    """The messages of a 422 for `field`."""
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"] == "The given data was invalid."
    return answer.json()["errors"][field]


# Creating

def test_creating_a_workspace_answers_201_with_the_workspace(owner):
    created = owner.api.post("/workspaces", json={"name": "Design Team", "description": "Pixels."})
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert set(data) == WORKSPACE_KEYS
    assert ULID.fullmatch(data["id"])
    assert (data["name"], data["description"], data["member_count"]) == ("Design Team", "Pixels.", 1)
    assert TIMESTAMP.fullmatch(data["created_at"]) and TIMESTAMP.fullmatch(data["updated_at"])


def test_a_new_workspace_is_private_by_default(owner):
    assert workspace(owner, unique("Quiet"))["visibility"] == "private"


def test_the_creator_of_a_workspace_is_its_owner(owner):
    ws = workspace(owner, unique("Mine"))
    assert ws["role"] == "owner"
    members = owner.api.get(path(ws, "/members")).json()["data"]
    assert [(m["user_id"], m["role"]) for m in members] == [(owner.id, "owner")]


def test_a_slug_is_made_from_the_name_when_absent(owner):
    name = unique("Design Team")
    assert workspace(owner, name)["slug"] == name.lower().replace(" ", "-")


def test_a_made_slug_that_is_taken_gets_a_numeric_suffix(owner):
    name = unique("Twin")
    first, second = workspace(owner, name), workspace(owner, name)
    assert second["slug"] == first["slug"] + "-2"


def test_an_explicit_slug_that_is_taken_is_refused(owner):
    slug = workspace(owner, unique("Taken"))["slug"]
    answer = owner.api.post("/workspaces", json={"name": "Another", "slug": slug})
    assert refused(answer, "slug") == ["The slug has already been taken."]


def test_an_explicit_free_slug_is_kept(owner):
    slug = unique("My_Slug")
    assert workspace(owner, "Slugged", slug=slug)["slug"] == slug


@pytest.mark.parametrize("slug", ["has space", "dots.in.it", "ümlaut", "x" * 81],
                         ids=["space", "dot", "non-ascii", "81-chars"])
def test_a_slug_must_be_up_to_80_letters_digits_dashes_or_underscores(owner, slug):
    assert refused(owner.api.post("/workspaces", json={"name": "Bad slug", "slug": slug}), "slug")


@pytest.mark.parametrize("form", [{}, {"name": ""}, {"name": None}], ids=["absent", "empty", "null"])
def test_a_workspace_needs_a_name(owner, form):
    assert refused(owner.api.post("/workspaces", json=form), "name")


def test_a_workspace_name_is_at_most_120_characters(owner):
    assert refused(owner.api.post("/workspaces", json={"name": "n" * 121}), "name")
    assert workspace(owner, "n" * 120)["name"] == "n" * 120


@pytest.mark.parametrize("fields", [{"visibility": "public"}, {"visibility": "password", "password": "open sesame"}],
                         ids=["public", "password"])
def test_a_workspace_keeps_the_visibility_it_is_given(owner, fields):
    assert workspace(owner, unique("Seen"), **fields)["visibility"] == fields["visibility"]


def test_a_visibility_other_than_public_private_or_password_is_refused(owner):
    assert refused(owner.api.post("/workspaces", json={"name": "Odd", "visibility": "secret"}), "visibility")


def test_a_password_workspace_needs_a_password(owner):
    answer = owner.api.post("/workspaces", json={"name": "Locked", "visibility": "password"})
    assert refused(answer, "password") == ["The password field is required when visibility is password."]


@pytest.mark.parametrize("password", ["seven77", "p" * 121], ids=["7-chars", "121-chars"])
def test_a_workspace_password_is_8_to_120_characters(owner, password):
    answer = owner.api.post("/workspaces", json={"name": "Locked", "visibility": "password", "password": password})
    assert refused(answer, "password")


@pytest.mark.parametrize("password", ["eight888", "p" * 120], ids=["8-chars", "120-chars"])
def test_a_workspace_password_of_8_or_120_characters_is_accepted(owner, password):
    assert workspace(owner, unique("Locked"), visibility="password", password=password)["visibility"] == "password"


# Listing and showing

def test_the_workspace_list_is_a_laravel_page_of_the_callers_workspaces(member, team):
    answer = member.api.get("/workspaces", params={"per_page": 100})  # other tests add the member to more
    assert answer.status_code == 200
    page = answer.json()
    assert set(page) == {"data", "meta", "links"}
    assert {"current_page", "per_page", "total", "last_page"} <= set(page["meta"])
    assert {"first", "last", "prev", "next"} <= set(page["links"])
    mine = [w for w in page["data"] if w["id"] == team["id"]]
    assert len(mine) == 1 and mine[0]["role"] == "member" and mine[0]["member_count"] == 3


def test_the_workspace_list_leaves_out_workspaces_the_caller_is_not_in(outsider, team, owner):
    public = workspace(owner, unique("Open"), visibility="public")
    listed = {w["id"] for w in outsider.api.get("/workspaces").json()["data"]}
    assert team["id"] not in listed and public["id"] not in listed


@pytest.mark.parametrize(("who", "role"), [("owner", "owner"), ("admin", "admin"), ("member", "member")])
def test_a_member_sees_the_workspace_with_their_role(request, team, who, role):
    answer = request.getfixturevalue(who).api.get(path(team))
    assert answer.status_code == 200
    assert answer.json()["data"]["id"] == team["id"] and answer.json()["data"]["role"] == role


@pytest.mark.parametrize("workspace_id", ["team", UNKNOWN_ID, "garbage"])
def test_a_private_workspace_is_not_found_for_a_non_member_as_an_unknown_id_is(outsider, team, workspace_id):
    answer = outsider.api.get(f"/workspaces/{team['id'] if workspace_id == 'team' else workspace_id}")
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize("fields", [{"visibility": "public"}, {"visibility": "password", "password": "open sesame"}],
                         ids=["public", "password"])
def test_a_non_member_sees_a_public_or_password_workspace_with_no_role(owner, outsider, fields):
    seen = workspace(owner, unique("Open"), **fields)
    answer = outsider.api.get(path(seen))
    assert answer.status_code == 200
    assert answer.json()["data"]["id"] == seen["id"] and answer.json()["data"]["role"] is None


# Changing and deleting

def test_the_owner_changes_the_workspace(owner):
    ws = workspace(owner, unique("Before"))
    slug = unique("after")
    answer = owner.api.patch(path(ws), json={"name": "After", "description": "New.", "slug": slug,
                                             "visibility": "public"})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert (data["name"], data["description"], data["slug"], data["visibility"]) == ("After", "New.", slug, "public")
    assert owner.api.get(path(ws)).json()["data"] == data


def test_a_slug_taken_by_another_workspace_cannot_be_changed_to(owner):
    taken = workspace(owner, unique("Taken"))["slug"]
    ws = workspace(owner, unique("Mine"))
    assert refused(owner.api.patch(path(ws), json={"slug": taken}), "slug") == ["The slug has already been taken."]
    assert owner.api.patch(path(ws), json={"slug": ws["slug"]}).status_code == 200


@pytest.mark.parametrize("who", ["admin", "member"])
def test_only_the_owner_may_change_the_workspace(request, team, who):
    answer = request.getfixturevalue(who).api.patch(path(team), json={"name": "Taken over"})
    assert answer.status_code == 403


def test_a_non_member_cannot_change_a_private_workspace_they_cannot_see(outsider, team):
    answer = outsider.api.patch(path(team), json={"name": "Taken over"})
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)


def test_a_non_member_cannot_change_or_delete_a_public_workspace(owner, outsider):
    public = workspace(owner, unique("Open"), visibility="public")
    assert outsider.api.patch(path(public), json={"name": "Taken over"}).status_code == 403
    assert outsider.api.delete(path(public)).status_code == 403


@pytest.mark.parametrize("who", ["admin", "member"])
def test_only_the_owner_may_delete_the_workspace(request, team, who):
    assert request.getfixturevalue(who).api.delete(path(team)).status_code == 403


def test_a_non_member_cannot_delete_a_private_workspace_they_cannot_see(outsider, team):
    answer = outsider.api.delete(path(team))
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)


def test_the_owner_deletes_the_workspace_and_it_is_gone(owner):
    ws = workspace(owner, unique("Doomed"))
    deleted = owner.api.delete(path(ws))
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert owner.api.get(path(ws)).status_code == 404
    assert ws["id"] not in {w["id"] for w in owner.api.get("/workspaces").json()["data"]}


# Joining

def test_joining_a_public_workspace_answers_201_then_200_with_the_same_membership(owner, outsider):
    public = workspace(owner, unique("Open"), visibility="public")
    first = outsider.api.post(path(public, "/join"))
    assert first.status_code == 201, first.text
    data = first.json()["data"]
    assert set(data) == MEMBER_KEYS
    assert (data["workspace_id"], data["user_id"], data["role"]) == (public["id"], outsider.id, "member")
    again = outsider.api.post(path(public, "/join"))
    assert (again.status_code, again.json()["data"]) == (200, data)
    assert outsider.api.get(path(public)).json()["data"]["role"] == "member"


def test_joining_a_password_workspace_with_a_wrong_password_is_refused(owner, outsider):
    locked = workspace(owner, unique("Locked"), visibility="password", password="open sesame")
    answer = outsider.api.post(path(locked, "/join"), json={"password": "open barley"})
    assert refused(answer, "password") == ["The password is incorrect."]
    assert outsider.api.get(path(locked)).json()["data"]["role"] is None


def test_joining_a_password_workspace_without_a_password_is_refused(owner, outsider):
    locked = workspace(owner, unique("Locked"), visibility="password", password="open sesame")
    assert refused(outsider.api.post(path(locked, "/join")), "password")


def test_joining_a_password_workspace_with_its_password_answers_201(owner, outsider):
    locked = workspace(owner, unique("Locked"), visibility="password", password="open sesame")
    answer = outsider.api.post(path(locked, "/join"), json={"password": "open sesame"})
    assert answer.status_code == 201, answer.text
    assert (answer.json()["data"]["user_id"], answer.json()["data"]["role"]) == (outsider.id, "member")


def test_a_private_workspace_cannot_be_joined(outsider, team):
    answer = outsider.api.post(path(team, "/join"))
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)


# Members

def test_members_are_listed_with_their_role_and_language(owner, admin, member, team):
    answer = member.api.get(path(team, "/members"))
    assert answer.status_code == 200
    page = answer.json()
    assert set(page) == {"data", "meta", "links"} and page["meta"]["total"] == 3
    assert all(set(m) == MEMBER_KEYS and TIMESTAMP.fullmatch(m["joined_at"]) for m in page["data"])
    assert [(m["user_id"], m["name"], m["role"], m["preferred_language"]) for m in page["data"]] == [
        (owner.id, "Olivia Owner", "owner", None), (admin.id, "Adam Admin", "admin", None),
        (member.id, "Mia Member", "member", None)]


def test_a_non_member_cannot_list_the_members_of_a_private_workspace(outsider, team):
    answer = outsider.api.get(path(team, "/members"))
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)


def test_an_admin_changes_a_members_role_and_language(admin, member, crew):
    answer = admin.api.put(member_path(crew, member), json={"role": "admin", "preferred_language": "ja"})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert (data["user_id"], data["role"], data["preferred_language"]) == (member.id, "admin", "ja")


def test_an_admin_cannot_make_a_member_an_owner(admin, member, crew):
    assert admin.api.put(member_path(crew, member), json={"role": "owner"}).status_code == 403


@pytest.mark.parametrize("role", ["admin", "member"])
def test_an_admin_cannot_demote_an_owner(owner, admin, crew, role):
    assert admin.api.put(member_path(crew, owner), json={"role": role}).status_code == 403


def test_an_owner_makes_a_member_an_owner(owner, member, crew):
    answer = owner.api.put(member_path(crew, member), json={"role": "owner"})
    assert (answer.status_code, answer.json()["data"]["role"]) == (200, "owner")


def test_a_member_sets_their_own_preferred_language(member, crew):
    answer = member.api.put(member_path(crew, member), json={"role": "member", "preferred_language": "th"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["data"]["role"], answer.json()["data"]["preferred_language"]) == ("member", "th")


def test_a_member_cannot_change_their_own_role(member, crew):
    assert member.api.put(member_path(crew, member), json={"role": "admin"}).status_code == 403


def test_a_member_cannot_change_another_members_role(admin, member, crew):
    assert member.api.put(member_path(crew, admin), json={"role": "member"}).status_code == 403


def test_a_role_must_be_owner_admin_or_member(owner, member, crew):
    assert refused(owner.api.put(member_path(crew, member), json={"role": "king"}), "role")


def test_the_last_owner_cannot_be_demoted(owner, crew):
    answer = owner.api.put(member_path(crew, owner), json={"role": "admin"})
    assert refused(answer, "role") == ["The workspace must keep at least one owner."]


def test_one_of_two_owners_can_be_demoted(owner, admin, crew):
    assert owner.api.put(member_path(crew, admin), json={"role": "owner"}).status_code == 200
    answer = admin.api.put(member_path(crew, owner), json={"role": "member"})
    assert (answer.status_code, answer.json()["data"]["role"]) == (200, "member")


def test_an_admin_removes_a_member(admin, member, crew):
    removed = admin.api.delete(member_path(crew, member))
    assert (removed.status_code, removed.content) == (204, b"")
    listed = admin.api.get(path(crew, "/members")).json()["data"]
    assert member.id not in {m["user_id"] for m in listed}


def test_a_member_cannot_remove_another_member(admin, member, crew):
    assert member.api.delete(member_path(crew, admin)).status_code == 403


def test_a_member_may_leave_the_workspace(member, crew):
    left = member.api.delete(member_path(crew, member))
    assert (left.status_code, left.content) == (204, b"")
    assert member.api.get(path(crew)).status_code == 404


def test_the_last_owner_cannot_leave(owner, crew):
    answer = owner.api.delete(member_path(crew, owner))
    assert refused(answer, "role") == ["The workspace must keep at least one owner."]


def test_an_admin_cannot_remove_an_owner(owner, admin, crew):
    assert admin.api.delete(member_path(crew, owner)).status_code == 403


def test_a_removed_member_no_longer_reaches_the_channels_of_a_private_workspace(owner, admin, member, crew):
    general = channel(owner, crew, "general")
    assert member.api.get(messages_path(crew, general)).status_code == 200
    assert admin.api.delete(member_path(crew, member)).status_code == 204
    assert member.api.get(path(crew, "/channels")).status_code == 404
    assert member.api.get(messages_path(crew, general)).status_code == 404


def test_a_removed_member_who_is_invited_back_no_longer_sees_the_private_channels(owner, admin, member, crew):
    secret = channel(owner, crew, "secret", visibility="private")
    added = owner.api.post(path(crew, f"/channels/{secret['id']}/members"), json={"user_id": member.id})
    assert added.status_code == 200, added.text
    assert member.api.get(messages_path(crew, secret)).status_code == 200
    assert admin.api.delete(member_path(crew, member)).status_code == 204
    join(member, crew, by=admin)
    assert secret["id"] not in {ch["id"] for ch in member.api.get(path(crew, "/channels")).json()["data"]}
    assert member.api.get(messages_path(crew, secret)).status_code == 404


def test_a_member_who_left_a_public_workspace_is_refused_its_channels(owner, outsider):
    public = workspace(owner, unique("Open"), visibility="public")
    general = channel(owner, public, "general")
    assert outsider.api.post(path(public, "/join")).status_code == 201
    assert outsider.api.get(messages_path(public, general)).status_code == 200
    assert outsider.api.delete(member_path(public, outsider)).status_code == 204
    not_a_member = {"message": "You are not a member of this workspace."}
    for answer in (outsider.api.get(path(public, "/channels")), outsider.api.get(messages_path(public, general))):
        assert (answer.status_code, answer.json()) == (403, not_a_member)


# Signing in

@pytest.mark.parametrize(("method", "route"), [
    ("GET", "/workspaces"), ("POST", "/workspaces"), ("GET", f"/workspaces/{UNKNOWN_ID}"),
    ("PATCH", f"/workspaces/{UNKNOWN_ID}"), ("DELETE", f"/workspaces/{UNKNOWN_ID}"),
    ("POST", f"/workspaces/{UNKNOWN_ID}/join"), ("GET", f"/workspaces/{UNKNOWN_ID}/members"),
    ("PUT", f"/workspaces/{UNKNOWN_ID}/members/1"), ("DELETE", f"/workspaces/{UNKNOWN_ID}/members/1"),
])
def test_workspace_and_member_routes_need_sign_in(owner, method, route):
    answer = owner.anonymous.request(method, route, json={} if method in ("POST", "PATCH", "PUT") else None)
    assert (answer.status_code, answer.json()) == (401, {"message": "Unauthenticated."})
