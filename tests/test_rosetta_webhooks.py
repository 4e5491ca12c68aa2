"""RosettaChat incoming webhooks: admins create, list, change and delete them; an outside service
posts with the secret (header or bearer), as the webhook's bot, within a rate limit."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from tests import chat
from tests.api import unique
from tests.rosetta import AppUser

WEBHOOK_FIELDS = {"id", "workspace_id", "name", "default_channel_id", "is_active", "bot_user_id", "created_at",
                  "updated_at"}


@pytest.fixture(scope="module")
def team(rosetta_url):
    """A workspace with an owner, an admin and a member, two channels, and another workspace's channel."""
    owner, admin, member = AppUser(rosetta_url), AppUser(rosetta_url), AppUser(rosetta_url)
    ws = chat.workspace(owner, "Hooks")
    chat.join(admin, ws, "admin", by=owner)
    chat.join(member, ws, by=owner)
    elsewhere = chat.workspace(owner, "Elsewhere")
    return SimpleNamespace(owner=owner, admin=admin, member=member, ws=ws, general=chat.channel(owner, ws, "general"),
                           builds=chat.channel(owner, ws, "builds"), foreign=chat.channel(owner, elsewhere, "theirs"))


@pytest.fixture(scope="module")
def outside(rosetta_url):
    """An outside service: no user, no token."""
    with httpx.Client(base_url=rosetta_url, timeout=30) as client:
        yield client


def hooks_path(team) -> str:
    return f"/workspaces/{team.ws['id']}/webhooks"


