"""The OpenAPI document at /v1/swagger.json covers every route, and schemathesis finds no request the
server answers with a 5xx or with anything the document does not describe."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import httpx
import hypothesis
import pytest
import schemathesis

from handlers.sector import openapi
from tests import fuzzing
from tests.api import Account

# Fuzzed cases per operation; the examples and coverage phases add their own on top.
FUZZED = 12
# Scenarios and steps of the stateful run, which follows the links between operations.
SCENARIOS, STEPS = 15, 6

# The token of cases built before the owner logged in; World.adapt puts the owner's in its place.
PENDING = "pending"
# Which seeded resource a positive request's path parameter may be pointed at.
_RESOURCE_OF = {"id": "account", "groupId": "group", "channelId": "channel", "messageId": "message",
                "memberId": "member"}


class World:
    """Real resources for generated requests to hit, and the values a real client would send.

    Generated data is random, so most ids would miss, every cursor would be forged and every login
    signature wrong. For positive cases (those the document calls valid) this swaps in what a client
    would really hold: most path ids point at live resources, some logins are signed for real,
    cursors are ones the server issued, group members are real accounts, a body's `group`/`channel`
    echo the path, and an Idempotency-Key is never reused for a different request (the IETF draft
    makes that a 422). Negative cases go out as generated.
    """

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.origin = base_url.removesuffix("/v1/api")
        self.owner = Account(base_url)
        self.member = Account(base_url)
        self.group = self.owner.group(members=[self.member])
        self.channel = self.owner.channel(self.group)
        self.message = self.owner.post(self.channel).json()
        self.cursor = self.owner.api.post("/account/search", json={"limit": 1}).headers["X-Next-Cursor"]
        self._seen: dict[str, int] = {}
        self._throwaway_of: tuple[object, Account | None] = (None, None)

    def adapt(self, case, *, point_ids: bool = True) -> None:
        """Make a case look like what a client holding real resources would send."""
        fuzzing.drop_framing_headers(case)
        self._protect_owner(case)
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return
        self._seen[case.operation.label] = self._seen.get(case.operation.label, 0) + 1
        # Every third case keeps its random values, so the 404 and 401 answers are exercised too.
        real = self._seen[case.operation.label] % 3 != 0
        if point_ids and real:
            names = list(case.path_parameters or {})
            for name in names:
                if name in _RESOURCE_OF and _is_uuid(case.path_parameters[name]):
                    # A delete gets a target of its own, so the seeded resources survive the run.
                    fresh = case.method.upper() == "DELETE" and name == names[-1]
                    case.path_parameters[name] = self._live(_RESOURCE_OF[name], fresh, case)
        if isinstance(case.body, dict):
            self._adapt_body(case, real)
        if "Idempotency-Key" in (case.headers or {}):
            request = json.dumps([case.headers["Idempotency-Key"], case.method, case.formatted_path, case.body],
                                 sort_keys=True, default=str)
            case.headers["Idempotency-Key"] = hashlib.sha256(request.encode()).hexdigest()[:32]

    def _live(self, kind: str, fresh: bool, case) -> str:
        if kind == "account":
            return self._throwaway(case).id if fresh else self.owner.id
        if kind == "member":
            return self.member.id
        if kind == "group":
            return self.owner.group(members=[self.member])["id"] if fresh else self.group["id"]
        if kind == "channel":
            return self.owner.channel(self.group)["id"] if fresh else self.channel["id"]
        return self.owner.post(self.channel).json()["id"] if fresh else self.message["id"]

    def _throwaway(self, case) -> Account:
        """An account of this case's own, to delete and to delete with."""
        if self._throwaway_of[0] is not case:
            self._throwaway_of = (case, Account(self.base_url))
        return self._throwaway_of[1]

    def _protect_owner(self, case) -> None:
        """Logout and account deletion carry tokens of their own, so the owner's stays good for the run."""
        if (case.headers or {}).get("Authorization") == f"Bearer {PENDING}":
            case.headers["Authorization"] = f"Bearer {self.owner.token}"
        if (case.headers or {}).get("Authorization") != f"Bearer {self.owner.token}":
            return
        if case.operation.path == "/v1/api/logout":
            self._sync_username()
            case.headers["Authorization"] = f"Bearer {self.owner.login()}"
        elif case.operation.path == "/v1/api/account/{id}" and case.method.upper() == "DELETE":
            case.headers["Authorization"] = f"Bearer {self._throwaway(case).token}"

    def _adapt_body(self, case, real: bool) -> None:
        body = case.body
        if isinstance(body.get("cursor"), str):
            body["cursor"] = self.cursor
        if case.operation.path == "/v1/api/group/" and isinstance(body.get("members"), list):
            body["members"] = [self.member.id for _ in body["members"][:3]]
        for field, param in (("group", "groupId"), ("channel", "channelId")):
            if case.method.upper() == "POST" and _is_uuid(body.get(field)) and param in (case.path_parameters or {}):
                body[field] = case.path_parameters[param]
        if case.operation.path == "/v1/api/login" and real:
            self._sync_username()
            challenge = self.owner.anonymous.get("/challenge", params={"username": self.owner.username})
            body.update(username=self.owner.username, signature=self.owner.sign(challenge.json()["challenge"]))

    def settle(self, case, response) -> None:
        """After a 202, wait for the write to apply, as a client reading its own async write would."""
        if response.status_code != 202:
            return
        if case.method.upper() == "DELETE":
            url, applied = case.formatted_path, lambda status: status != 200
        elif "Location" in response.headers:
            url, applied = response.headers["Location"], lambda status: status != 404
        else:
            return
        headers = {"Authorization": case.headers["Authorization"]} if "Authorization" in case.headers else {}
        deadline = time.monotonic() + 10
        while not applied(httpx.get(self.origin + url, headers=headers).status_code) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _sync_username(self) -> None:
        """Learn the owner's username, which generated updates may have changed."""
        self.owner.username = self.owner.api.get(f"/account/{self.owner.id}").json()["username"]


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


