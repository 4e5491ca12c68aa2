"""RosettaChat channel messages: posting and its rules, threads, reading one, editing, deleting,
cursor paging (stable while others post), the same rows read through Sector, and automation posts."""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace

import pytest
from ulid import ULID

from tests import chat
from tests.api import Account, unique
from tests.rosetta import AppUser, Browser
from tests.stack import wait_for

MESSAGE_FIELDS = {"id", "author", "type", "original_content", "language", "translation_status", "translation_error",
                  "display_content", "display_source", "parent_message_id", "reply_count", "created_at", "edited_at",
                  "attachments"}


def as_uuid(ulid: str) -> uuid.UUID:
    return ULID.from_str(ulid.upper()).to_uuid()


def as_ulid(uuid_text: str) -> str:
    return str(ULID.from_uuid(uuid.UUID(uuid_text))).lower()


@pytest.fixture(scope="module")
def team(rosetta_url):
    """A private workspace with an owner, an admin and two members, and two channels."""
    owner, admin = AppUser(rosetta_url, name="Owner"), AppUser(rosetta_url, name="Admin")
    member, other = AppUser(rosetta_url, name="Member"), AppUser(rosetta_url, name="Other")
    ws = chat.workspace(owner, "Team")
    chat.join(admin, ws, "admin", by=owner)
    chat.join(member, ws, by=owner)
    chat.join(other, ws, by=owner)
    return SimpleNamespace(owner=owner, admin=admin, member=member, other=other, ws=ws,
                           general=chat.channel(owner, ws, "general"), random=chat.channel(owner, ws, "random"))


@pytest.fixture
def room(team):
    """A channel of the team's workspace of its own, for tests that count what is in it."""
    return chat.channel(team.owner, team.ws, unique("room"))


def one_path(ws: dict, ch: dict, message_id: str) -> str:
    return f"{chat.messages_path(ws, ch)}/{message_id}"


def refused_on(answer, field: str) -> bool:
    return answer.status_code == 422 and field in answer.json()["errors"]


# Posting

def test_a_member_posts_a_text_message_and_gets_it_back_as_stored(team):
    answer = team.member.api.post(chat.messages_path(team.ws, team.general), json={"content": "Hello, team!"})
    assert answer.status_code == 201, answer.text
    message = answer.json()["data"]
    assert set(message) == MESSAGE_FIELDS
    assert message["author"] == {"id": team.member.id, "name": "Member", "kind": "user"}
    assert (message["type"], message["original_content"], message["language"], message["translation_status"],
            message["display_content"], message["display_source"], message["parent_message_id"],
            message["reply_count"], message["edited_at"]) == (
        "text", "Hello, team!", None, "pending", "Hello, team!", "original", None, 0, None)
    assert message["created_at"].endswith("Z")
    # The session stack translates with provider "none": the worker marks the message skipped.
    read = team.member.api.get(one_path(team.ws, team.general, message["id"])).json()["data"]
    assert read["translation_status"] in ("pending", "skipped")
    assert {**read, "translation_status": "pending"} == message


def test_skip_translation_marks_the_message_skipped(team):
    message = chat.post(team.member, team.ws, team.general, "as is", skip_translation=True)
    assert message["translation_status"] == "skipped"
    assert message["display_content"] == "as is"


def test_content_is_required_without_attachments(team):
    for body in ({}, {"content": None}, {"type": "text"}):
        answer = team.member.api.post(chat.messages_path(team.ws, team.general), json=body)
        assert refused_on(answer, "content"), answer.text


def test_content_longer_than_4000_characters_is_refused(team):
    path = chat.messages_path(team.ws, team.general)
    assert refused_on(team.member.api.post(path, json={"content": "x" * 4001}), "content")
    assert team.member.api.post(path, json={"content": "x" * 4000}).status_code == 201


def test_attachment_ids_of_no_staged_file_of_the_author_are_refused(team):
    path = chat.messages_path(team.ws, team.general)
    for body in ({"attachment_ids": ["01hzzzzzzzzzzzzzzzzzzzzzzz"]},
                 {"content": "with a file", "attachment_ids": ["01hzzzzzzzzzzzzzzzzzzzzzzz"]}):
        answer = team.member.api.post(path, json=body)
        assert refused_on(answer, "attachment_ids"), answer.text


