"""RosettaChat direct conversations: one per pair, opened from either side; their messages, read
marks and unread counts; and finding a recipient by email (rate limited)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.rosetta import AppUser, new_email
from tests.stack import wait_for


def open_conversation(user: AppUser, other: AppUser):
    return user.api.post("/direct-conversations", json={"participant_user_id": str(other.id)})


def messages_of(conversation: dict) -> str:
    return f"/direct-conversations/{conversation['id']}/messages"


def listed(user: AppUser, conversation: dict) -> dict:
    """The conversation as it shows in the user's list."""
    found = [c for c in user.api.get("/direct-conversations", params={"per_page": 100}).json()["data"]
             if c["id"] == conversation["id"]]
    assert len(found) == 1
    return found[0]


@pytest.fixture(scope="module")
def pair(rosetta_url):
    """Two users with a conversation open between them, and a third who is not in it."""
    ada, bob = AppUser(rosetta_url, name="Ada"), AppUser(rosetta_url, name="Bob")
    opened = open_conversation(ada, bob)
    assert opened.status_code == 201, opened.text
    return SimpleNamespace(ada=ada, bob=bob, third=AppUser(rosetta_url, name="Third"), conversation=opened.json()["data"])


@pytest.fixture
def strangers(rosetta_url):
    """Two users with no conversation yet."""
    return AppUser(rosetta_url, name="Cy"), AppUser(rosetta_url, name="Di")


# Opening

def test_opening_a_conversation_answers_201_with_the_other_participant(strangers):
    cy, di = strangers
    opened = open_conversation(cy, di)
    assert opened.status_code == 201, opened.text
    data = opened.json()["data"]
    assert set(data) == {"id", "participant", "last_message", "unread_count", "created_at"}
    assert data["participant"] == {"id": di.id, "name": "Di", "avatar_url": None}
    assert (data["last_message"], data["unread_count"]) == (None, 0)


def test_opening_it_again_from_either_side_answers_200_with_the_same_conversation(pair):
    again, other_side = open_conversation(pair.ada, pair.bob), open_conversation(pair.bob, pair.ada)
    assert (again.status_code, other_side.status_code) == (200, 200)
    assert again.json()["data"]["id"] == other_side.json()["data"]["id"] == pair.conversation["id"]
    assert other_side.json()["data"]["participant"]["id"] == pair.ada.id


def test_nobody_opens_a_conversation_with_themselves_or_an_unknown_user(pair):
    for participant in (str(pair.ada.id), "999999999", "99999999999999999999", "abc", ""):
        answer = pair.ada.api.post("/direct-conversations", json={"participant_user_id": participant})
        assert answer.status_code == 422 and "participant_user_id" in answer.json()["errors"], (participant, answer.text)


# Messages, last message and unread counts

def test_a_direct_message_shows_as_the_last_message_of_the_conversation(pair):
    posted = pair.ada.api.post(messages_of(pair.conversation), json={"content": "hi Bob"})
    assert posted.status_code == 201, posted.text
    message = posted.json()["data"]
    assert message["author"] == {"id": pair.ada.id, "name": "Ada", "kind": "user"}
    assert message["original_content"] == "hi Bob"
    seen_by_bob = listed(pair.bob, pair.conversation)
    assert seen_by_bob["participant"]["id"] == pair.ada.id
    assert seen_by_bob["last_message"]["id"] == message["id"]
    assert listed(pair.ada, pair.conversation)["participant"]["id"] == pair.bob.id


def test_a_new_message_is_unread_for_the_other_participant_until_they_read_the_conversation(strangers):
    cy, di = strangers
    conversation = open_conversation(cy, di).json()["data"]
    assert cy.api.post(messages_of(conversation), json={"content": "one"}).status_code == 201
    assert cy.api.post(messages_of(conversation), json={"content": "two"}).status_code == 201
    assert listed(di, conversation)["unread_count"] == 2
    assert listed(cy, conversation)["unread_count"] == 0  # one's own messages are never unread
    read = di.api.get(messages_of(conversation))
    assert [m["original_content"] for m in read.json()["data"]] == ["two", "one"]
    # The read mark is written in the background.
    assert wait_for(lambda: listed(di, conversation)["unread_count"] == 0, timeout=10)


def test_someone_outside_the_conversation_cannot_see_it(pair):
    path = messages_of(pair.conversation)
    assert pair.third.api.get(path).status_code == 404
    assert pair.third.api.post(path, json={"content": "intrusion"}).status_code == 404
    assert pair.conversation["id"] not in [c["id"] for c in pair.third.api.get("/direct-conversations").json()["data"]]


def test_direct_messages_follow_the_content_rules(pair):
    path = messages_of(pair.conversation)
    for body in ({}, {"content": "x" * 4001}):
        answer = pair.ada.api.post(path, json=body)
        assert answer.status_code == 422 and "content" in answer.json()["errors"], answer.text
    with_file = pair.ada.api.post(path, json={"content": "see file", "attachment_ids": ["01hzzzzzzzzzzzzzzzzzzzzzzz"]})
    assert with_file.status_code == 422 and "attachment_ids" in with_file.json()["errors"]


# Finding a recipient by email

def test_a_recipient_is_found_by_exact_email_in_any_case(pair):
    for address in (pair.bob.email, pair.bob.email.upper()):
        found = pair.ada.api.post("/direct-recipients/resolve", json={"email": address})
        assert found.status_code == 200, found.text
        assert found.json() == {"data": {"id": pair.bob.id, "name": "Bob", "email": pair.bob.email, "avatar_url": None}}


def test_an_unknown_email_is_not_found(pair):
    answer = pair.ada.api.post("/direct-recipients/resolve", json={"email": new_email("nobody")})
    assert answer.status_code == 404


def test_an_invalid_email_is_refused(pair):
    for body in ({"email": "not an address"}, {}):
        answer = pair.ada.api.post("/direct-recipients/resolve", json=body)
        assert answer.status_code == 422 and "email" in answer.json()["errors"], answer.text


def test_resolving_is_rate_limited_per_user(app_user):
    answers = [app_user.api.post("/direct-recipients/resolve", json={"email": new_email("probe")}) for _ in range(11)]
    assert [a.status_code for a in answers] == [404] * 10 + [429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
