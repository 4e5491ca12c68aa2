"""The OpenAPI 3.1 document of the ops API (served at /ops/api/openapi.json): msgspec's schemas of the
structs the handlers decode and answer with, plus the route table below."""

from __future__ import annotations

import copy
from functools import cache

import msgspec
from sanic import Blueprint

from actors.queues import QUEUES
from handlers.bodies import json
from handlers.ops import schemas as s
from handlers.ops.api import PREFIX

VERSION = "1.0.0"
SESSION_COOKIE = "rosettachat_session"

_CONFIRM = ("Confirm", "`{\"confirm\": true}`: the confirmation step (anything else is a 422).")
_NOT_FOUND_JOB = "No job (of that kind) has this id."
_NOT_FOUND_QUEUE = "There is no such queue."

# (method, path, operationId, summary, (status, description, schema or None), options)
# options: auth (default True), body (schema, description), query (struct), path (names), also ({status: text}).
_ROUTES = [
    ("get", "/openapi.json", "getOpsOpenApi", "This OpenAPI document", (200, "The document.", "OpenApi"),
     {"auth": False}),
    ("post", "/session", "signIn", "Sign in an operator (web session)",
     (200, "Signed in: a session cookie and a fresh XSRF-TOKEN cookie are set.", "Operator"),
     {"auth": False, "body": ("SignIn", "The operator's email and password."), "xsrf": True,
      "also": {403: "The account is inactive, or not an operator.", 419: "The XSRF-TOKEN pair is missing.",
               422: "Invalid data, or wrong credentials.", 429: "Too many failed attempts."}}),
    ("delete", "/session", "signOut", "Sign out", (200, "The session has ended.", "Done"), {}),
    ("get", "/me", "getOperator", "The signed-in operator", (200, "The operator.", "Operator"), {}),
    ("get", "/overview", "getOverview", "Queues, their last hour, and workers",
     (200, "Every queue and live worker process.", "Overview"), {}),
    ("get", "/workers", "listWorkers", "Live worker processes", (200, "Consumer processes only.", "Workers"), {}),
    ("get", "/failed", "listFailed", "Failed jobs", (200, "The latest failures first.", "Failures"),
     {"query": s.FailedQuery, "also": {404: _NOT_FOUND_QUEUE}}),
    ("get", "/failed/{message_id}", "getFailed", "One failed job, with its traceback",
     (200, "The job.", "Failure"), {"path": ("message_id",), "also": {404: _NOT_FOUND_JOB}}),
    ("post", "/failed/{message_id}/retry", "retryFailed", "Retry a dead job",
     (200, "Sent again with its actor and arguments, and a fresh retry budget.", "Done"),
     {"path": ("message_id",), "body": _CONFIRM,
      "also": {404: _NOT_FOUND_JOB, 409: "The job is not dead: its retries go on."}}),
    ("post", "/failed/{message_id}/delete", "deleteFailed", "Delete a dead job",
     (200, "The dead letter and its failure record are gone.", "Done"),
     {"path": ("message_id",), "body": _CONFIRM,
      "also": {404: _NOT_FOUND_JOB, 409: "The job is not dead: its retries go on."}}),
    ("post", "/queues/{queue}/retry-all", "retryAllDead", "Retry every dead job of a queue",
     (200, "How many were sent again.", "Done"), {"path": ("queue",), "body": _CONFIRM,
                                                  "also": {404: _NOT_FOUND_QUEUE}}),
    ("post", "/queues/{queue}/purge", "purgeDead", "Delete every dead job of a queue",
     (200, "How many were deleted.", "Done"), {"path": ("queue",), "body": _CONFIRM, "also": {404: _NOT_FOUND_QUEUE}}),
    ("post", "/queues/{queue}/pause", "pauseQueue", "Pause a queue",
     (200, "Workers stop fetching from it within a second (what they fetched already still runs).", "Done"),
     {"path": ("queue",), "also": {404: _NOT_FOUND_QUEUE}}),
    ("post", "/queues/{queue}/resume", "resumeQueue", "Resume a queue",
     (200, "Workers fetch from it again within a second.", "Done"), {"path": ("queue",),
                                                                    "also": {404: _NOT_FOUND_QUEUE}}),
    ("get", "/queues/{queue}/delayed", "listDelayed", "A queue's delayed jobs",
     (200, "The first due first.", "Jobs"), {"path": ("queue",), "query": s.PageQuery,
                                             "also": {404: _NOT_FOUND_QUEUE}}),
    ("post", "/queues/{queue}/delayed/{message_id}/run", "runDelayedNow", "Run a delayed job now",
     (200, "Sent to its queue now; the delayed copy will not run.", "Done"),
     {"path": ("queue", "message_id"), "also": {404: "There is no such queue, or no delayed job with this id."}}),
    ("get", "/search", "searchJobs", "Search jobs",
     (200, "Queued, delayed and dead jobs whose message id is `q`, or whose actor or (redacted) arguments "
           "contain it.", "Jobs"), {"query": s.SearchQuery}),
    ("get", "/schedule", "getSchedule", "The scheduler", (200, "Its leader and periodic jobs.", "Schedule"), {}),
    ("get", "/audit", "listAudit", "The audit log", (200, "The latest actions first.", "AuditLog"),
     {"query": s.PageQuery}),
]

