"""The OpenAPI 3.1 document of the RosettaChat dialect as built: the JSON Schemas of the request forms
and response structs, plus the route tables (identity below, chat in handlers/rosetta/chat_openapi.py)."""

from __future__ import annotations

import copy
import re
from functools import cache

from handlers.ops.metrics import with_request_id_header
from handlers.rosetta import auth, chat_openapi, devices, files, me, messages, paging, resources, rooms, schemas, social
from handlers.rosetta.forms import json_schema
from handlers.rosetta.me import ABILITIES

VERSION = "1.0.0"
API = "/api/v1"
SESSION_COOKIE = "rosettachat_session"

# Request bodies: each a form the handler validates with, so the two cannot drift apart.
_FORMS = {"RegisterForm": auth.REGISTER, "LoginForm": auth.LOGIN, "OtpForm": auth.OTP, "OtpVerifyForm": auth.OTP_VERIFY,
          "ForgotPasswordForm": auth.FORGOT, "ResetPasswordForm": auth.RESET, "ChangePasswordForm": auth.CHANGE,
          "ProfileForm": me.PROFILE, "TokenForm": me.NEW_TOKEN, "SocialCallbackForm": social.CALLBACK,
          **chat_openapi.FORMS}

_PROVIDER = "The OAuth provider's name, as the deployment configures it."
_ULID = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"
_PATH_PARAMS = {
    "token_id": ("The token's id: the part of `<id>|<secret>` before the `|`.", {"type": "string", "pattern": _ULID}),
    "id": ("The user id the link was made for.", {"type": "integer"}),
    "hash": ("The SHA-1 (hex) of the email address the link verifies.", {"type": "string"}),
    **chat_openapi.PATH_PARAMS,
}


def _query_parameters(form) -> list[tuple[str, str, dict]]:
    """(name, description, schema) of each field of a query form; integers arrive as digits, and a query
    value is never null (an absent one is)."""
    def schema(name, field):
        found = json_schema({name: field})["properties"][name]
        if "enum" in found:
            found["enum"] = [value for value in found["enum"] if value is not None]
        return {k: v for k, v in found.items() if k != "description"} | (
            {"type": "integer"} if field.type == "integer" else {"type": "string"})
    return [(name, field.description, schema(name, field)) for name, field in form.items()]


_QUERY = {
    "verify": [("expires", "When the link expires (Unix time), as the mailed link has it.", {"type": "integer"}),
               ("signature", "The link's signature, as the mailed link has it.", {"type": "string"})],
    "page": _query_parameters(paging.PAGE),
    "messages": _query_parameters(messages.LIST),
    "files": _query_parameters(files.LIST),
    "devices": _query_parameters(devices.LIST),
    "rooms": _query_parameters(rooms.LIST),
    **chat_openapi.REALTIME_QUERY,
}

_STATE_COOKIE = "The web app's variant also sets the `oauth_state` cookie that binds the flow to this browser."
_SIGNS_IN = "Signs the user in: the app gets a bearer token, the web app a session cookie (and a fresh XSRF-TOKEN)."
_ABILITIES = ("A token carries abilities: `*` (everything its user may do), "
              + ", ".join(f"`{ability}`" for ability in ABILITIES if ability != "*")
              + ". A token without `*` reaches only routes that name one of its abilities (the temporary rooms' "
                "and automation's); every other route answers it 403 `Invalid ability provided.`")