def test_a_client_cannot_post_a_system_message(team):
    answer = team.member.api.post(chat.messages_path(team.ws, team.general), json={"content": "hi", "type": "system"})
    assert refused_on(answer, "type"), answer.text


def test_a_reply_must_be_to_a_top_level_message_of_the_same_channel(team):
    elsewhere = chat.post(team.member, team.ws, team.random, "in random")
    parent = chat.post(team.member, team.ws, team.general, "a thread")
    reply = chat.post(team.member, team.ws, team.general, "a reply", parent_message_id=parent["id"])
    path = chat.messages_path(team.ws, team.general)
    for parent_id in (elsewhere["id"], reply["id"], str(ULID()).lower(), "not-a-ulid"):
        answer = team.member.api.post(path, json={"content": "nested", "parent_message_id": parent_id})
        assert refused_on(answer, "parent_message_id"), (parent_id, answer.text)


def test_a_reply_counts_in_its_parents_reply_count(team):
    parent = chat.post(team.member, team.ws, team.general, "thread start")
    reply = chat.post(team.other, team.ws, team.general, "reply", parent_message_id=parent["id"])
    assert reply["parent_message_id"] == parent["id"]
    chat.post(team.member, team.ws, team.general, "another", parent_message_id=parent["id"])
    read = team.member.api.get(one_path(team.ws, team.general, parent["id"]))
    assert read.json()["data"]["reply_count"] == 2


def test_deleting_a_reply_takes_it_off_its_parents_reply_count(team):
    parent = chat.post(team.member, team.ws, team.general, "thread start")
    reply = chat.post(team.other, team.ws, team.general, "reply", parent_message_id=parent["id"])
    assert team.other.api.delete(one_path(team.ws, team.general, reply["id"])).status_code == 204
    read = team.member.api.get(one_path(team.ws, team.general, parent["id"]))
    assert read.json()["data"]["reply_count"] == 0
    thread = team.member.api.get(chat.messages_path(team.ws, team.general), params={"parent_message_id": parent["id"]})
    assert thread.json()["data"] == []


def test_prefer_respond_async_answers_202_with_the_location_of_the_message(team, origin_url):
    answer = team.member.api.post(chat.messages_path(team.ws, team.general), json={"content": "later"},
                                  headers={"Prefer": "respond-async"})
    assert answer.status_code == 202, answer.text
    location = answer.headers["Location"]
    assert location.startswith(f"/api/v1{chat.messages_path(team.ws, team.general)}/")
    assert wait_for(lambda: team.member.api.get(origin_url + location).status_code == 200, timeout=15)
    assert team.member.api.get(origin_url + location).json()["data"]["original_content"] == "later"


