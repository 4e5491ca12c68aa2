"""The OpenAPI document at /api/v1/openapi.json covers every RosettaChat route, and schemathesis finds no
request the server answers with a 5xx or with anything the document does not describe."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks
from ulid import ULID

import config
from handlers.rosetta import openapi
from tests import fuzzing
from tests.chat_world import ChatWorld
from tests.room_world import FILE_BYTES, GUEST
from tests.oauth_provider import CLIENTS, FakeProvider, Person
from tests.rosetta import new_email, text_of

# The owner's own temporary-room limits, raised so that few creates or extensions meet a quota.
ROOM_LIMITS = {"active_limit": 1000, "monthly_creation_limit": 100_000, "max_ttl_hours": 1000, "extension_hours": 1,
               "max_lifetime_hours": 1_000_000}
# Fuzzed cases per operation; the examples and coverage phases add their own on top.
FUZZED = 6
# Scenarios and steps of the stateful run, which follows the links between operations.
SCENARIOS, STEPS = 8, 5
PROVIDERS = tuple(sorted(CLIENTS))

# The token of cases built before the owner signed up; World.adapt puts the owner's in its place.
PENDING = "pending"
API = openapi.API
_AUTH_STEP = re.compile(rf"^{API}/auth/(app|web)/(.+)$")


class User:
    """A user signed up through /auth/app/register, and its bearer token."""

    def __init__(self, http: httpx.Client, base_url: str):
        self.email, self.password = new_email("spec"), "correct horse battery"
        answer = http.post(f"{base_url}/auth/app/register", json={
            "name": "Spec User", "email": self.email, "password": self.password,
            "password_confirmation": self.password})
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["access_token"]


class Mailbox:
    """The stack's Maildir, each mail read once: waiting for one does not re-read all the others."""

    def __init__(self, data_dir):
        self.folder = Path(data_dir) / "maildir" / "new"
        self._read: set[str] = set()
        self._to: dict[str, list] = {}

    def wait(self, address: str, subject: str, timeout: float = 15) -> str:
        """The text of the latest mail to `address` about `subject`, once there is one."""
        deadline = time.monotonic() + timeout
        while True:
            for entry in os.scandir(self.folder):
                if entry.name not in self._read:
                    self._read.add(entry.name)
                    message = email.message_from_bytes(Path(entry.path).read_bytes(), policy=email.policy.default)
                    self._to.setdefault(message["To"], []).append(message)
            found = [m for m in self._to.get(address, []) if subject in m["Subject"].lower()]
            if found:
                return text_of(found[-1])
            assert time.monotonic() < deadline, f"no mail about {subject!r} for {address}"
            time.sleep(0.02)


