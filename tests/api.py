"""A Sector API client for tests: accounts with real ed25519 keys that log in for real."""

from __future__ import annotations

import base64
import itertools
import time

import httpx
from nacl.signing import SigningKey

_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() % 10**9}-{next(_names)}"


class Account:
    """A signed-up, logged-in account; `api` sends its bearer token."""

    def __init__(self, base_url: str, username: str | None = None, key: SigningKey | None = None):
        self.base_url = base_url
        self.key = key or SigningKey.generate()
        self.username = username or unique("user")
        self.anonymous = httpx.Client(base_url=base_url, timeout=30)
        created = self.anonymous.post("/account/", json={"username": self.username, "pubkey": self.pubkey})
        assert created.status_code == 201, created.text
        self.id = created.json()["id"]
        self.token = self.login()
        self.api = httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {self.token}"})

    @property
    def pubkey(self) -> str:
        return base64.b64encode(bytes(self.key.verify_key)).decode()

    def sign(self, challenge: str) -> str:
        return base64.b64encode(self.key.sign(challenge.encode()).signature).decode()

    def login(self) -> str:
        challenge = self.anonymous.get("/challenge", params={"username": self.username}).json()["challenge"]
        response = self.anonymous.post("/login", json={"username": self.username, "signature": self.sign(challenge)})
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def group(self, name: str = "Group", members: list["Account"] = ()) -> dict:
        response = self.api.post("/group/", json={"name": name, "description": "test",
                                                  "members": [m.id for m in members]})
        assert response.status_code == 201, response.text
        return response.json()

    def channel(self, group: dict, name: str = "Main") -> dict:
        response = self.api.post(f"/group/{group['id']}/channel/", json={"name": name})
        assert response.status_code == 201, response.text
        return response.json()

    def post(self, to: dict, body: str = "hello", **fields) -> httpx.Response:
        """Post a message to the channel `to`; `fields` go into the body as they are."""
        return self.api.post(f"/group/{to['group']}/channel/{to['id']}/message", json={"body": body, **fields})