# The app and web variants of each sign-in step: (path, operationId suffix, summary, success, options).
# success is (description, schema) where schema "SignIn" is TokenIssued for apps and SignedIn for the web.
# options: user (a signed-in caller), body (form, description), throttle (429), xsrf (web only: an open POST
# that needs the XSRF pair), state_cookie (web only: "set" or "needed"), services (False: no database or Redis,
# so no 503), method, any_provider, also (more statuses and their meaning), tag ("Social" for social steps).
_AUTH_STEPS = [
    ("register", "Register", "Register", ("The user is registered and signed in.", "SignIn"),
     {"body": ("RegisterForm", "The new account."), "throttle": True,
      "also": {422: "Invalid data, or `This email is already registered.`"}}),
    ("login", "Login", "Login", ("Signed in.", "SignIn"),
     {"body": ("LoginForm", "The user's credentials."), "throttle": True,
      "also": {403: "`Account is inactive.`", 422: "Invalid data, or `The provided credentials are incorrect.`"}}),
    ("otp", "RequestOtp", "Request OTP", ("A 6-digit code is mailed (a new one voids the last).", "Message"),
     {"body": ("OtpForm", "Where to send the code."), "throttle": True}),
    ("otp/verify", "VerifyOtp", "Verify OTP",
     ("Signed in; an email not registered yet becomes a new, verified account.", "SignIn"),
     {"body": ("OtpVerifyForm", "The mailed code."), "throttle": True,
      "also": {403: "`Account is inactive.`", 422: "Invalid data, or `Invalid or expired OTP.` (a code allows five "
                                                   "attempts, and works once)."}}),
    ("forgot-password", "ForgotPassword", "Forgot Password", ("A reset token is mailed.", "Message"),
     {"body": ("ForgotPasswordForm", "The account's address."), "throttle": True,
      "also": {422: "Invalid data, or `We could not find an account with that email.`"}}),
    ("reset-password", "ResetPassword", "Reset Password",
     ("The password is changed; every token and session of the user ends.", "Message"),
     {"body": ("ResetPasswordForm", "The mailed token and the new password."),
      "also": {422: "Invalid data, or `This password reset token is invalid.` (a token works once)."}}),
    ("logout", "Logout", "Logout", ("The bearer token of the request is revoked, or its session ended.", "Message"),
     {"user": True}),
    ("change-password", "ChangePassword", "Change Password",
     ("Changed; every other token and session of the user ends, the caller's stays.", "Message"),
     {"user": True, "body": ("ChangePasswordForm", "The current and the new password."),
      "also": {422: "Invalid data, or `The current password is incorrect.`"}}),
    ("social/{provider}/redirect", "SocialRedirect", "Get OAuth Redirect URL",
     ("Where to send the user's browser; its `state` is good for ten minutes, once.", "RedirectUrl"),
     {"tag": "Social", "xsrf": True, "state_cookie": "set", "services": False,
      "also": {422: "`The selected provider is invalid.`"}}),
    ("social/{provider}/callback", "SocialCallback", "OAuth Callback",
     ("Signed in: the user linked to this identity, else the user with its email if the provider verified it "
      "(linking it), else a new user.", "SignIn"),
     {"tag": "Social", "xsrf": True, "state_cookie": "needed",
      "body": ("SocialCallbackForm", "What the provider sent the browser back with."),
      "also": {403: "`Account is inactive.`",
               422: "Invalid data; an invalid provider, state or code; the provider shared no email; or an account "
                    "has the email but the provider, or the account's owner, has not verified it."}}),
    ("social/accounts", "ListLinkedAccounts", "List Linked Accounts", ("The user's linked accounts.", "LinkedAccounts"),
     {"tag": "Social", "user": True, "method": "get"}),
    ("social/{provider}/link", "LinkSocialAccount", "Link Social Account",
     ("Where to send the user's browser to link the provider.", "RedirectUrl"),
     {"tag": "Social", "user": True, "state_cookie": "set", "also": {422: "`The selected provider is invalid.`"}}),
    ("social/{provider}/link/callback", "CompleteLinkSocialAccount", "Complete Link Social Account",
     ("The identity is linked to the user.", "AccountLinked"),
     {"tag": "Social", "user": True, "state_cookie": "needed",
      "body": ("SocialCallbackForm", "What the provider sent the browser back with; `device_name` is ignored."),
      "also": {422: "Invalid data; an invalid provider, state or code; or the identity is already linked to this "
                    "or another user (`message` says which, without `errors`)."}}),
    ("social/{provider}/unlink", "UnlinkSocialAccount", "Unlink Social Account",
     ("The provider's accounts are unlinked.", "Message"),
     {"tag": "Social", "user": True, "method": "delete", "any_provider": True,
      "also": {404: "`Social account not found.`",
               422: "`Cannot unlink the last authentication method. Please set a password first.`"}}),
]