def create(team, name: str | None = None, by: AppUser | None = None, **fields) -> dict:
    answer = (by or team.admin).api.post(hooks_path(team), json={"name": name or unique("CI"),
                                                                 "default_channel_id": team.general["id"], **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


@pytest.fixture
def hook(team) -> dict:
    """A fresh webhook of the team posting to #general, with its secret."""
    return create(team)


def incoming(hook: dict) -> str:
    return f"/webhooks/{hook['id']}/messages"


def deliver(outside, hook: dict, content: str = "Deploy finished.", secret: str | None = None, **fields):
    return outside.post(incoming(hook), json={"content": content, **fields},
                        headers={"X-Webhook-Secret": secret or hook["secret"]})


# Managing

def test_an_admin_creates_a_webhook_and_is_shown_its_secret_once(team):
    created = create(team, "CI")
    assert set(created) == WEBHOOK_FIELDS | {"secret"}
    assert (created["workspace_id"], created["name"], created["default_channel_id"], created["is_active"]) == (
        team.ws["id"], "CI", team.general["id"], True)
    assert len(created["secret"]) >= 32
    listed = team.admin.api.get(hooks_path(team))
    assert listed.status_code == 200
    found = [w for w in listed.json()["data"] if w["id"] == created["id"]]
    assert len(found) == 1 and set(found[0]) == WEBHOOK_FIELDS


def test_the_owner_manages_webhooks_too(team):
    created = create(team, by=team.owner)
    assert created["id"] in [w["id"] for w in team.owner.api.get(hooks_path(team)).json()["data"]]


def test_a_plain_member_cannot_manage_webhooks(team, hook):
    one = f"{hooks_path(team)}/{hook['id']}"
    assert team.member.api.get(hooks_path(team)).status_code == 403
    assert team.member.api.post(hooks_path(team), json={"name": "mine"}).status_code == 403
    assert team.member.api.put(one, json={"name": "mine"}).status_code == 403
    assert team.member.api.delete(one).status_code == 403


def test_a_non_member_is_told_the_workspace_does_not_exist(team, app_user):
    assert app_user.api.get(hooks_path(team)).status_code == 404


def test_the_default_channel_must_be_a_channel_of_the_workspace(team, hook):
    for channel_id in (team.foreign["id"], "not-a-channel"):
        answer = team.admin.api.post(hooks_path(team), json={"name": "CI", "default_channel_id": channel_id})
        assert answer.status_code == 422 and "default_channel_id" in answer.json()["errors"], answer.text
        changed = team.admin.api.put(f"{hooks_path(team)}/{hook['id']}", json={"default_channel_id": channel_id})
        assert changed.status_code == 422 and "default_channel_id" in changed.json()["errors"], changed.text


def test_a_name_is_required(team):
    answer = team.admin.api.post(hooks_path(team), json={"default_channel_id": team.general["id"]})
    assert answer.status_code == 422 and "name" in answer.json()["errors"]


def test_an_update_changes_the_name_and_active_flag_without_showing_the_secret(team, hook):
    changed = team.admin.api.put(f"{hooks_path(team)}/{hook['id']}", json={"name": "Deploys", "is_active": False})
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert (data["name"], data["is_active"], data["default_channel_id"]) == ("Deploys", False, team.general["id"])
    assert "secret" not in data
    listed = [w for w in team.admin.api.get(hooks_path(team)).json()["data"] if w["id"] == hook["id"]]
    assert (listed[0]["name"], listed[0]["is_active"]) == ("Deploys", False)


def test_regenerating_the_secret_shows_a_new_one_and_retires_the_old(team, hook, outside):
    changed = team.admin.api.put(f"{hooks_path(team)}/{hook['id']}", json={"regenerate_secret": True})
    assert changed.status_code == 200, changed.text
    secret = changed.json()["data"]["secret"]
    assert secret != hook["secret"] and len(secret) >= 32
    assert deliver(outside, hook, secret=hook["secret"]).status_code == 401
    assert deliver(outside, hook, secret=secret).status_code == 201


def test_an_admin_deletes_a_webhook(team, hook):
    assert team.admin.api.delete(f"{hooks_path(team)}/{hook['id']}").status_code == 204
    assert hook["id"] not in [w["id"] for w in team.admin.api.get(hooks_path(team)).json()["data"]]
    assert team.admin.api.delete(f"{hooks_path(team)}/{hook['id']}").status_code == 404


# Incoming posts

def test_a_post_with_the_secret_header_lands_in_the_default_channel_as_the_webhook(team, outside):
    hook = create(team, "Build Bot")
    answer = deliver(outside, hook, "Build #42 passed.")
    assert answer.status_code == 201, answer.text
    message = answer.json()["data"]
    assert message["author"] == {"id": hook["bot_user_id"], "name": "Build Bot", "kind": "webhook"}
    assert message["original_content"] == "Build #42 passed."
    read = team.member.api.get(f"{chat.messages_path(team.ws, team.general)}/{message['id']}")
    assert read.status_code == 200 and read.json()["data"]["author"]["kind"] == "webhook"


def test_a_post_with_the_secret_as_a_bearer_token_is_accepted(hook, outside):
    answer = outside.post(incoming(hook), json={"content": "via bearer"},
                          headers={"Authorization": f"Bearer {hook['secret']}"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["data"]["author"]["kind"] == "webhook"


def test_a_post_may_name_another_channel_of_the_workspace(team, hook, outside):
    answer = deliver(outside, hook, "to builds", channel_id=team.builds["id"])
    assert answer.status_code == 201, answer.text
    path = f"{chat.messages_path(team.ws, team.builds)}/{answer.json()['data']['id']}"
    assert team.member.api.get(path).status_code == 200


def test_a_webhook_without_a_default_channel_needs_a_channel_id(team, outside):
    hook = create(team, default_channel_id=None)
    assert hook["default_channel_id"] is None
    refused = deliver(outside, hook, "where to?")
    assert refused.status_code == 422 and "channel_id" in refused.json()["errors"], refused.text
    assert deliver(outside, hook, "here", channel_id=team.builds["id"]).status_code == 201


def test_a_post_to_a_channel_of_another_workspace_is_refused(team, hook, outside):
    answer = deliver(outside, hook, "astray", channel_id=team.foreign["id"])
    assert answer.status_code == 422 and "channel_id" in answer.json()["errors"], answer.text


def test_a_post_needs_content(hook, outside):
    answer = outside.post(incoming(hook), json={}, headers={"X-Webhook-Secret": hook["secret"]})
    assert answer.status_code == 422 and "content" in answer.json()["errors"], answer.text


def test_a_wrong_or_missing_secret_is_unauthenticated(team, hook, outside):
    wrong = deliver(outside, hook, secret="whsec_" + "x" * 43)
    assert (wrong.status_code, wrong.json()) == (401, {"message": "Unauthenticated."})
    assert outside.post(incoming(hook), json={"content": "anonymous"}).status_code == 401
    # A user's own token is no webhook secret, even the admin's.
    assert team.admin.api.post(incoming(hook), json={"content": "as admin"}).status_code == 401


def test_an_inactive_webhook_is_forbidden_to_post(team, hook, outside):
    assert team.admin.api.put(f"{hooks_path(team)}/{hook['id']}", json={"is_active": False}).status_code == 200
    assert deliver(outside, hook).status_code == 403
    assert team.admin.api.put(f"{hooks_path(team)}/{hook['id']}", json={"is_active": True}).status_code == 200
    assert deliver(outside, hook).status_code == 201


def test_a_deleted_webhook_is_not_found(team, hook, outside):
    assert team.admin.api.delete(f"{hooks_path(team)}/{hook['id']}").status_code == 204
    assert deliver(outside, hook).status_code == 404
    assert outside.post("/webhooks/not-a-webhook/messages", json={"content": "x"},
                        headers={"X-Webhook-Secret": hook["secret"]}).status_code == 404


def test_a_webhook_posts_at_most_60_messages_a_window(hook, outside):
    answers = [deliver(outside, hook, f"tick {i}", skip_translation=True) for i in range(61)]
    assert [a.status_code for a in answers] == [201] * 60 + [429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