class World:
    """Real users, tokens and codes for generated requests to use, and the values a real client would send.

    Generated data is random, so every password, code, reset token, OAuth state and XSRF token would be
    wrong, and most ids would miss. For positive cases (those the document calls valid) this swaps in
    what a client would really hold: the owner's credentials, a mailed code or reset token, a state and
    code the provider really issued, the XSRF-TOKEN the server set, an address of its own, a password
    that fits the 72-byte limit and its confirmation, a guest's token for a room's guest routes. Most path
    ids point at live resources; every third case keeps its random ones, so 404s are exercised too. Logout
    and password changes run on tokens and users of their own, so the owner's token and password stay good
    for the run. The owner's temporary-room limits are raised, so that creates and extensions mostly
    succeed. Negative cases go out as generated, except that a web case whose fault is in its body gets a
    real XSRF pair, and a temporary-room case whose fault is not in its path a real room and caller, so
    that its fault is what the server refuses.
    """

    def __init__(self, stack, origin: str, provider: FakeProvider, database):
        self.http = httpx.Client(timeout=30)
        self.base_url = origin + API
        self.provider = provider
        self.mailbox = Mailbox(stack.data_dir)
        self.owner = User(self.http, self.base_url)
        self.owner_api = httpx.Client(base_url=self.base_url, timeout=30,
                                      headers={"Authorization": f"Bearer {self.owner.token}"})
        self.spare = User(self.http, self.base_url)  # the one whose password negative cases may try to change
        member = User(self.http, self.base_url)
        self.db = database
        database.RoomLimit.insert(user=self._id(self.owner), updated_at=database.utcnow(), **ROOM_LIMITS).execute()
        defaults = {name: getattr(stack.settings.rooms, name) for name in ROOM_LIMITS}
        self.chat = ChatWorld(self.owner_api, self._client(member), self._id(member), self._chat_user,
                              self._expire_room, (ROOM_LIMITS, defaults))
        self.xsrf = self.http.get(origin + "/sanctum/csrf-cookie").cookies["XSRF-TOKEN"]
        link = re.search(r"https?://\S+", self.mailbox.wait(self.owner.email, "verify")).group(0)
        parts = urlsplit(link)
        self.verify_path = dict(zip(("id", "hash"), parts.path.rsplit("/", 2)[-2:], strict=True))
        self.verify_query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self._seen: dict[str, int] = {}
        self._pools: dict[str, list] = {"user": [], "otp": [], "reset": []}
        self._changer: tuple[object, User | None] = (None, None)
        self.answered: dict[str, set[int]] = {}  # the linked calls' statuses, by operation

    def _client(self, user: User) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, headers={"Authorization": f"Bearer {user.token}"})

    def _id(self, user: User) -> int:
        return self._client(user).get("/me").json()["id"]

    def _chat_user(self) -> tuple[httpx.Client, int]:
        user = User(self.http, self.base_url)
        return self._client(user), self._id(user)

    def _expire_room(self, room_id: str) -> None:
        """The room's time is up (a minute ago); the sweep that would mark it expired has not run."""
        self.db.Room.update(expires_at=self.db.utcnow() - dt.timedelta(minutes=1)).where(
            self.db.Room.id == ULID.from_str(room_id.upper()).to_uuid()).execute()

    def adapt(self, case, *, point_ids: bool = True) -> None:
        """Make a case look like what a client holding real users, tokens and codes would send."""
        fuzzing.drop_framing_headers(case)
        meta = case.meta
        positive = meta is not None and meta.generation.mode.is_positive
        self._protect_owner(case, positive)
        if positive or (meta is not None and not any(
                meta.is_negative_at(where) for where in (ParameterLocation.HEADER, ParameterLocation.COOKIE))):
            self._send_xsrf(case)
        if not positive:
            if meta is not None and not meta.is_negative_at(ParameterLocation.PATH):
                self.chat.rooms.seat_negative(case, credentials=not meta.is_negative_at(ParameterLocation.HEADER))
            return
        if self.chat.handles(case.operation.path):
            self.chat.authorize(case)
        self._seen[case.operation.label] = self._seen.get(case.operation.label, 0) + 1
        if point_ids and self._seen[case.operation.label] % 3 != 0:
            self._point_ids(case)
        if isinstance(case.body, dict):
            self._adapt_body(case)
        if self.chat.handles(case.operation.path):
            self.chat.fit_range(case)
            self.chat.rooms.seat_guest(case)

    def settle(self, case, response) -> None:
        """After each linked call: what it answered, by operation."""
        self.answered.setdefault(case.operation.label, set()).add(response.status_code)
        self.chat.rooms.settle(case, response)

    def _protect_owner(self, case, positive: bool) -> None:
        headers = case.headers or {}
        if headers.get("Authorization") == f"Bearer {PENDING}":
            headers["Authorization"] = f"Bearer {self.owner.token}"
        if headers.get("Authorization") != f"Bearer {self.owner.token}":
            return
        if case.operation.path.endswith("/logout"):
            login = self.http.post(f"{self.base_url}/auth/app/login",
                                   json={"email": self.owner.email, "password": self.owner.password})
            headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        elif case.operation.path.endswith("/change-password"):
            headers["Authorization"] = f"Bearer {self.spare.token}"
            if positive:  # it will change the password: a user of its own
                self._changer = (case, self._take("user"))
                headers["Authorization"] = f"Bearer {self._changer[1].token}"

    def _send_xsrf(self, case) -> None:
        """The XSRF pair a browser sends, where the document asks for it."""
        if "X-XSRF-TOKEN" in (case.headers or {}):
            case.headers["X-XSRF-TOKEN"] = self.xsrf
        if "XSRF-TOKEN" in (case.cookies or {}):
            case.cookies["XSRF-TOKEN"] = self.xsrf

    def _point_ids(self, case) -> None:
        params = case.path_parameters or {}
        path = case.operation.path
        if self.chat.handles(path):
            self.chat.point_ids(case)
        elif "token_id" in params:
            params["token_id"] = self.owner_api.post("/me/tokens", json={"name": "doomed"}).json()["data"]["id"]
        elif path.endswith("/verify/{id}/{hash}"):
            params.update(id=int(self.verify_path["id"]), hash=self.verify_path["hash"])
            case.query = dict(self.verify_query)
        elif path.endswith("/unlink"):
            params["provider"] = PROVIDERS[self._seen[case.operation.label] % len(PROVIDERS)]
            self._link_to_owner(params["provider"])

    def _adapt_body(self, case) -> None:
        body, path = case.body, case.operation.path
        mode, step = _AUTH_STEP.match(path).groups() if _AUTH_STEP.match(path) else (None, path)
        if isinstance(body.get("password"), str):
            body["password"] = _fit(body["password"])
        if step in ("register", "reset-password", "change-password"):
            body["password_confirmation"] = body.get("password")
        if step in ("register", "otp"):
            # A generated address repeats (and is then taken or throttled), or is on a special-use domain
            # (.test, .local) the server refuses.
            body["email"] = new_email("spec")
        elif step == "login":
            body.update(email=self.owner.email, password=self.owner.password)
        elif step == "otp/verify":
            body["email"], body["token"] = self._take("otp")
        elif step == "forgot-password":
            body["email"] = self._take("user").email
        elif step == "reset-password":
            body["email"], body["token"] = self._take("reset")
        elif step == "change-password" and self._changer[0] is case:
            body["current_password"] = self._changer[1].password
        elif step.endswith("/callback"):
            self._social_callback(case, mode, case.path_parameters["provider"], link=step.endswith("link/callback"))
        elif path == f"{API}/me/tokens" and isinstance(body.get("expires_at"), str):
            body["expires_at"] = re.sub(r"^\d{4}", "2996", body["expires_at"])  # a leap year to come
        elif self.chat.handles(path):
            self.chat.adapt_body(case)

    def _take(self, kind: str):
        """A fresh user, (email, OTP code) or (email, reset token); made ten at a time, their mail awaited together."""
        if not self._pools[kind]:
            self._pools[kind] = self._make(kind, 10)
        return self._pools[kind].pop()

    def _make(self, kind: str, count: int) -> list:
        if kind == "otp":
            addresses = [new_email("otp") for _ in range(count)]
            for address in addresses:
                assert self.http.post(f"{self.base_url}/auth/app/otp", json={"email": address}).status_code == 200
            return [(address, re.search(r"\b(\d{6})\b", self.mailbox.wait(address, "code")).group(1))
                    for address in addresses]
        with ThreadPoolExecutor(4) as pool:
            users = list(pool.map(lambda _: User(self.http, self.base_url), range(count)))
        if kind == "user":
            return users
        for user in users:
            sent = self.http.post(f"{self.base_url}/auth/app/forgot-password", json={"email": user.email})
            assert sent.status_code == 200, sent.text
        return [(user.email, re.search(r"Reset token: (\S+)", self.mailbox.wait(user.email, "reset")).group(1))
                for user in users]

    def _social_callback(self, case, mode: str, provider: str, *, link: bool) -> None:
        """A code and state the provider really issued, for a new person (to link) or any (to sign in)."""
        if link:
            started = self.owner_api.post(f"/auth/{mode}/social/{provider}/link")
        else:
            started = self.http.post(f"{self.base_url}/auth/{mode}/social/{provider}/redirect",
                                     headers={"X-XSRF-TOKEN": self.xsrf}, cookies={"XSRF-TOKEN": self.xsrf})
        assert started.status_code == 200, started.text
        person = Person() if link else _person_of(case.body.get("code"))
        case.body["code"], case.body["state"] = self.provider.authorize(started.json()["redirect_url"], person)
        if mode == "web":
            case.cookies = {**(case.cookies or {}), "oauth_state": started.cookies["oauth_state"]}

    def _link_to_owner(self, provider: str) -> None:
        started = self.owner_api.post(f"/auth/app/social/{provider}/link")
        code, state = self.provider.authorize(started.json()["redirect_url"], Person())
        linked = self.owner_api.post(f"/auth/app/social/{provider}/link/callback", json={"code": code, "state": state})
        assert linked.status_code == 200, linked.text