# The route table of the rest: (method, path, operationId, tag, summary, (status, description, schema), options).
# options, besides those above: query (a _QUERY entry), write ("create", "update" or "delete": through the write
# path, so `Prefer: respond-async` answers 202, and a create takes an Idempotency-Key), optional_body, multipart
# (a multipart/form-data body instead of JSON: (MULTIPART_FORMS entry, description)), download (the success is
# the file's bytes, with 206, 304 and 416 beside it), ability, webhook, static (no failures), set_cookie.
_ROUTES = [
    ("get", "/sanctum/csrf-cookie", "getCsrfCookie", "Web Authentication", "Get the XSRF-TOKEN cookie",
     (204, "The XSRF-TOKEN cookie is set: the session's token when signed in, else a new one good for a day.", None),
     {"set_cookie": True}),
    ("get", API + "/openapi.json", "getOpenApi", "Documentation", "This OpenAPI document",
     (200, "The OpenAPI 3.1 document of the RosettaChat API.", "OpenApi"), {"static": True}),
    ("get", API + "/me", "getCurrentUser", "Shared Authentication", "Get Current User", (200, "The user.", "Me"),
     {"user": True}),
    ("patch", API + "/me", "updateCurrentUser", "Me", "Update Current User", (200, "The updated user.", "Me"),
     {"user": True, "body": ("ProfileForm", "What to change; absent fields stay."), "optional_body": True}),
    ("get", API + "/auth/email/verify/{id}/{hash}", "verifyEmail", "Email Verification", "Verify Email",
     (200, "Verified (or it was already).", "Message"),
     {"query": "verify", "also": {302: "Verified; the deployment has a frontend URL, and this goes to it with "
                                       "`?verified=1`.",
                                  404: "`Verification link is invalid.`: altered, expired, or not the user's."}}),
    ("post", API + "/auth/email/verification-notification", "resendVerificationEmail", "Email Verification",
     "Resend Verification Email", (200, "Sent, unless the address is verified already (the answer is the same).",
                                   "Message"), {"user": True, "throttle": True}),
    ("get", API + "/me/tokens", "listAccessTokens", "Me", "List Personal Access Tokens",
     (200, "The user's live tokens (sign-in tokens included), newest first, one page of them.", "AccessTokenPage"),
     {"user": True, "query": "page"}),
    ("post", API + "/me/tokens", "createAccessToken", "Me", "Create a Personal Access Token",
     (201, "The token; `token` is shown this once.", "AccessTokenCreated"),
     {"user": True, "body": ("TokenForm", "The token's name, abilities and expiry.")}),
    ("delete", API + "/me/tokens/{token_id}", "revokeAccessToken", "Me", "Revoke a Personal Access Token",
     (204, "Revoked.", None), {"user": True, "also": {404: "`Token not found.`: no live token of the user's."}}),
]

