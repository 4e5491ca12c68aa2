"""The OpenAPI 3.1 document of the Sector dialect as built: msgspec's schemas plus the route table below."""

from __future__ import annotations

import copy
import re
from functools import cache

import msgspec

from handlers.ops.metrics import with_request_id_header
from handlers.sector import schemas

VERSION = "1.0.0"

API = "/v1/api"
GROUP = API + "/group/{groupId}"
CHANNEL = GROUP + "/channel/{channelId}"
MESSAGE = CHANNEL + "/message/{messageId}"

_PATH_PARAMS = {
    "id": "ID of the account.",
    "groupId": "ID of the group.",
    "channelId": "ID of the channel within the group.",
    "messageId": "ID of the message within the channel.",
    "memberId": "ID of the member's account.",
}

# A message as read: in a reader's language too when the request has Accept-Language.
_READ = "Message|MessageInLanguage"
_REALTIME_DOC = "See docs/realtime.md for the frames, resume and resync."

# The route table: (method, path, operationId, tag, summary, (status, description, content), options).
# content is a schema name, "A|B" for either, "[Name]" for a JSON array (a search), "text" for text/plain, or None.
# options: auth (default True), body (schema, description), write ("create", "update" or "delete": the
# write path, so 202 and 503), redis (503 when Redis is down), query, languages (takes Accept-Language),
# also (more statuses and their meaning, or (meaning, schema name)).
_ROUTES = [
    ("get", API + "/", "getRoot", "Misc", "Root Endpoint", (200, "Success", "Index"), {"auth": False}),
    ("get", API + "/health", "getHealth", "Misc", "Health Check", (200, "API is healthy", "text"), {"auth": False}),
    ("get", API + "/health/details", "getHealthDetails", "Misc", "What the API can reach, and how it is set up",
     (200, "The database and Redis answer.", "HealthDetails"),
     {"auth": False, "also": {503: ("The database or Redis does not answer.", "HealthDetails")}}),
    ("get", "/v1/swagger.json", "getOpenApi", "Misc", "This OpenAPI document",
     (200, "The OpenAPI 3.1 document of the Sector API.", "OpenApi"), {"auth": False}),

    ("post", API + "/account/", "createAccount", "Account", "Create an account",
     (201, "Account creation successful.", "Account"),
     {"auth": False, "body": ("AccountIn", "Account details to add."), "write": "create",
      "also": {409: "The username is taken (or spelt `rosetta-<digits>`), or the chosen id is in use."}}),
    ("post", API + "/account/search", "searchAccounts", "Account", "Search for accounts satisfying various properties.",
     (200, "Query completed successfully.", "[Account]"), {"body": ("AccountFilter", "Account searching parameters.")}),
    ("get", API + "/account/{id}", "getAccount", "Account", "Get Account By ID",
     (200, "Account with specified ID.", "Account"), {}),
    ("put", API + "/account/{id}", "updateAccount", "Account", "Update Account By ID",
     (200, "Updated account with specified ID.", "Account"),
     {"body": ("AccountUpdate", "Account details to change; absent fields stay."), "write": "update",
      "also": {409: "The username is taken (or spelt `rosetta-<digits>`)."}}),
    ("delete", API + "/account/{id}", "deleteAccount", "Account", "Delete Account By ID",
     (204, "Account was deleted, with the groups it owns.", None), {"write": "delete"}),

    ("get", API + "/challenge", "getChallenge", "Authentication", "Get login challenge",
     (200, "Challenge issued", "Challenge"),
     {"auth": False, "redis": True, "query": [{
         "name": "username", "in": "query", "required": True,
         "description": "The account to log in as; a challenge is issued for unknown names too.",
         "schema": msgspec.json.schema(schemas.Name)}]}),
    ("post", API + "/login", "login", "Authentication", "Login using signed challenge",
     (200, "Token issued", "TokenOut"),
     {"auth": False, "redis": True, "body": ("LoginIn", "The challenge signed with the account's key."),
      "also": {401: "No challenge is pending for the username (each is good for one attempt), or the signature "
                    "does not match it.", 403: "The account is inactive."}}),
    ("post", API + "/logout", "logout", "Authentication", "Revoke the bearer token of this request",
     (204, "The token is revoked.", None), {"write": "delete"}),

    ("post", API + "/group/", "createGroup", "Group", "Create a group", (201, "Group creation successful.", "Group"),
     {"body": ("GroupIn", "Group details to add; the caller becomes its owner."), "write": "create",
      "also": {404: "A member's account was deleted meanwhile.", 409: "The chosen id is in use."}}),
    ("post", API + "/group/search", "searchGroups", "Group", "Search for groups satisfying various properties.",
     (200, "Query completed successfully.", "[Group]"), {"body": ("GroupFilter", "Group searching parameters.")}),
    ("get", GROUP, "getGroup", "Group", "Get Group By ID", (200, "Group with specified ID.", "Group"), {}),
    ("put", GROUP, "updateGroup", "Group", "Update Group By ID", (201, "Updated group with specified ID.", "Group"),
     {"body": ("GroupUpdate", "Group details to change; absent fields stay."), "write": "update"}),
    ("delete", GROUP, "deleteGroup", "Group", "Delete Group By ID", (204, "Group was deleted.", None),
     {"write": "delete"}),
    ("post", GROUP + "/members/{memberId}", "addMember", "Group", "Add new member to a group",
     (200, "The group with its members.", "Group"),
     {"write": "update", "also": {409: "A concurrent change conflicted."}}),
    ("delete", GROUP + "/members/{memberId}", "removeMember", "Group", "Remove member from a group",
     (204, "The member was removed.", None), {"write": "delete", "also": {409: "The owner cannot leave the group."}}),

    ("post", GROUP + "/channel/", "createChannel", "Channel", "Create a channel within a group",
     (201, "Channel creation successful.", "Channel"),
     {"body": ("ChannelIn", "Channel details to add."), "write": "create", "also": {409: "The chosen id is in use."}}),
    ("post", API + "/channel/search", "searchChannels", "Channel", "Search for channels satisfying various properties.",
     (200, "Query completed successfully.", "[Channel]"), {"body": ("ChannelFilter", "Channel searching parameters.")}),
    ("get", CHANNEL, "getChannel", "Channel", "Get Channel in Group By ID",
     (200, "Channel with specified ID.", "Channel"), {}),
    ("put", CHANNEL, "updateChannel", "Channel", "Update Channel in Group By ID",
     (201, "Updated Channel with specified ID.", "Channel"),
     {"body": ("ChannelUpdate", "Channel details to change; absent fields stay."), "write": "update"}),
    ("delete", CHANNEL, "deleteChannel", "Channel", "Delete Channel in Group By ID",
     (204, "Channel with specified ID deleted.", None), {"write": "delete"}),

    ("post", CHANNEL + "/message", "createMessage", "Message", "Create a message within a channel",
     (201, "Message creation successful.", _READ),
     {"body": ("MessageIn", "Message details to add."), "write": "create", "languages": True,
      "also": {409: "The chosen id is in use."}}),
    ("post", API + "/message/search", "searchMessages", "Message", "Search for messages satisfying various properties.",
     (200, "Query completed successfully.", f"[{_READ}]"),
     {"body": ("MessageFilter", "Message searching parameters."), "languages": True}),
    ("get", MESSAGE, "getMessage", "Message", "Get Message in Channel By ID",
     (200, "Message with specified ID.", _READ), {"languages": True}),
    ("put", MESSAGE, "updateMessage", "Message", "Update Message in Channel By ID",
     (201, "Message with specified ID.", _READ),
     {"body": ("MessageUpdate", "Message details to change; absent fields stay."), "write": "update",
      "languages": True}),
    ("delete", MESSAGE, "deleteMessage", "Message", "Delete Message in Channel By ID",
     (204, "Message with specified ID deleted.", None), {"write": "delete"}),

    # Realtime (docs/realtime.md), Sector extensions.
    ("get", API + "/realtime", "openRealtime", "Realtime", "Realtime events over a WebSocket",
     (200, "Not an upgrade: the session's opening frames (hello, the replay or resync_required) as a finite "
           "event stream.", "events"),
     {"query": "realtime", "also": {101: ("Switching Protocols: the WebSocket is open.", None),
                                    400: "An upgrade with a broken handshake (Sec-WebSocket-Key, -Version)."}}),
    ("get", API + "/realtime/events", "streamRealtimeEvents", "Realtime", "Realtime events as server-sent events",
     (200, "With Accept: text/event-stream, the live stream; without, the opening frames only.", "events"),
     {"query": "realtime-sse"}),
    ("post", API + "/realtime/tickets", "createRealtimeTicket", "Realtime", "A single-use realtime ticket",
     (201, "The ticket, good for one connection within `expires_in` seconds.", "RealtimeTicket"), {}),
]