def test_a_retry_with_the_same_idempotency_key_posts_once(team, database):
    content, key = unique("once"), unique("key")
    path = chat.messages_path(team.ws, team.general)
    first = team.member.api.post(path, json={"content": content}, headers={"Idempotency-Key": key})
    again = team.member.api.post(path, json={"content": content}, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    stored = database.Message.select().where((database.Message.channel == as_uuid(team.general["id"]))
                                             & (database.Message.body == content))
    assert stored.count() == 1


# One message: read, edit, delete

def test_only_the_author_edits_a_message_and_edited_at_is_set(team):
    message = chat.post(team.member, team.ws, team.general, "draft")
    path = one_path(team.ws, team.general, message["id"])
    assert team.other.api.patch(path, json={"content": "hijacked"}).status_code == 403
    assert team.owner.api.patch(path, json={"content": "hijacked"}).status_code == 403
    edited = team.member.api.patch(path, json={"content": "final"})
    assert edited.status_code == 200, edited.text
    data = edited.json()["data"]
    assert (data["original_content"], data["display_content"]) == ("final", "final")
    assert data["edited_at"] is not None and data["edited_at"] >= data["created_at"]
    assert team.other.api.get(path).json()["data"]["original_content"] == "final"


def test_an_edit_needs_content(team):
    message = chat.post(team.member, team.ws, team.general, "draft")
    answer = team.member.api.patch(one_path(team.ws, team.general, message["id"]), json={})
    assert refused_on(answer, "content")


def test_another_plain_member_cannot_delete_a_message(team):
    message = chat.post(team.member, team.ws, team.general, "mine")
    path = one_path(team.ws, team.general, message["id"])
    assert team.other.api.delete(path).status_code == 403
    assert team.member.api.get(path).status_code == 200


def test_the_author_deletes_a_message_and_it_is_gone(team, room):
    message = chat.post(team.member, team.ws, room, "regret")
    path = one_path(team.ws, room, message["id"])
    assert team.member.api.delete(path).status_code == 204
    assert team.member.api.get(path).status_code == 404
    assert team.member.api.get(chat.messages_path(team.ws, room)).json()["data"] == []


def test_an_admin_deletes_anyones_message(team, room):
    kept = chat.post(team.member, team.ws, room, "kept")
    message = chat.post(team.member, team.ws, room, "off topic")
    path = one_path(team.ws, room, message["id"])
    assert team.admin.api.delete(path).status_code == 204
    assert team.member.api.get(path).status_code == 404
    listed = team.member.api.get(chat.messages_path(team.ws, room)).json()["data"]
    assert [m["id"] for m in listed] == [kept["id"]]


# Lists and cursors

def test_the_channel_list_is_newest_first_and_holds_top_level_messages(team, room):
    first = chat.post(team.member, team.ws, room, "first")
    chat.post(team.member, team.ws, room, "a reply", parent_message_id=first["id"])
    second = chat.post(team.other, team.ws, room, "second")
    listed = team.member.api.get(chat.messages_path(team.ws, room))
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["data"]] == [second["id"], first["id"]]
    assert listed.json()["data"][1]["reply_count"] == 1


def test_per_page_is_50_by_default_and_must_be_between_1_and_100(team, room):
    path = chat.messages_path(team.ws, room)
    assert team.member.api.get(path).json()["meta"]["per_page"] == 50
    assert team.member.api.get(path, params={"per_page": 100}).json()["meta"]["per_page"] == 100
    for bad in (0, 101, "many"):
        assert refused_on(team.member.api.get(path, params={"per_page": bad}), "per_page"), bad


def test_links_next_goes_to_older_messages_and_links_prev_to_newer_ones(team, room):
    posted = [chat.post(team.member, team.ws, room, f"m{i}")["id"] for i in range(5)]
    newest_first = posted[::-1]
    top = team.member.api.get(chat.messages_path(team.ws, room), params={"per_page": 2}).json()
    assert [m["id"] for m in top["data"]] == newest_first[:2]
    assert top["meta"]["per_page"] == 2 and top["meta"]["next_cursor"] == newest_first[1]
    assert top["links"]["prev"] is None and f"before={newest_first[1]}" in top["links"]["next"]

    middle = team.member.api.get(top["links"]["next"]).json()
    assert [m["id"] for m in middle["data"]] == newest_first[2:4]
    assert f"after={newest_first[2]}" in middle["links"]["prev"]

    back = team.member.api.get(middle["links"]["prev"]).json()
    assert [m["id"] for m in back["data"]] == newest_first[:2]

    last = team.member.api.get(middle["links"]["next"]).json()
    assert [m["id"] for m in last["data"]] == newest_first[4:]
    assert last["links"]["next"] is None and last["meta"]["next_cursor"] is None


def test_a_thread_is_listed_oldest_first_by_parent_message_id(team, room):
    parent = chat.post(team.member, team.ws, room, "thread")
    replies = [chat.post(team.other, team.ws, room, f"r{i}", parent_message_id=parent["id"])["id"] for i in range(3)]
    chat.post(team.member, team.ws, room, "unrelated")
    path = chat.messages_path(team.ws, room)
    thread = team.member.api.get(path, params={"parent_message_id": parent["id"], "per_page": 2}).json()
    assert [m["id"] for m in thread["data"]] == replies[:2]
    assert all(m["parent_message_id"] == parent["id"] for m in thread["data"])
    rest = team.member.api.get(thread["links"]["next"]).json()
    assert [m["id"] for m in rest["data"]] == replies[2:]