_DESCRIPTIONS = {
    "Register": "Creates the account (unverified: a verification link is mailed) and signs it in. " + _SIGNS_IN,
    "Login": _SIGNS_IN + " Wrong credentials count against the email address and the client IP.",
    "RequestOtp": "Mails a one-time code for passwordless sign-in, good for ten minutes.",
    "VerifyOtp": "Creates a new account if the email is not registered. " + _SIGNS_IN,
    "ResetPassword": "Also ends every session and revokes every token of the user (an extension to the spec).",
    "Logout": "Ends what authenticated the request: the bearer token is revoked; a session is ended and its cookie "
              "cleared, with a fresh XSRF-TOKEN.",
    "ChangePassword": "Every other token and session of the user ends (an extension to the spec).",
    "SocialRedirect": _STATE_COOKIE,
    "SocialCallback": _SIGNS_IN,
    "LinkSocialAccount": _STATE_COOKIE,
    "UnlinkSocialAccount": "Any provider name, even one no longer enabled.",
    "getCsrfCookie": "Laravel Sanctum's SPA handshake, outside the API prefix (not in the RosettaChat spec). The web "
                     "app echoes the cookie in the `X-XSRF-TOKEN` header of every POST, PATCH and DELETE.",
    "getCurrentUser": "Works with a bearer token or a session. `preferred_language` and `avatar_url` extend the spec.",
    "updateCurrentUser": "Answers the updated user (the spec documents no response).",
    "verifyEmail": "The link mailed at sign-up (and by the verification-notification endpoint): a temporary signed "
                   "URL, good for an hour.",
    "resendVerificationEmail": "Answers the same whether or not the address is verified already, so as not to "
                               "tell. Limited per user.",
    "listAccessTokens": "Personal access tokens, an extension to the spec (Laravel Sanctum's). " + _ABILITIES,
    "createAccessToken": "Mints a personal access token for a bot or an embed (an extension to the spec). "
                         + _ABILITIES,
    "revokeAccessToken": "The token stops working at once (an extension to the spec).",
    **chat_openapi.DESCRIPTIONS,
}

# OpenAPI links: where the id a create answers with can be used next.
_LINKS = {"createAccessToken": {"revokeAccessToken": {"token_id": "$response.body#/data/id"}}, **chat_openapi.LINKS}

_ERRORS = {
    400: "The body is not JSON, or not a JSON object.",
    401: "No bearer token or session, or one that is unknown, expired or revoked.",
    403: "The account is inactive, or the bearer token lacks the ability (`Invalid ability provided.`).",
    404: "No such resource.",
    413: "The body is larger than the server accepts.",
    419: "`CSRF token mismatch.`: a change made with cookies whose X-XSRF-TOKEN header is missing or is not the "
         "XSRF-TOKEN the server set.",
    422: "The request is invalid; `errors` names each failing field, with Laravel's wording.",
    429: "`Too Many Attempts.`: retry after Retry-After seconds.",
    503: "The database, Redis or the write workers are unreachable or slow; retry after Retry-After seconds. A write "
         "that timed out stays queued and is applied once.",
}

_HEADERS = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "required": True,
                    "schema": {"type": "integer", "minimum": 1}},
    "Set-Cookie": {"description": "The cookies this answer sets (HttpOnly session cookie, script-readable XSRF-TOKEN, "
                                  "or the web social flow's `oauth_state`).",
                   "required": True, "schema": {"type": "string"}},
    "Location": {"description": "Where to go.", "required": True, "schema": {"type": "string"}},
    "Preference-Applied": {"description": "RFC 7240: the respond-async preference was honoured.", "required": True,
                           "schema": {"type": "string", "enum": ["respond-async"]}},
    "ETag": {"description": "The file's SHA-256 (hex), quoted: send it back in If-None-Match.", "required": True,
             "schema": {"type": "string", "pattern": '^"[0-9a-f]{64}"$'}},
    "Cache-Control": {"description": "A private copy may be kept, but checked (If-None-Match) before each use.",
                      "required": True, "schema": {"type": "string", "enum": ["private, no-cache"]}},
    "Accept-Ranges": {"description": "One `bytes` Range is served.", "required": True,
                      "schema": {"type": "string", "enum": ["bytes"]}},
    "Content-Disposition": {"description": "RFC 6266: `inline` for images, audio, video, plain text and PDF, else "
                                           "`attachment`; the client's file name as an ASCII `filename` and as "
                                           "`filename*` (UTF-8, percent-encoded).",
                            "required": True, "schema": {"type": "string", "pattern": "^(inline|attachment); "}},
    "X-Content-Type-Options": {"description": "Browsers keep to the Content-Type.", "required": True,
                               "schema": {"type": "string", "enum": ["nosniff"]}},
    "Content-Length": {"description": "The bytes sent.", "required": True, "schema": {"type": "integer", "minimum": 0}},
    "Content-Range": {"description": "RFC 9110: which bytes these are, of how many (`bytes first-last/size`).",
                      "required": True, "schema": {"type": "string", "pattern": r"^bytes \d+-\d+/\d+$"}},
    "Content-Range-Unsatisfied": {"description": "RFC 9110: the file's size (`bytes */size`).", "required": True,
                                  "schema": {"type": "string", "pattern": r"^bytes \*/\d+$"}},
}