_SEARCH = ("Only what the caller may see, oldest first. Filters combine with AND; a list filter matches any of "
           "its values, except `members`, which a group must have all of; `name`, `username` and `body` match "
           "case-insensitive substrings; `from` and `until` bound created_at inclusively. At most `limit` items; "
           "the X-Next-Cursor response header carries the `cursor` of the next page.")
# Sector requires a username; RosettaChat users have none (domain.writes.display_username).
_ROSETTA_USERS = ("A RosettaChat user, who has no username, is shown as `rosetta-<id>` with its RosettaChat user id; "
                  "no account may take a name spelt `rosetta-<digits>` (in any case), so that spelling is theirs.")
# Who may do what, where it is more than "members of the group".
_DESCRIPTIONS = {
    "createAccount": "A client-chosen `id` makes a retry safe; so does an Idempotency-Key. " + _ROSETTA_USERS,
    "updateAccount": "Only the account itself.", "deleteAccount": "Only the account itself.",
    "login": "Signs the challenge from GET /v1/api/challenge; each challenge can be tried once.",
    "logout": "Revokes the bearer token the request carries (an extension to the Sector spec).",
    "updateGroup": "Only the group's owner.", "deleteGroup": "Only the group's owner.",
    "addMember": "Only the group's owner; adding a member twice changes nothing.",
    "removeMember": "The owner removes anyone but themselves; a member may remove themselves.",
    "updateChannel": "The group's owner or the channel's creator.", "deleteChannel": "Only the group's owner.",
    "updateMessage": "Only the author edits the body; any member pins.",
    "deleteMessage": "The author or the group's owner.",
    "getHealthDetails": "A Sector extension: whether the database and Redis answer, and which engine translates "
                        "messages (`enabled` false: provider `none`, messages are marked `skipped`).",
    **dict.fromkeys(("searchAccounts", "searchGroups", "searchChannels", "searchMessages"), _SEARCH),
    "getAccount": _ROSETTA_USERS,
    "openRealtime": "A Sector extension. Upgrade to a WebSocket (auth: the Authorization header, `?ticket=`, or a "
                    "first frame `{\"type\": \"auth\", \"token\"}`); close codes 4001 auth_failed, 4003 "
                    "forbidden, 4008 slow_consumer, 4009 token_revoked, 4029 rate_limited, 1012 restart. "
                    + _REALTIME_DOC,
    "streamRealtimeEvents": "A Sector extension: `id: <epoch>:<seq>`, `event: <type>`, `data: <frame>`; resume "
                            "with Last-Event-ID. A comment heartbeat every realtime.sse_heartbeat_s. " + _REALTIME_DOC,
    "createRealtimeTicket": "A Sector extension: for clients that cannot send headers (EventSource, browsers' "
                            "WebSocket).",
    "searchMessages": _SEARCH + " `body` also matches the text of a message in every language it was translated "
                                "into, so a reader who searches in their own language finds messages written in "
                                "another (a Sector extension).",
    "searchAccounts": _SEARCH + " Only accounts with a username of their own are listed, not RosettaChat users; "
                                "GET /v1/api/account/{id} shows one by the id a group or message names.",
}

