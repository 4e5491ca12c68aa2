"""What both dialects' schemathesis tests share: loading a document with our settings, a real
bearer token on every case, running the linked-calls state machine, and comparing the routes the
app serves with those a document describes."""

from __future__ import annotations

import re

import hypothesis
import schemathesis

# Schemathesis's statuses that reject invalid data, plus 413: a body over the size limit is refused
# before it is read, which is as much a rejection as a 422.
_REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]


def load(document: dict, *, fuzzed: int, steps: int, also_rejecting: tuple[str, ...] = (), checks: dict | None = None):
    """The schemathesis schema of `document`: fixed seed, `fuzzed` examples an operation, `steps` a scenario.

    Loaded from the code rather than with schemathesis.pytest.from_fixture, whose lazy loading needs
    pytest < 9 (it sets `request.node._nodeid`); each dialect's tests show the server serves this document.
    """
    return schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_dict({
        "seed": 20250421,
        "generation": {"deterministic": True, "max-examples": fuzzed, "database": "none"},
        "phases": {"stateful": {"max-steps": steps}},
        "checks": {"negative_data_rejection": {"expected-statuses": sorted(_REJECTIONS + list(also_rejecting))},
                   **(checks or {})},
    }))


# Headers that frame the HTTP message itself. A negative case may generate them among its extra headers,
# and a garbled Content-Length is refused by the HTTP parser (400 "Bad content-length") before any route
# or document applies; the client library sets these, as any real client's does.
_FRAMING = frozenset({"content-length", "transfer-encoding", "host", "connection", "expect", "te", "upgrade"})


def drop_framing_headers(case) -> None:
    """Leave the headers that frame the request to the HTTP client, as every real client does."""
    if case.headers:
        case.headers = {name: value for name, value in case.headers.items() if name.lower() not in _FRAMING}


def use_bearer_token(schema, token) -> None:
    """Send `token()` as the bearer token of every case that needs one."""

    @schema.auth(refresh_interval=None)
    class BearerToken:
        def get(self, case, context):
            return token()

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def run_linked_calls(schema, world, origin: str, scenarios: int, steps: int) -> list[str]:
    """Run schemathesis's state machine over `schema` (following its links) against `origin`;
    returns the failures. `world.adapt` makes each case look like a real client's; `world.settle`,
    if there is one, runs after each call."""
    failures = []

    class Machine(schema.as_state_machine()):
        def before_call(self, case):
            world.adapt(case, point_ids=False)  # the links between operations supply the ids here

        def after_call(self, response, case):
            super().after_call(response, case)
            if hasattr(world, "settle"):
                world.settle(case, response)

        def get_call_kwargs(self, case):
            return {"base_url": origin}

        def validate_response(self, response, case, **kwargs):
            # Kept rather than raised, as schemathesis's own runner does: a replay meets a server whose
            # state has moved on, so Hypothesis could neither reproduce nor shrink the scenario.
            try:
                super().validate_response(response, case, **kwargs)
            except schemathesis.errors.FailureGroup as failure:
                failures.append(f"{case.operation.label}: {failure}")

    try:
        Machine.run(settings=hypothesis.settings(max_examples=scenarios, stateful_step_count=steps, deadline=None,
                                                 derandomize=True, database=None,
                                                 suppress_health_check=list(hypothesis.HealthCheck)))
    except hypothesis.errors.FlakyStrategyDefinition:
        # The steps on offer depend on earlier answers (a name taken by a previous scenario is a 409,
        # not a 201), so Hypothesis may stop early; every step that ran was checked all the same.
        pass
    return failures


def _shape(method: str, path: str) -> tuple[str, str]:
    """A route as (METHOD, path) with parameters blanked and no trailing slash, to compare spellings."""
    return method.upper(), re.sub(r"<[^>]+>|{[^}]+}", "{}", "/" + path.strip("/"))


def undocumented_and_unserved(app, document: dict, prefixes: tuple[str, ...]) -> tuple[set, set]:
    """(routes under `prefixes` the document lacks, documented operations no route serves)."""
    routes = {_shape(method, route.path) for route in app.router.routes for method in route.methods
              if route.path.startswith(prefixes)}
    documented = {_shape(method, path) for path, operations in document["paths"].items() for method in operations}
    return routes - documented, documented - routes