_PARAMETERS = {
    "Prefer": {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"},
               "example": "respond-async",
               "description": "RFC 7240. `respond-async` answers 202 at once instead of awaiting the commit; other "
                              "preferences are ignored."},
    "Idempotency-Key": {"name": "Idempotency-Key", "in": "header", "required": False,
                        "schema": {"type": "string", "maxLength": 255},
                        "description": "Makes a retried create safe: a repeat of the same request with the same key "
                                       "creates nothing new and answers as the first did; the same key on a "
                                       "different request is a 422."},
    "X-XSRF-TOKEN": {"name": "X-XSRF-TOKEN", "in": "header", "required": True, "schema": {"type": "string"},
                     "description": "The value of the XSRF-TOKEN cookie (from GET /sanctum/csrf-cookie); 419 without."},
    "XSRF-TOKEN": {"name": "XSRF-TOKEN", "in": "cookie", "required": True, "schema": {"type": "string"},
                   "description": "The cookie GET /sanctum/csrf-cookie sets; the X-XSRF-TOKEN header must equal it."},
    "oauth_state": {"name": "oauth_state", "in": "cookie", "required": True, "schema": {"type": "string"},
                    "description": "The cookie the web redirect set; the state must be the one made with it."},
    "Range": {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"},
              "example": "bytes=0-1023",
              "description": "RFC 9110: one span, `bytes=first-last`, `bytes=first-` or `bytes=-suffix` (the last "
                             "bytes), answers 206 with those bytes, or 416 when the file has none of them. Several "
                             "spans or another unit are ignored: 200 with the whole file."},
    "If-None-Match": {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                      "example": '"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"',
                      "description": "ETags of copies the client holds (weak ones too), or `*`: 304 when one is "
                                     "the file's."},
}


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: str | None) -> dict:
    if schema == "events":  # server-sent events (the realtime routes)
        # Each event: `event` names it, `data` is its frame's JSON, `id` (stored events) `<epoch>:<seq>`.
        event = {"type": "object", "required": ["data"], "properties": {
            "event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}}}
        return {"content": {"text/event-stream": {"schema": event}}}
    return {} if schema is None else {"content": {"application/json": {"schema": _ref("schemas", schema)}}}


# A download's answer: the file's bytes, with these headers.
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
_FILE_HEADERS = ("ETag", "Cache-Control", "Accept-Ranges", "Content-Disposition", "X-Content-Type-Options")


def _download_headers(*names: str) -> dict:
    return {name: _ref("headers", name) for name in (*_FILE_HEADERS, *names)}


def _security(method: str, options: dict) -> list:
    if options.get("guest"):
        return [{"guestToken": []}]
    if options.get("webhook"):
        return [{"webhookSecret": []}, {"webhookBearer": []}]
    if options.get("ability"):
        return [{"bearerAuth": [options["ability"]]}]
    if not options.get("user"):
        return []
    if options.get("sessionless"):  # a browser takes a ticket instead (the realtime routes)
        return [{"bearerAuth": ["*"]}] + ([{"guestToken": []}] if options.get("guest_too") else [])
    session = {"sessionCookie": []} if method == "get" else {"sessionCookie": [], "xsrfHeader": []}
    return [{"bearerAuth": ["*"]}, session] + ([{"guestToken": []}] if options.get("guest_too") else [])


def _parameters(path: str, options: dict, providers: tuple[str, ...]) -> list[dict]:
    parameters = []
    for name in re.findall(r"{(\w+)}", path):
        if name == "provider":
            schema = {"type": "string"}
            if providers and not options.get("any_provider"):
                schema["enum"] = list(providers)
            description = _PROVIDER + ("" if providers or options.get("any_provider") else
                                       " None is enabled on this deployment, so every call answers 422.")
        else:
            # The same name means different things on different paths: `{id}` is the last one's.
            key = path if name == "id" and path in _PATH_PARAMS else name
            description, schema = _PATH_PARAMS[key]
        parameters.append({"name": name, "in": "path", "required": True, "description": description, "schema": schema})
    for name, description, schema in _QUERY.get(options.get("query"), []):
        parameters.append({"name": name, "in": "query", "required": options["query"] == "verify",
                           "description": description, "schema": schema})
    if options.get("xsrf"):
        parameters += [_ref("parameters", "X-XSRF-TOKEN"), _ref("parameters", "XSRF-TOKEN")]
    if options.get("write"):
        parameters.append(_ref("parameters", "Prefer"))
    if options.get("write") == "create":
        parameters.append(_ref("parameters", "Idempotency-Key"))
    if options.get("state_cookie") == "needed":
        parameters.append(_ref("parameters", "oauth_state"))
    if options.get("download"):
        parameters += [_ref("parameters", "Range"), _ref("parameters", "If-None-Match")]
    return parameters


def _failures(method: str, path: str, options: dict) -> dict[int, dict]:
    """Every error status the operation can answer."""
    if options.get("static"):
        return {}
    statuses = {503} if options.get("services", True) else set()
    if "{" in path:
        statuses.add(404)  # a path parameter that leads nowhere (one with a slash, say)
    if options.get("user"):
        statuses |= {401, 403} | ({419} if method != "get" else set())
    if options.get("xsrf"):
        statuses.add(419)
    if "body" in options:
        statuses |= {400, 413, 422}
    if "multipart" in options:
        statuses |= {413, 422}  # no 400: a body that is not multipart names no file, a 422
    if options.get("query") or options.get("write") == "create":
        statuses.add(422)  # the query, or a malformed or reused Idempotency-Key
    if options.get("webhook"):
        statuses |= {401, 403}
    if options.get("guest") or options.get("guest_too"):
        statuses.add(401)
    if options.get("throttle"):
        statuses.add(429)
    failures = {status: _ref("responses", str(status)) for status in statuses}
    for status, text in options.get("also", {}).items():
        if isinstance(text, tuple):  # another success: (description, schema)
            failures[status] = {"description": text[0], **_json(text[1])}
        elif status == 302:
            failures[status] = {"description": text, "headers": {"Location": _ref("headers", "Location")}}
        else:
            failures[status] = {"description": text, **_json("ValidationError" if status == 422 else "Message")}
    if options.get("guest") or options.get("guest_too"):
        failures.setdefault(410, {"description": "`Temporary Room is not available.` (`errors.code`: "
                                                 "`temporary_room_expired`): the room has expired.",
                                  **_json("CodedError")})
    if options.get("write"):
        failures[202] = _ref("responses", "202-location" if options["write"] == "create" else "202")
    if options.get("download"):
        failures |= {status: _ref("responses", str(status)) for status in (206, 304, 416)}
    return failures


def _operation(method, path, op_id, tag, summary, success, options, providers) -> dict:
    operation = {"operationId": op_id, "tags": [tag], "summary": summary}
    if description := options.get("description") or _DESCRIPTIONS.get(op_id):
        operation["description"] = description
    operation["security"] = _security(method, options)
    if parameters := _parameters(path, options, providers):
        operation["parameters"] = parameters
    if "body" in options:
        schema, text = options["body"]
        operation["requestBody"] = {"required": not options.get("optional_body"), "description": text,
                                    "content": {"application/json": {"schema": _ref("schemas", schema)}}}
    elif "multipart" in options:
        schema, text = options["multipart"]
        media = {"schema": _ref("schemas", schema)}
        if part_types := chat_openapi.MULTIPART_FORMS[schema][1]:
            media["encoding"] = {part: {"contentType": media_type} for part, media_type in part_types.items()}
        operation["requestBody"] = {"required": True, "description": text, "content": {"multipart/form-data": media}}
    status, description, content = success
    response = {"description": description, **_json(content)}
    if options.get("set_cookie"):
        response["headers"] = {"Set-Cookie": _ref("headers", "Set-Cookie")}
    if options.get("download"):
        response |= {"headers": _download_headers("Content-Length"), "content": _BYTES}
    if op_id in _LINKS:
        response["links"] = {target: {"operationId": target, "parameters": parameters}
                             for target, parameters in _LINKS[op_id].items()}
    responses = {status: response, **_failures(method, path, options)}
    operation["responses"] = {str(status): responses[status] for status in sorted(responses)}
    return operation


def _auth_routes() -> list[tuple]:
    """The table rows of the sign-in steps, for apps and for the web app."""
    rows = []
    for path, name, summary, (description, schema), options in _AUTH_STEPS:
        social_tag = " - Social" if options.get("tag") == "Social" else ""
        for mode, title in (("app", "App Authentication"), ("web", "Web Authentication")):
            web = mode == "web"
            mode_options = {**options, "xsrf": web and options.get("xsrf", not options.get("user")),
                            "set_cookie": web and (schema == "SignIn" or options.get("state_cookie") == "set"),
                            "state_cookie": options.get("state_cookie") if web else None,
                            "description": _DESCRIPTIONS.get(name)}
            content = ("SignedIn" if web else "TokenIssued") if schema == "SignIn" else schema
            rows.append((options.get("method", "post"), f"{API}/auth/{mode}/{path}", mode + name, title + social_tag,
                         summary, (200, description, content), mode_options))
    return rows


def _components(session_cookie: str) -> dict:
    components = schemas.json_schemas(schemas.SCHEMAS + resources.SCHEMAS)
    components |= {name: json_schema(form) for name, form in _FORMS.items()}
    components |= {name: schema for name, (schema, _) in chat_openapi.MULTIPART_FORMS.items()}
    components["ValidationError"] = {
        "type": "object", "required": ["message"],
        "properties": {"message": {"type": "string"},
                       "errors": {"type": "object", "description": "Each failing field, with what is wrong with it.",
                                  "additionalProperties": {"type": "array", "items": {"type": "string"}}}},
    }
    components["RealtimeTicketOne"] = {
        "type": "object", "required": ["data"], "properties": {"data": {
            "type": "object", "required": ["ticket", "expires_in"],
            "properties": {"ticket": {"type": "string"}, "expires_in": {"type": "integer"}}}}}
    components["CodedError"] = {
        "type": "object", "required": ["message", "errors"],
        "properties": {"message": {"type": "string"},
                       "errors": {"type": "object", "required": ["code"],
                                  "properties": {"code": {"type": "array", "items": {"type": "string"},
                                                          "description": "What went wrong, for programs."}}}},
    }
    components["Forbidden"] = {  # a route's own coded refusal, or the token's missing ability (message alone)
        "type": "object", "required": ["message"],
        "properties": {"message": {"type": "string"}, "errors": components["CodedError"]["properties"]["errors"]},
    }
    components["Unauthenticated"] = {"type": "object", "required": ["message"],
                                     "properties": {"message": {"const": "Unauthenticated."}}}
    components["OpenApi"] = {"type": "object", "description": "An OpenAPI 3.1 document.", "required": ["openapi"]}
    responses = {str(status): {"description": text, **_json("ValidationError" if status == 422 else "Message")}
                 for status, text in _ERRORS.items()}
    responses["401"] = {"description": _ERRORS[401], **_json("Unauthenticated")}
    for status in ("429", "503"):
        responses[status]["headers"] = {"Retry-After": _ref("headers", "Retry-After")}
    applied = {"Preference-Applied": _ref("headers", "Preference-Applied")}
    responses["202"] = {"description": "Accepted (Prefer: respond-async): the write is queued, not yet committed.",
                        "headers": applied}
    responses["202-location"] = {"description": "Accepted (Prefer: respond-async): the write is queued; Location is "
                                                "where to read it once committed, where it can be read by id.",
                                 "headers": {**applied, "Location": _ref("headers", "Location")}}
    responses["206"] = {"description": "The bytes of the one span the `Range` asked for (cut at the end of the file).",
                        "headers": _download_headers("Content-Length", "Content-Range"), "content": _BYTES}
    responses["304"] = {"description": "Not modified: `If-None-Match` names the file's ETag (or is `*`).",
                        "headers": {name: _ref("headers", name) for name in ("ETag", "Cache-Control")}}
    responses["416"] = {"description": "Range not satisfiable: the span starts past the end of the file, ends before "
                                       "it starts, or asks for no bytes.",
                        "headers": {**_download_headers(), "Content-Range": _ref("headers",
                                                                                 "Content-Range-Unsatisfied")}}
    return {
        "schemas": components,
        "responses": responses,
        "parameters": _PARAMETERS,
        "headers": _HEADERS,
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "A Laravel Sanctum token, `<id>|<secret>`, as `Authorization: Bearer "
                                          "<token>`: from an app sign-in, or minted at POST /api/v1/me/tokens. "
                                          + _ABILITIES},
            "sessionCookie": {"type": "apiKey", "in": "cookie", "name": session_cookie,
                              "description": "The web app's session, set by a web sign-in. Each POST, PATCH and "
                                             "DELETE made with it must also carry X-XSRF-TOKEN (419 otherwise)."},
            "webhookSecret": {"type": "apiKey", "in": "header", "name": "X-Webhook-Secret",
                              "description": "An incoming webhook's secret, shown when it was made or regenerated."},
            "webhookBearer": {"type": "http", "scheme": "bearer",
                              "description": "The same webhook secret, as `Authorization: Bearer <secret>`."},
            "guestToken": {"type": "apiKey", "in": "header", "name": "X-Rosetta-Guest-Token",
                           "description": "A temporary room's guest session token, `grst_...`, from joining it: "
                                          "good in that room only, until the room expires."},
            "xsrfHeader": {"type": "apiKey", "in": "header", "name": "X-XSRF-TOKEN",
                           "description": "The session's XSRF token: the XSRF-TOKEN cookie, echoed."},
        },
    }