# OpenAPI links: where the ids a create answers with can be used next.
_LINKS = {
    "createAccount": ({"id": "$response.body#/id"}, ("getAccount", "updateAccount", "deleteAccount")),
    "createGroup": ({"groupId": "$response.body#/id"},
                    ("getGroup", "updateGroup", "deleteGroup", "createChannel", "addMember", "removeMember")),
    "createChannel": ({"groupId": "$response.body#/group", "channelId": "$response.body#/id"},
                      ("getChannel", "updateChannel", "deleteChannel", "createMessage")),
    "createMessage": ({"groupId": "$request.path.groupId", "channelId": "$response.body#/channel",
                       "messageId": "$response.body#/id"}, ("getMessage", "updateMessage", "deleteMessage")),
}

_ERRORS = {
    400: "The body is missing or is not JSON.",
    401: "No bearer token, or one that is malformed, unknown, expired or revoked.",
    403: "The account is inactive, or may not do this.",
    404: "No such resource among those the caller may see.",
    413: "The body is larger than the server accepts.",
    422: "The request does not validate (a path id that is not a UUID included); `errors` names each field.",
    503: "Redis or the write workers are unreachable or slow; retry after Retry-After seconds. "
         "A write that timed out stays queued and is applied once.",
}

# Each is always sent where the document names it, except X-Next-Cursor on a search's last page.
_HEADERS = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "required": True,
                    "schema": {"type": "integer", "minimum": 0}},
    "Location": {"description": "Where the resource will be once the write is committed.", "required": True,
                 "schema": {"type": "string"}},
    "Preference-Applied": {"description": "RFC 7240: the respond-async preference was honoured.", "required": True,
                           "schema": {"type": "string", "enum": ["respond-async"]}},
    "X-Next-Cursor": {"description": "The `cursor` for the next page; absent on the last page.",
                      "schema": {"type": "string"}},
}