def _fit(password: str) -> str:
    """The password cut to the 72 bytes bcrypt takes, as a client that read the description would."""
    while len(password.encode()) > 72:
        password = password[:-1]
    return password


_people: dict[str, Person] = {}


def _person_of(code) -> Person:
    """The same person at the provider for the same generated code: a repeated code signs the same user in."""
    key = hashlib.sha256(json.dumps(code).encode()).hexdigest()[:12]
    return _people.setdefault(key, Person(uid=str(int(key, 16))))


_world: World | None = None  # the world fixture's, for the auth provider schemathesis instantiates itself


@pytest.fixture(scope="module")
def server_env(provider) -> dict:
    # Every generated case comes from one address: room joins are allowed as many as a room's.
    return {**provider.env(), "SECTOR_ROOMS_JOIN_IP": "1000"}


@pytest.fixture(scope="module")
def origin(stack, server_env) -> str:
    """A server of the stack with the fake provider's google and github enabled."""
    return f"http://127.0.0.1:{stack.start_server(**server_env)}"


@pytest.fixture(scope="module")
def world(stack, origin, provider, database) -> World:
    global _world
    _world = World(stack, origin, provider, database)
    yield _world
    _world = None


schema = fuzzing.load(openapi.document(providers=PROVIDERS), fuzzed=FUZZED, steps=STEPS,
                      # 419: Laravel's status for a missing or wrong XSRF token.
                      also_rejecting=("419",),
                      checks={"missing_required_header": {"expected-statuses": [
                          "400", "401", "403", "406", "415", "419", "422"]},
                          # Schemathesis's, and 410: a temporary room that expired is as gone as a 404's.
                          "positive_data_acceptance": {"expected-statuses": [
                              "2xx", "3xx", "401", "403", "404", "409", "410", "429", "5xx"]}})