@cache
def _document(session_cookie: str, providers: tuple[str, ...]) -> dict:
    paths: dict[str, dict] = {}
    for method, path, *rest in _auth_routes() + _ROUTES + chat_openapi.ROUTES:
        paths.setdefault(path, {})[method] = _operation(method, path, *rest, providers)
    tags = ("App Authentication", "App Authentication - Social", "Web Authentication", "Web Authentication - Social",
            "Shared Authentication", "Email Verification", "Me", *chat_openapi.TAGS, "Documentation")
    return with_request_id_header({
        "openapi": "3.1.0",
        "info": {"title": "RosettaChat API", "version": VERSION,
                 "description": "RosettaChat V1: authentication (apps by bearer token, the web app by session "
                                "cookie), the current user, personal access tokens, workspaces with members, "
                                "channels and invites, channel and direct messages, incoming webhooks and "
                                "automation, file uploads and message attachments, push devices, external temporary "
                                "rooms with guests. Every write goes through a "
                                "queue: `Prefer: respond-async` answers 202 at once, and `Idempotency-Key` makes a "
                                "retried create safe."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": ["*"]}, {"sessionCookie": []}],
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": _components(session_cookie),
    })


def document(*, session_cookie: str = SESSION_COOKIE, providers: tuple[str, ...] = ()) -> dict:
    """The OpenAPI document for a deployment with this session cookie and these OAuth providers enabled;
    built once, and a copy so no caller can change the cached one."""
    return copy.deepcopy(_document(session_cookie, tuple(sorted(providers))))


def document_for(settings) -> dict:
    """The OpenAPI document of the deployment `settings` describe."""
    return document(session_cookie=settings.auth.session_cookie,
                    providers=tuple(name for name, provider in settings.oauth.items() if provider.enabled))