_PARAMETERS = {
    "Accept-Language": {
        "name": "Accept-Language", "in": "header", "required": False, "schema": {"type": "string"},
        "example": "ja, en;q=0.5",
        "description": "A Sector extension (RFC 9110 §12.5.4): each message then also carries `display_body` in "
                       "the first of these languages it is written in or was translated into, with "
                       "`display_language`, `display_source`, its detected `language` and `translation_status` "
                       "(MessageInLanguage). Messages are translated into the languages of their channel's "
                       "readers. Without the header, messages are exactly as the Sector spec shows them."},
    "Prefer": {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"},
               "example": "respond-async",
               "description": "RFC 7240. `respond-async` answers 202 at once instead of awaiting the commit; "
                              "other preferences are ignored."},
    "Idempotency-Key": {"name": "Idempotency-Key", "in": "header", "required": False,
                        "schema": {"type": "string", "maxLength": 255},
                        "description": "Makes a retried create safe: a repeat of the same request with the same key "
                                       "creates nothing new; the same key on a different request is a 422. "
                                       "Ignored when the body carries an `id`."},
}


_TICKET = {"name": "ticket", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 100},
           "description": "A single-use ticket from POST /v1/api/realtime/tickets, instead of the Authorization "
                          "header (which browsers cannot set). Never a long-lived token in a URL."}
_RESUME = [{"name": "epoch", "in": "query", "required": False,
            "schema": {"type": "string", "pattern": "^[0-9A-Za-z_-]{1,64}$"},
            "description": "Resume: the epoch of the last event received."},
           {"name": "last_seq", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0},
            "description": "Resume: the seq of the last event received."},
           {"name": "last_ts", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0},
            "description": "The ts (Unix ms) of the last event received: resync_required lists the channels "
                           "with activity since."}]