# Schemathesis builds the coverage cases while collecting, before any server runs: PENDING until then.
fuzzing.use_bearer_token(schema, lambda: _world.owner.token if _world is not None else PENDING)


@schema.parametrize()
# Each example is a real round trip, many a real commit by the worker: slower than Hypothesis expects.
@hypothesis.settings(deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow])
def test_every_operation_keeps_to_the_document(case, world, origin):
    world.adapt(case)
    case.call_and_validate(base_url=origin)


def test_sequences_of_linked_calls_keep_to_the_document(world, origin):
    failures = fuzzing.run_linked_calls(schema, world, origin, SCENARIOS, STEPS)
    assert not failures, "\n\n".join(failures)


def test_the_links_from_a_created_room_lead_to_it(world, origin):
    """The linked calls among the temporary rooms' operations alone, so that the state machine follows
    their links: a room it created is shown, extended and joined."""
    world.answered.clear()
    failures = fuzzing.run_linked_calls(schema.include(path_regex=f"^{API}/external/rooms"), world, origin,
                                        SCENARIOS, STEPS)
    assert not failures, "\n\n".join(failures)
    for label, status in (("GET /external/rooms/{room_id}", 200), ("POST /external/rooms/{room_id}/extend", 200),
                          ("POST /external/rooms/{room_id}/guests", 201)):
        method, path = label.split()
        assert status in world.answered.get(f"{method} {API}{path}", ()), (label, world.answered)


def test_every_registered_route_is_in_the_document(app):
    undocumented, unserved = fuzzing.undocumented_and_unserved(app, openapi.document(), ("api/v1/", "sanctum/"))
    assert undocumented == set(), "routes missing from the OpenAPI document"
    assert unserved == set(), "documented operations that no route serves"


def test_the_served_document_is_the_deployments_and_valid(stack, origin, server_env):
    for server, settings in ((f"http://127.0.0.1:{stack.port}", stack.settings),
                             (origin, config.load(environ={**stack.env, **server_env}))):
        document = httpx.get(f"{server}/api/v1/openapi.json").json()
        assert document == openapi.document_for(settings)
        schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.1 meta-schema
    assert document == openapi.document(providers=PROVIDERS)  # what the tests above ran against
    provider = document["paths"][f"{API}/auth/app/social/{{provider}}/redirect"]["post"]["parameters"][0]
    assert provider["schema"]["enum"] == list(PROVIDERS)
    schemes = document["components"]["securitySchemes"]
    assert (schemes["bearerAuth"]["scheme"], schemes["sessionCookie"]["in"], schemes["sessionCookie"]["name"]) == (
        "bearer", "cookie", stack.settings.auth.session_cookie)
    assert (schemes["guestToken"]["in"], schemes["guestToken"]["name"]) == ("header", GUEST)
    open_operations = {(method, path) for path, ops in document["paths"].items() for method, op in ops.items()
                       if op["security"] == []}
    assert open_operations == {
        ("get", "/sanctum/csrf-cookie"), ("get", f"{API}/openapi.json"),
        ("get", f"{API}/auth/email/verify/{{id}}/{{hash}}"), ("get", f"{API}/invites/{{token}}"),
        ("post", f"{API}/external/rooms/{{room_id}}/guests"),
        *(("post", f"{API}/auth/{mode}/{step}") for mode in ("app", "web")
          for step in ("register", "login", "otp", "otp/verify", "forgot-password", "reset-password",
                       "social/{provider}/redirect", "social/{provider}/callback")),
    }


