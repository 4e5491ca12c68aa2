"""A RosettaChat API client for tests: users who sign up with a password, as apps (bearer token)
or as the web app (session cookie + XSRF header), and the mail Sector sends them."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import httpx

from tests.api import unique
from tests.stack import wait_for

PASSWORD = "correct horse battery"


def new_email(prefix: str = "user") -> str:
    return f"{unique(prefix)}@example.com"


class AppUser:
    """A user signed up through /auth/app/register; `api` carries its bearer token."""

    def __init__(self, base_url: str, email_address: str | None = None, password: str = PASSWORD, **fields):
        self.base_url = base_url
        self.email = email_address or new_email()
        self.password = password
        self.anonymous = httpx.Client(base_url=base_url, timeout=30)
        answer = self.anonymous.post("/auth/app/register", json={
            "name": fields.pop("name", "Test User"), "email": self.email, "password": password,
            "password_confirmation": password, **fields})
        assert answer.status_code == 200, answer.text
        self.id = answer.json()["user"]["id"]
        self.token = answer.json()["access_token"]
        self.api = httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {self.token}"})

    def login(self, **fields) -> str:
        answer = self.anonymous.post("/auth/app/login", json={"email": self.email, "password": self.password, **fields})
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def with_token(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"})


class Browser:
    """The web app in a browser: a cookie jar, and the XSRF-TOKEN cookie echoed in X-XSRF-TOKEN on
    every change, as axios does for a Laravel SPA."""

    def __init__(self, origin: str):
        self.client = httpx.Client(base_url=origin, timeout=30)
        assert self.client.get("/sanctum/csrf-cookie").status_code == 204

    @property
    def xsrf(self) -> str | None:
        return self.client.cookies.get("XSRF-TOKEN")

    def request(self, method: str, path: str, *, xsrf: bool = True, **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if xsrf and self.xsrf:
            headers["X-XSRF-TOKEN"] = self.xsrf
        return self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def register(self, email_address: str | None = None, password: str = PASSWORD) -> dict:
        email_address = email_address or new_email("web")
        answer = self.post("/auth/web/register", json={"name": "Web User", "email": email_address,
                                                       "password": password, "password_confirmation": password})
        assert answer.status_code == 200, answer.text
        return answer.json()["user"]


def mails_to(stack, address: str, subject: str = "") -> list[email.message.EmailMessage]:
    """The mails delivered to `address` so far whose subject contains `subject` (the stack writes
    them into its Maildir), oldest first."""
    found = []
    for path in sorted((Path(stack.data_dir) / "maildir" / "new").glob("*"), key=lambda p: p.stat().st_mtime):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address and subject.lower() in message["Subject"].lower():
            found.append(message)
    return found


def wait_for_mail(stack, address: str, subject: str = "", count: int = 1,
                  timeout: float = 15) -> email.message.EmailMessage:
    """The `count`-th mail to `address` about `subject`, once it has arrived."""
    arrived = wait_for(lambda: len(mails_to(stack, address, subject)) >= count, timeout)
    assert arrived, f"no mail #{count} about {subject!r} for {address}"
    return mails_to(stack, address, subject)[count - 1]


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def code_in(message) -> str:
    return re.search(r"\b(\d{6})\b", text_of(message)).group(1)