def test_paging_yields_each_message_once_while_another_client_posts(team, room):
    existing = [chat.post(team.member, team.ws, room, f"old {i}")["id"] for i in range(12)]
    path = chat.messages_path(team.ws, room)
    page = team.member.api.get(path, params={"per_page": 2}).json()
    walked = [m["id"] for m in page["data"]]
    stop, posted = threading.Event(), []

    def keep_posting():
        while not stop.is_set():
            posted.append(chat.post(team.other, team.ws, room, "new")["id"])

    poster = threading.Thread(target=keep_posting)
    poster.start()
    try:
        while page["links"]["next"]:
            seen = len(posted)
            assert wait_for(lambda: len(posted) > seen, timeout=10)  # a new message before each page
            page = team.member.api.get(page["links"]["next"]).json()
            walked.extend(m["id"] for m in page["data"])
    finally:
        stop.set()
        poster.join()
    assert walked == existing[::-1]


# Who may read and post

def test_a_non_member_of_a_public_workspace_is_forbidden_to_read_or_post(rosetta_url, app_user):
    owner = AppUser(rosetta_url)
    ws = chat.workspace(owner, "Open", visibility="public")
    ch = chat.channel(owner, ws)
    message = chat.post(owner, ws, ch, "members only")
    assert app_user.api.get(chat.messages_path(ws, ch)).status_code == 403
    assert app_user.api.get(one_path(ws, ch, message["id"])).status_code == 403
    assert app_user.api.post(chat.messages_path(ws, ch), json={"content": "hi"}).status_code == 403


def test_a_non_member_of_a_private_workspace_is_told_it_does_not_exist(team, app_user):
    message = chat.post(team.member, team.ws, team.general, "secret")
    assert app_user.api.get(chat.messages_path(team.ws, team.general)).status_code == 404
    assert app_user.api.get(one_path(team.ws, team.general, message["id"])).status_code == 404
    assert app_user.api.post(chat.messages_path(team.ws, team.general), json={"content": "hi"}).status_code == 404


def test_a_message_is_not_found_under_another_channel(team):
    message = chat.post(team.member, team.ws, team.general, "in general")
    path = one_path(team.ws, team.random, message["id"])
    assert team.member.api.get(path).status_code == 404
    assert team.member.api.patch(path, json={"content": "moved"}).status_code == 404
    assert team.member.api.delete(path).status_code == 404
    assert team.member.api.get(one_path(team.ws, team.general, message["id"])).status_code == 200


# The same rows through Sector

@pytest.fixture(scope="module")
def shared(base_url, rosetta_url, database):
    """A Sector group and channel made by a Sector account, with a RosettaChat user made a member in the DB."""
    owner = Account(base_url)
    group = owner.group("Shared")
    sector_channel = owner.channel(group)
    reader = AppUser(rosetta_url, name="Reader")
    database.Membership.insert(workspace=uuid.UUID(group["id"]), user=reader.id, role="member",
                               created_at=database.utcnow()).execute()
    ws, ch = {"id": as_ulid(group["id"])}, {"id": as_ulid(sector_channel["id"])}
    return SimpleNamespace(owner=owner, group=group, channel=sector_channel, reader=reader, ws=ws, ch=ch)


def test_a_message_posted_through_sector_is_listed_through_rosettachat(shared):
    posted = shared.owner.post(shared.channel, "from Sector")
    assert posted.status_code == 201, posted.text
    listed = shared.reader.api.get(chat.messages_path(shared.ws, shared.ch))
    assert listed.status_code == 200, listed.text
    found = [m for m in listed.json()["data"] if m["id"] == as_ulid(posted.json()["id"])]
    assert len(found) == 1
    assert (found[0]["original_content"], found[0]["display_content"], found[0]["author"]["kind"]) == (
        "from Sector", "from Sector", "user")


def test_a_message_posted_through_rosettachat_is_read_through_sector(shared, database):
    message = chat.post(shared.reader, shared.ws, shared.ch, "from RosettaChat")
    message_uuid = str(as_uuid(message["id"]))
    read = shared.owner.api.get(f"/group/{shared.group['id']}/channel/{shared.channel['id']}/message/{message_uuid}")
    assert read.status_code == 200, read.text
    body = read.json()
    author_uid = str(database.User.get_by_id(shared.reader.id).uid)
    assert (body["id"], body["body"], body["channel"], body["author"], body["pinned"]) == (
        message_uuid, "from RosettaChat", shared.channel["id"], author_uid, False)