# Inputs the generators seldom draw that were once answered with a 500: (method, path, request, status).
_ODD = {
    "a non-ASCII digit for an integer": ("get", "/me/tokens?per_page=%C2%B2", {}, 422),
    "a doubled minus sign": ("get", "/me/tokens?per_page=--5", {}, 422),
    "JSON nested deeper than the decoder goes": (
        "post", "/me/tokens", {"content": b'{"a":' * 5000 + b"1" + b"}" * 5000}, 400),
    "a non-ASCII link signature": (
        "get", "/auth/email/verify/1/ab?expires=9999999999&signature=%C3%A9", {}, 404),
    "a non-ASCII digit for the link's expiry": (
        "get", "/auth/email/verify/1/ab?expires=%C2%B2&signature=ab", {}, 404),
    "a token expiry past year 9999 in UTC": (
        "post", "/me/tokens", {"json": {"name": "x", "expires_at": "9999-12-31T23:59:59-23:59"}}, 422),
    "a session cookie that is not UTF-8": (
        "get", "/me", {"headers": {"Cookie": b"rosettachat_session=\xe9"}, "auth": False}, 401),
    "an XSRF-TOKEN cookie that is not UTF-8": ("post", "/auth/web/otp", {
        "headers": {"Cookie": b"XSRF-TOKEN=\xe9", "X-XSRF-TOKEN": b"\xe9"}, "json": {"email": "a@example.com"}},
        419),
}


@pytest.mark.parametrize("name", list(_ODD))
def test_odd_input_is_refused_not_a_server_error(world, name):
    method, path, request, status = _ODD[name]
    request = dict(request)
    client = world.owner_api if request.pop("auth", True) else world.http
    answer = client.request(method, world.base_url + path, **request)
    assert answer.status_code == status, answer.text


# What a download answers, besides the whole file: (request headers, status, the part of FILE_BYTES it sends).
_DOWNLOADS = [({}, 200, slice(None)), ({"Range": "bytes=2-5"}, 206, slice(2, 6)),
              ({"Range": "bytes=-4"}, 206, slice(-4, None)), ({"Range": "bytes=3-999"}, 206, slice(3, None)),
              ({"Range": "bytes=0-1,4-5"}, 200, slice(None)), ({"Range": "bytes=999-"}, 416, slice(0)),
              ({"Range": "bytes=5-2"}, 416, slice(0)), ({"If-None-Match": "*"}, 304, slice(0))]
_DOWNLOAD_ROUTES = ("/files/{file_id}/download", "/message-attachments/{attachment_id}/download",
                    "/direct-message-attachments/{attachment_id}/download")


# What an answer to a hand-made request must keep to: the document's statuses, media types, headers and schemas.
_CONFORMANCE = [not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
                checks.response_headers_conformance, checks.response_schema_conformance]


def _call(world, origin, method: str, route: str, params: dict, **kwargs):
    """A request to one documented operation, and its answer checked against the document."""
    case = schema[API + route][method].Case(path_parameters=params, **kwargs)
    case.headers = {"Authorization": f"Bearer {world.owner.token}", **(case.headers or {})}
    response = case.call(base_url=origin)
    case.validate_response(response, checks=_CONFORMANCE)
    return response


def test_a_token_without_the_rooms_ability_is_refused_as_the_document_says(world, origin):
    """The fuzzing world's tokens have every ability, so this 403 (a message, no `errors.code`) is made here."""
    minted = world.owner_api.post("/me/tokens", json={"name": "bot", "abilities": ["automation:post"]})
    bearer = {"Authorization": f"Bearer {minted.json()['data']['token']}"}
    for route, params, body in (("/external/rooms", {}, {"name": "x"}),
                                ("/external/rooms/{room_id}/extend", {"room_id": str(ULID()).lower()}, {})):
        answer = _call(world, origin, "POST", route, params, headers=bearer, body=body, media_type="application/json")
        assert (answer.status_code, answer.json()) == (403, {"message": "Invalid ability provided."}), route


