"""RosettaChat chat helpers for tests: workspaces, channels and messages made through the API."""

from __future__ import annotations

from tests.api import unique
from tests.rosetta import AppUser


def workspace(owner: AppUser, name: str = "Team", **fields) -> dict:
    """A workspace `owner` creates (private unless `visibility` says otherwise)."""
    answer = owner.api.post("/workspaces", json={"name": name, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def join(user: AppUser, ws: dict, role: str = "member", by: AppUser | None = None) -> None:
    """Make `user` a member of `ws` (through an invite `by` an admin), with `role`."""
    assert by is not None, "an admin must invite"
    invite = by.api.post(f"/workspaces/{ws['id']}/invites", json={})
    assert invite.status_code == 201, invite.text
    accepted = user.api.post(f"/invites/{invite.json()['data']['token']}/accept")
    assert accepted.status_code in (200, 201), accepted.text
    if role != "member":
        changed = by.api.put(f"/workspaces/{ws['id']}/members/{user.id}", json={"role": role})
        assert changed.status_code == 200, changed.text


def crew_of(owner: AppUser, admin: AppUser, member: AppUser, **fields) -> dict:
    """A new workspace of `owner`, with `admin` as an admin and `member` as a member."""
    ws = workspace(owner, unique("Crew"), **fields)
    join(admin, ws, "admin", by=owner)
    join(member, ws, by=owner)
    return ws


def channel(admin: AppUser, ws: dict, name: str = "general", **fields) -> dict:
    answer = admin.api.post(f"/workspaces/{ws['id']}/channels", json={"name": name, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def messages_path(ws: dict, ch: dict) -> str:
    return f"/workspaces/{ws['id']}/channels/{ch['id']}/messages"


def post(user: AppUser, ws: dict, ch: dict, content: str = "hello", **fields) -> dict:
    answer = user.api.post(messages_path(ws, ch), json={"content": content, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]