def test_a_rosettachat_user_renders_as_a_sector_account(shared, database):
    uid = database.User.get_by_id(shared.reader.id).uid
    read = shared.owner.api.get(f"/account/{uid}")
    assert read.status_code == 200, read.text
    assert read.json()["id"] == str(uid)


def test_a_private_rosettachat_channel_stays_private_through_sector(shared, base_url, database):
    member = Account(base_url)  # a plain member of the group, through Sector
    database.Membership.insert(workspace=uuid.UUID(shared.group["id"]),
                               user=database.User.get(database.User.uid == uuid.UUID(member.id)).id,
                               role="member", created_at=database.utcnow()).execute()
    database.Membership.update(role="admin").where(  # so the RosettaChat reader may make channels
        (database.Membership.workspace == uuid.UUID(shared.group["id"]))
        & (database.Membership.user == shared.reader.id)).execute()
    private = chat.channel(shared.reader, shared.ws, "hidden", visibility="private")
    message = chat.post(shared.reader, shared.ws, private, "for the few")
    group, channel_uuid = shared.group["id"], str(as_uuid(private["id"]))
    read = member.api.get(f"/group/{group}/channel/{channel_uuid}/message/{as_uuid(message['id'])}")
    assert read.status_code == 404, read.text
    assert member.api.get(f"/group/{group}/channel/{channel_uuid}").status_code == 404
    found = member.api.post("/message/search", json={"body": "for the few"})
    assert found.status_code == 200 and found.json() == [], found.text
    assert member.api.post("/channel/search", json={"name": "hidden"}).json() == []


# Automation

@pytest.fixture(scope="module")
def automation(team):
    minted = team.member.api.post("/me/tokens", json={"name": "bot", "abilities": ["automation:post"]})
    assert minted.status_code == 201, minted.text
    return team.member.with_token(minted.json()["data"]["token"])


def automation_path(ws: dict, ch: dict) -> str:
    return f"/automation{chat.messages_path(ws, ch)}"


def test_an_automation_token_posts_as_automation(team, automation):
    answer = automation.post(automation_path(team.ws, team.general), json={"content": "Deploy finished."})
    assert answer.status_code == 201, answer.text
    message = answer.json()["data"]
    assert message["author"] == {"id": team.member.id, "name": "Member", "kind": "automation"}
    read = team.other.api.get(one_path(team.ws, team.general, message["id"]))
    assert read.json()["data"]["author"]["kind"] == "automation"


def test_automation_posts_follow_the_content_rules(team, automation):
    assert refused_on(automation.post(automation_path(team.ws, team.general), json={}), "content")


def test_a_full_token_cannot_post_as_automation(team):
    answer = team.member.api.post(automation_path(team.ws, team.general), json={"content": "pretending"})
    assert answer.status_code == 403, answer.text


def test_a_token_with_another_ability_cannot_post_as_automation(team):
    minted = team.member.api.post("/me/tokens", json={"name": "rooms", "abilities": ["temporary-rooms:create"]})
    narrow = team.member.with_token(minted.json()["data"]["token"])
    answer = narrow.post(automation_path(team.ws, team.general), json={"content": "pretending"})
    assert answer.status_code == 403, answer.text


def test_a_web_session_cannot_post_as_automation(team, origin_url):
    browser = Browser(origin_url)
    browser.register()
    answer = browser.post(automation_path(team.ws, team.general), json={"content": "pretending"})
    assert answer.status_code == 403, answer.text


def test_an_automation_token_reaches_no_other_route(team, automation):
    assert automation.get("/workspaces").status_code == 403
    assert automation.get(chat.messages_path(team.ws, team.general)).status_code == 403
    assert automation.post(chat.messages_path(team.ws, team.general), json={"content": "hi"}).status_code == 403


def test_an_automation_token_posts_only_where_its_user_is_a_member(team, app_user):
    minted = app_user.api.post("/me/tokens", json={"name": "bot", "abilities": ["automation:post"]})
    outsider = app_user.with_token(minted.json()["data"]["token"])
    answer = outsider.post(automation_path(team.ws, team.general), json={"content": "intrusion"})
    assert answer.status_code == 404, answer.text