@pytest.mark.parametrize("route", _DOWNLOAD_ROUTES)
def test_every_kind_of_download_answer_keeps_to_the_document(world, origin, route):
    chat = world.chat
    ids = {"file_id": chat.file, "attachment_id": chat.direct_attachment if "direct" in route else chat.attachment}
    params = {name: ids[name] for name in re.findall(r"{(\w+)}", route)}
    etag = _call(world, origin, "GET", route, params).headers["etag"][0]
    for headers, status, part in [*_DOWNLOADS, ({"If-None-Match": f'"other", {etag}'}, 304, slice(0))]:
        answer = _call(world, origin, "GET", route, params, headers=headers)
        assert (answer.status_code, answer.content) == (status, FILE_BYTES[part]), headers
    assert _call(world, origin, "GET", route, params, headers={"Range": "bytes=999-"}).headers["content-range"] \
        == [f"bytes */{len(FILE_BYTES)}"]


def test_files_and_attachments_keep_to_the_document(world, origin, stack):
    chat = world.chat
    staged = chat.upload()
    listed = _call(world, origin, "GET", "/me/files", {}, query={"claimed": "false", "sort": "size", "per_page": 100})
    assert staged in [file["id"] for file in listed.json()["data"]]
    messages = "/workspaces/{workspace_id}/channels/{channel_id}/messages"
    where = {"workspace_id": chat.ws, "channel_id": chat.files_channel}
    posted = _call(world, origin, "POST", messages, where, body={"attachment_ids": [staged, staged]},
                   media_type="application/json")
    assert posted.status_code == 201, posted.text
    assert [a["file_id"] for a in posted.json()["data"]["attachments"]] == [staged]
    page = _call(world, origin, "GET", messages, where).json()["data"]
    assert [a["file_id"] for a in page[0]["attachments"]] == [staged]
    assert _call(world, origin, "GET", "/files/{id}", {"id": staged}).json()["data"]["claimed"] is True
    assert _call(world, origin, "DELETE", "/files/{id}", {"id": staged}).status_code == 409
    member = _call(world, origin, "GET", "/files/{id}", {"id": chat.file},
                   headers={"Authorization": chat.member.headers["Authorization"]})
    assert member.status_code == 404  # a private, staged file is the uploader's alone
    small = f"http://127.0.0.1:{stack.start_server(SECTOR_FILES_MAX_BYTES='16')}"
    for content, status in ((b"x" * 16, 201), (b"x" * 17, 413)):
        answer = _call(world, small, "POST", "/files", {}, body={"file": content}, media_type="multipart/form-data")
        assert answer.status_code == status, answer.text


# Requests to the file routes that a fuzzing run once answered wrongly (a 500, or a 201 for what is not
# a file): (method, path, request, the right status).
_UPLOAD = {"files": {"file": ("a.txt", b"abc")}}
_FILE_BUGS = {
    "a Range number longer than Python's 4,300-digit int limit": (
        "get", "/files/{file}/download", {"headers": {"Range": "bytes=" + "9" * 4400 + "-"}}, 416),
    "a multipart boundary longer than 256 characters": ("post", "/files", {
        "content": b"--x--\r\n", "headers": {"Content-Type": "multipart/form-data; boundary=" + "x" * 300}}, 422),
    "a Content-Type header with a character past Latin-1": ("post", "/files", {
        "content": b"--x--\r\n", "headers": {"Content-Type": b"multipart/form-data; boundary=\xe4\xb8\xad"}}, 422),
    "a `meta` object nested deeper than the JSON decoder goes": (
        "post", "/files", {**_UPLOAD, "data": {"meta": '{"a":' + "[" * 1000 + "]" * 1000 + "}"}}, 422),
    "a `file` part that is not a file, without a filename": (
        "post", "/files", {"files": {"file": (None, b"5")}}, 422),
    "a reused Idempotency-Key with another file": (
        "post", "/files", {"files": {"file": ("b.txt", b"another file")},
                           "headers": {"Idempotency-Key": "spec-reused"}}, 422),
}


@pytest.mark.parametrize("name", list(_FILE_BUGS))
def test_file_input_is_refused_not_mishandled(world, name):
    method, path, request, status = _FILE_BUGS[name]
    if "Idempotency-Key" in request.get("headers", {}):
        first = world.owner_api.post("/files", headers=request["headers"], **_UPLOAD)
        assert first.status_code == 201, first.text
    answer = world.owner_api.request(method, world.base_url + path.format(file=world.chat.file), **request)
    assert answer.status_code == status, answer.text
