"""A local OAuth2 / OpenID Connect provider for tests: the real protocol over HTTP, in a thread.

It answers in both shapes Sector is configured for: Google's (`/authorize`, `/token`, `/userinfo`)
and GitHub's (`/login/oauth/authorize`, `/login/oauth/access_token`, `/user`, `/user/emails`).
A test says who signs in at the provider (`authorize`), and can break an endpoint (`broken`).
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.api import unique
from tests.rosetta import new_email

CLIENTS = {"google": ("google-client", "google-secret"), "github": ("github-client", "github-secret")}
# Where the provider sends the browser back: the client's own page, never fetched in tests.
REDIRECT_URI = "http://127.0.0.1:9/social/done"


@dataclass
class Person:
    """Someone with an account at the provider."""

    uid: str = field(default_factory=lambda: str(secrets.randbelow(10**12)))
    email: str | None = field(default_factory=lambda: new_email("social"))
    verified: bool = True
    name: str | None = field(default_factory=lambda: unique("Social"))
    avatar: str | None = "https://avatars.example.com/u/1.png"
    # GitHub: addresses beside `email`, as {"email", "primary", "verified"}.
    more_emails: list[dict] = field(default_factory=list)


@dataclass
class Grant:
    person: Person
    client_id: str
    redirect_uri: str | None


class FakeProvider:
    """The provider; `url` is its origin, `env()` the SECTOR_* settings that point Sector at it."""

    def __init__(self):
        self.codes: dict[str, Grant] = {}
        self.tokens: dict[str, Person] = {}
        self.authorize_requests: list[dict] = []
        self.token_requests: list[dict] = []
        self.broken: dict[str, tuple[int, bytes]] = {}  # path -> the status and body it answers instead
        self._next: Person | None = None
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                provider._serve(self)

            def do_POST(self):
                provider._serve(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FakeProvider":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def env(self) -> dict[str, str]:
        urls = {"google": {"AUTHORIZE_URL": "/authorize", "TOKEN_URL": "/token", "USERINFO_URL": "/userinfo"},
                "github": {"AUTHORIZE_URL": "/login/oauth/authorize", "TOKEN_URL": "/login/oauth/access_token",
                           "USERINFO_URL": "/user", "EMAILS_URL": "/user/emails"}}
        env = {}
        for name, (client_id, secret) in CLIENTS.items():
            prefix = f"SECTOR_OAUTH_{name.upper()}_"
            env |= {f"{prefix}CLIENT_ID": client_id, f"{prefix}CLIENT_SECRET": secret,
                    f"{prefix}REDIRECT_URI": REDIRECT_URI,
                    **{prefix + key: self.url + path for key, path in urls[name].items()}}
        return env

    def authorize(self, redirect_url: str, person: Person) -> tuple[str, str]:
        """`person` opens the redirect URL and consents: the code and state the provider sends back."""
        self._next = person
        answer = httpx.get(redirect_url, follow_redirects=False)
        assert answer.status_code == 302, answer.text
        back = urlsplit(answer.headers["location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT_URI
        params = {k: v[0] for k, v in parse_qs(back.query).items()}
        return params["code"], params["state"]

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        if parts.path in self.broken:
            status, body = self.broken[parts.path]
            return self._send(request, status, body, "text/html")
        routes = {"/authorize": self._authorize, "/login/oauth/authorize": self._authorize,
                  "/token": self._token, "/login/oauth/access_token": self._token,
                  "/userinfo": self._userinfo, "/user": self._userinfo, "/user/emails": self._emails}
        route = routes.get(parts.path)
        if route is None:
            return self._answer(request, 404, {"error": "not_found"})
        route(request, parts)

    def _authorize(self, request, parts) -> None:
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.authorize_requests.append({"path": parts.path, **query})
        if query.get("response_type") != "code" or query.get("client_id") not in {c for c, _ in CLIENTS.values()}:
            return self._answer(request, 400, {"error": "invalid_request"})
        code = secrets.token_urlsafe(16)
        self.codes[code] = Grant(self._next, query["client_id"], query.get("redirect_uri"))
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        request.send_response(302)
        request.send_header("Location", back)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def _token(self, request, parts) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(request.rfile.read(length).decode()).items()}
        self.token_requests.append({"path": parts.path, "accept": request.headers.get("Accept"), **form})
        github = parts.path.startswith("/login/")
        if (form.get("client_id"), form.get("client_secret")) not in CLIENTS.values():
            return self._answer(request, 401, {"error": "invalid_client"})
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        if (grant is None or grant.client_id != form["client_id"] or form.get("grant_type") != "authorization_code"
                or grant.redirect_uri != form.get("redirect_uri")):
            # GitHub refuses a code with 200 and an error; Google as RFC 6749 says, with 400.
            return self._answer(request, 200 if github else 400,
                                {"error": "bad_verification_code" if github else "invalid_grant"})
        token = secrets.token_urlsafe(24)
        self.tokens[token] = grant.person
        self._answer(request, 200, {"access_token": token, "token_type": "bearer", "scope": "email"})

    def _person(self, request) -> Person | None:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        return self.tokens.get(token) if scheme.lower() == "bearer" else None

    def _userinfo(self, request, parts) -> None:
        person = self._person(request)
        if person is None:
            return self._answer(request, 401, {"error": "invalid_token"})
        if parts.path == "/user":  # GitHub: a numeric id, the public address (if any), avatar_url
            return self._answer(request, 200, {"id": int(person.uid) if person.uid.isdigit() else person.uid,
                                               "login": f"user{person.uid}", "name": person.name,
                                               "email": person.email, "avatar_url": person.avatar})
        info = {"sub": person.uid, "name": person.name, "picture": person.avatar}
        if person.email is not None:
            info |= {"email": person.email, "email_verified": person.verified}
        self._answer(request, 200, info)

    def _emails(self, request, parts) -> None:
        person = self._person(request)
        if person is None:
            return self._answer(request, 401, {"error": "invalid_token"})
        own = [{"email": person.email, "primary": True, "verified": person.verified}] if person.email else []
        self._answer(request, 200, person.more_emails + own)

    @staticmethod
    def _answer(request, status: int, data) -> None:
        FakeProvider._send(request, status, json.dumps(data).encode(), "application/json")

    @staticmethod
    def _send(request, status: int, body: bytes, content_type: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