_world: World | None = None  # the world fixture's, for the auth provider schemathesis instantiates itself


@pytest.fixture(scope="module")
def world(base_url) -> World:
    global _world
    _world = World(base_url)
    yield _world
    _world = None


@pytest.fixture(scope="module")
def origin(stack) -> str:
    return f"http://127.0.0.1:{stack.port}"


schema = fuzzing.load(openapi.document(), fuzzed=FUZZED, steps=STEPS)
# Schemathesis builds the coverage cases while collecting, before any server runs: PENDING until then.
fuzzing.use_bearer_token(schema, lambda: _world.owner.token if _world is not None else PENDING)


@schema.parametrize()
# Each example is a real round trip, writes a real commit by the worker: slower than Hypothesis expects.
@hypothesis.settings(deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow])
def test_every_operation_keeps_to_the_document(case, world, origin):
    world.adapt(case)
    case.call_and_validate(base_url=origin)


def test_sequences_of_linked_calls_keep_to_the_document(world, origin):
    failures = fuzzing.run_linked_calls(schema, world, origin, SCENARIOS, STEPS)
    assert not failures, "\n\n".join(failures)


def test_every_registered_route_is_in_the_document(app):
    undocumented, unserved = fuzzing.undocumented_and_unserved(app, openapi.document(), ("v1/",))
    assert undocumented == set(), "routes missing from the OpenAPI document"
    assert unserved == set(), "documented operations that no route serves"


def test_the_served_document_is_valid_and_only_the_open_endpoints_skip_the_bearer_token(origin):
    document = httpx.get(f"{origin}/v1/swagger.json").json()
    assert document == openapi.document()
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.1 meta-schema
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], document["security"]) == ("http", "bearer", [{"bearerAuth": []}])
    open_paths = {path for path, ops in document["paths"].items() for op in ops.values() if op.get("security") == []}
    assert open_paths == {"/v1/api/", "/v1/api/health", "/v1/api/health/details", "/v1/swagger.json",
                          "/v1/api/account/", "/v1/api/challenge", "/v1/api/login"}