_PATH_PARAMS = {
    "message_id": ("A Dramatiq message id.", {"type": "string", "format": "uuid"}),
    "queue": ("A queue's name.", {"type": "string", "enum": list(QUEUES)}),
}

_STRUCTS = (s.Error, s.SignIn, s.Operator, s.Overview, s.Workers, s.Failures, s.Jobs, s.Schedule, s.AuditLog,
            s.Done, s.Confirm)
# schema_components names each struct by its class; the domain's come along as they are referenced.


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _query_parameters(struct) -> list[dict]:
    (schema,), components = msgspec.json.schema_components([struct], ref_template="#/components/schemas/{name}")
    properties = components[struct.__name__]["properties"]
    required = set(components[struct.__name__].get("required", ()))
    out = []
    for name, prop in properties.items():
        prop = {k: v for k, v in prop.items() if k != "description"}
        if "anyOf" in prop:  # str | None: a query value is never null, an absent one is
            prop = next(p for p in prop["anyOf"] if p.get("type") != "null") | (
                {"default": prop["default"]} if prop.get("default") is not None else {})
        out.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return out


def _operation(method, path, operation_id, summary, success, options) -> dict:
    status, description, schema = success
    content = ({"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
               if schema and schema != "OpenApi" else {"application/json": {"schema": {"type": "object"}}})
    operation = {"operationId": operation_id, "summary": summary, "tags": ["Ops"],
                 "responses": {str(status): {"description": description, "content": content}}}
    parameters = [{"name": name, "in": "path", "required": True, "description": _PATH_PARAMS[name][0],
                   "schema": _PATH_PARAMS[name][1]} for name in options.get("path", ())]
    if "query" in options:
        parameters += _query_parameters(options["query"])
    if parameters:
        operation["parameters"] = parameters
    if "body" in options:
        name, text = options["body"]
        operation["requestBody"] = {"required": True, "description": text, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
    responses = operation["responses"]
    if options.get("auth", True):
        operation["security"] = [{"bearer": []}, {"session": []}]
        responses["401"] = _error("No credential, or one that is not valid.")
        responses["403"] = _error("Not an operator, an inactive account, or a token without the `ops` ability.")
        if method != "get":
            responses["419"] = _error("A web session's change without the X-XSRF-TOKEN header of its session.")
    else:
        operation["security"] = []
    if "body" in options:
        responses["400"] = _error("The body is missing or not JSON.")
    if "body" in options or "query" in options:
        responses["422"] = _error("The body or query does not fit (`errors` names the field).")
    if options.get("auth", True) or "body" in options:
        responses["503"] = _error("Redis or the database is unreachable; retry after `Retry-After` seconds.")
    for code, text in options.get("also", {}).items():
        responses[str(code)] = _error(text)
    return operation


@cache
def _document() -> dict:
    _, components = msgspec.json.schema_components(_STRUCTS, ref_template="#/components/schemas/{name}")
    paths: dict[str, dict] = {}
    for method, path, *rest in _ROUTES:
        paths.setdefault(PREFIX + path, {})[method] = _operation(method, path, *rest)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sector operations API", "version": VERSION,
                 "description": "What the dashboard at /ops/ shows and does, for scripts too (docs/operations.md). "
                                "Operators only: a personal access token with the `ops` ability (or `*`), or the "
                                "dashboard's web session. Errors are `{\"error\", \"message\", \"errors\"}`."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "`<id>|<secret>` from `python app.py operators token` (ability `ops`)."},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                            "description": "The dashboard's web session (POST /ops/api/session)."},
            },
        },
    }


def document() -> dict:
    return copy.deepcopy(_document())


bp = Blueprint("ops_openapi", url_prefix=PREFIX)


@bp.get("/openapi.json")
async def openapi_json(request):
    """Open to all, as the dialects' documents are."""
    return json(_document())
