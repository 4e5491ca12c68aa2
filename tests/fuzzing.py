"""What both dialects' schemathesis tests share: running the linked-calls state machine, and
comparing the routes the app serves with those a document describes."""

from __future__ import annotations

import re

import hypothesis
import schemathesis


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