_REALTIME_QUERY = {
    "realtime": [_TICKET, *_RESUME],
    "realtime-sse": [_TICKET, {"name": "last_event_id", "in": "query", "required": False,
                               "schema": {"type": "string", "maxLength": 100},
                               "description": "As the Last-Event-ID header: `<epoch>:<seq>` of the last event."},
                     _RESUME[2]],
}


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _content(content: str | None) -> dict:
    if content is None:
        return {}
    if content == "text":
        return {"content": {"text/plain": {"schema": {"type": "string"}}}}
    if content == "events":
        # Each event: `event` names it, `data` is its frame's JSON, `id` (stored events) `<epoch>:<seq>`.
        event = {"type": "object", "required": ["data"], "properties": {
            "event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}}}
        return {"content": {"text/event-stream": {"schema": event}}}
    def schema_of(names: str) -> dict:
        choices = [_ref("schemas", name) for name in names.split("|")]
        return choices[0] if len(choices) == 1 else {"anyOf": choices}

    if content.startswith("["):
        schema = {"type": "array", "items": schema_of(content[1:-1])}
    else:
        schema = schema_of(content)
    return {"content": {"application/json": {"schema": schema}}}


def _params_of(op_id: str) -> list[str]:
    path = next(path for _, path, id_, *_ in _ROUTES if id_ == op_id)
    return re.findall(r"{(\w+)}", path)


def _success(op_id: str, description: str, content: str | None) -> dict:
    response = {"description": description, **_content(content)}
    if content and content.startswith("["):
        response["headers"] = {"X-Next-Cursor": _ref("headers", "X-Next-Cursor")}
    if op_id in _LINKS:
        values, targets = _LINKS[op_id]
        response["links"] = {target: {"operationId": target, "parameters": {
            name: value for name, value in values.items() if name in _params_of(target)}} for target in targets}
    return response


def _parameters(path: str, options: dict) -> list[dict]:
    parameters = [{"name": name, "in": "path", "required": True, "description": _PATH_PARAMS[name],
                   "schema": {"type": "string", "format": "uuid"}} for name in re.findall(r"{(\w+)}", path)]
    query = options.get("query", [])
    parameters += _REALTIME_QUERY[query] if isinstance(query, str) else query
    if options.get("languages"):
        parameters.append(_ref("parameters", "Accept-Language"))
    if options.get("write"):
        parameters.append(_ref("parameters", "Prefer"))
    if options.get("write") == "create":
        parameters.append(_ref("parameters", "Idempotency-Key"))
    return parameters


def _failures(path: str, options: dict) -> dict[int, dict]:
    """Every error status the operation can answer, each with the Error schema."""
    statuses = set()
    if "{" in path:
        statuses |= {404, 422}  # 422: a path id that is not a UUID
    if options.get("auth", True):
        statuses |= {401, 403}
    if "body" in options:
        statuses |= {400, 413, 422}
    if "query" in options or options.get("write") == "create":
        statuses.add(422)  # the query, or a malformed or reused Idempotency-Key
    if options.get("write") or options.get("redis"):
        statuses.add(503)
    failures = {status: _ref("responses", str(status)) for status in statuses}
    for status, text in options.get("also", {}).items():
        text, schema = text if isinstance(text, tuple) else (text, "Error")
        failures[status] = {"description": text, **_content(schema)}
    return failures


def _operation(path, op_id, tag, summary, success, options) -> dict:
    operation = {"operationId": op_id, "tags": [tag], "summary": summary}
    if op_id in _DESCRIPTIONS:
        operation["description"] = _DESCRIPTIONS[op_id]
    if not options.get("auth", True):
        operation["security"] = []
    if parameters := _parameters(path, options):
        operation["parameters"] = parameters
    if "body" in options:
        schema, text = options["body"]
        operation["requestBody"] = {"required": True, "description": text,
                                    "content": {"application/json": {"schema": _ref("schemas", schema)}}}
    status, description, content = success
    responses = {status: _success(op_id, description, content), **_failures(path, options)}
    if options.get("write"):
        responses[202] = _ref("responses", "202" if options["write"] == "delete" else "202-location")
    operation["responses"] = {str(status): response for status, response in sorted(responses.items())}
    return operation


def _components() -> dict:
    _, components = schemas.json_schemas()
    components["RealtimeTicket"] = {"type": "object", "required": ["ticket", "expires_in"], "properties": {
        "ticket": {"type": "string"}, "expires_in": {"type": "integer"}}}
    components["OpenApi"] = {"type": "object", "description": "An OpenAPI 3.1 document.", "required": ["openapi"]}
    responses = {str(status): {"description": text, **_content("Error")} for status, text in _ERRORS.items()}
    responses["503"]["headers"] = {"Retry-After": _ref("headers", "Retry-After")}
    async_headers = {"Preference-Applied": _ref("headers", "Preference-Applied")}
    responses["202"] = {"description": "Accepted (Prefer: respond-async): the write is queued, not yet committed.",
                        "headers": async_headers}
    responses["202-location"] = {
        "description": "Accepted (Prefer: respond-async): the write is queued; Location is where to read it.",
        "headers": {**async_headers, "Location": _ref("headers", "Location")},
    }
    return {
        "schemas": components,
        "responses": responses,
        "parameters": _PARAMETERS,
        "headers": _HEADERS,
        "securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer",
            "description": "A token from POST /v1/api/login, as `Authorization: Bearer <token>`.",
        }},
    }


@cache
def _document() -> dict:
    paths: dict[str, dict] = {}
    for method, path, *rest in _ROUTES:
        paths.setdefault(path, {})[method] = _operation(path, *rest)
    return with_request_id_header({
        "openapi": "3.1.0",
        "info": {"title": "Sector", "version": VERSION, "description": "The Rest-like API for the Sector application."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": t} for t in ("Misc", "Account", "Authentication", "Group", "Channel", "Message",
                                                  "Realtime")],
        "paths": paths,
        "components": _components(),
    })


def document() -> dict:
    """The OpenAPI document; built once, and a copy so no caller can change the cached one."""
    return copy.deepcopy(_document())
