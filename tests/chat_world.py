"""What the RosettaChat schemathesis tests need for the chat operations: a workspace the owner runs, with a
channel, a member, messages, an invite, a webhook and a conversation, the owner's files (a staged one, and
one attached to a channel message and one to a direct message) and push devices, the owner's temporary rooms
and a guest of them, and the values a real client of them would send in a positive case (ids that exist, a
free slug, a secret that works, files of its own to attach, a Range the file has bytes for, a `ttl_hours`
its limits allow).

Operations that destroy what they name (a DELETE, a member removed) get a resource made for the purpose,
so the shared world stays whole for the cases after them.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid

import httpx

from tests.room_world import FILE_BYTES, OWNER_ROUTES, ROOMS, Rooms

_API = "/api/v1"
_counter = itertools.count()
_PUSH_TOKENS = {"apns": lambda: uuid.uuid4().hex * 2, "expo": lambda: f"ExponentPushToken[{uuid.uuid4().hex}]",
                "fcm": lambda: f"spec-{uuid.uuid4().hex}"}


class ChatWorld:
    """Real chat resources of `owner` (a signed-in client), and `member` who joined the owner's workspace."""

    def __init__(self, owner: httpx.Client, member: httpx.Client, member_id: int, make_user, expire_room,
                 room_limits: tuple[dict, dict]):
        """`make_user()` signs a new user up and returns (their client, their id); `expire_room(room_id)`
        closes a room now; `room_limits` are the owner's temporary-room limits (raised: they allow
        hundreds of rooms) and a new user's."""
        self.owner, self.member, self.member_id, self.make_user = owner, member, member_id, make_user
        self.rooms = Rooms(owner, make_user()[0], expire_room, room_limits)
        self.ws = self._created("/workspaces", {"name": "Spec Workspace", "visibility": "public"})
        self.channel = self._created(f"/workspaces/{self.ws}/channels", {"name": "spec"})
        assert member.post(f"/workspaces/{self.ws}/join").status_code == 201
        self.message = self._message()
        self.member_email = member.get("/me").json()["email"]
        hook = owner.post(f"/workspaces/{self.ws}/webhooks",
                          json={"name": "spec hook", "default_channel_id": self.channel}).json()["data"]
        self.webhook, self.webhook_secret = hook["id"], hook["secret"]
        self.conversation = owner.post("/direct-conversations",
                                       json={"participant_user_id": str(member_id)}).json()["data"]["id"]
        self.automation_token = owner.post("/me/tokens", json={"name": "spec bot", "abilities": ["automation:post"]}
                                           ).json()["data"]["token"]
        self.file = self.upload()  # staged, and never attached: a post that names it would claim it
        # In a channel of its own: cases change the shared channel (to a password one, say), which the owner
        # would then have to enter to read.
        self.files_channel = self._created(f"/workspaces/{self.ws}/channels", {"name": "spec files"})
        self.attachment = self._attached(f"/workspaces/{self.ws}/channels/{self.files_channel}/messages")
        self.direct_attachment = self._attached(f"/direct-conversations/{self.conversation}/messages")
        self.sizes = dict.fromkeys((self.file, self.attachment, self.direct_attachment, self.rooms.file,
                                    self.rooms.attachment), len(FILE_BYTES))

    def _created(self, path: str, body: dict) -> str:
        answer = self.owner.post(path, json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]["id"]

    def _message(self) -> str:
        return self._created(f"/workspaces/{self.ws}/channels/{self.channel}/messages", {"content": "spec message"})

    def upload(self) -> str:
        """A file the owner staged (uploaded, not attached yet)."""
        answer = self.owner.post("/files", files={"file": ("spec.txt", FILE_BYTES)})
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]["id"]

    def _attached(self, messages: str) -> str:
        """The attachment id of a new file of the owner's, posted (without content) to `messages`."""
        answer = self.owner.post(messages, json={"attachment_ids": [self.upload()]})
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]["attachments"][0]["id"]

    def _invite_token(self) -> str:
        answer = self.owner.post(f"/workspaces/{self.ws}/invites", json={})
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]["token"]

    def handles(self, path: str) -> bool:
        # `/me` and what is under it, but not `/message-attachments`.
        return path != _API + "/me" and not path.startswith(
            (_API + "/auth/", _API + "/me/", _API + "/openapi", "/sanctum/"))

    def point_ids(self, case) -> None:
        """Path ids of live resources; a fresh one where the operation destroys it."""
        params, path, method = case.path_parameters or {}, case.operation.path, case.method.lower()
        doomed = method == "delete"
        if "workspace_id" in params:
            params["workspace_id"] = self.ws
        if path == f"{_API}/workspaces/{{id}}":
            params["id"] = self._created("/workspaces", {"name": "doomed"}) if doomed else self.ws
        elif path.endswith("/channels/{id}"):
            params["id"] = self._created(f"/workspaces/{self.ws}/channels", {"name": "doomed"}) if doomed \
                else self.channel
        elif path.endswith("/members/{id}"):
            params["id"] = self._doomed_member() if doomed else self.member_id
        elif path.endswith("/invites/{id}"):
            params["id"] = self.owner.post(f"/workspaces/{self.ws}/invites", json={}).json()["data"]["id"]
        elif path.endswith("/webhooks/{id}"):
            params["id"] = self._created(f"/workspaces/{self.ws}/webhooks", {"name": "doomed"}) if doomed \
                else self.webhook
        if "channel_id" in params:
            params["channel_id"] = self.channel
        if "message_id" in params:
            params["message_id"] = self._message() if method in ("delete", "patch") else self.message
        if "conversation_id" in params:
            params["conversation_id"] = self.conversation
        if "token" in params:
            params["token"] = self._invite_token()
        if "webhook_id" in params:
            params["webhook_id"] = self.webhook
        if path == f"{_API}/files/{{id}}":
            params["id"] = self.upload() if doomed else self.file
        if "file_id" in params:
            params["file_id"] = self.file
        if "attachment_id" in params:
            params["attachment_id"] = self.direct_attachment if "/direct-message-" in path else self.attachment
        if path == f"{_API}/devices/{{id}}":  # only DELETE: a device of its own
            params["id"] = self._created("/devices", {"platform": "ios", "provider": "apns",
                                                      "push_token": uuid.uuid4().hex * 2})
        self.rooms.point_ids(case)

    def authorize(self, case) -> None:
        """The credentials the operation takes (a webhook's secret, an automation token, a token with the
        room abilities), and an Idempotency-Key of its own: a generated key repeats, and a repeat with
        another body is refused. Before point_ids, which may make a case a guest's or another owner's."""
        path = case.operation.path
        headers = case.headers = case.headers or {}
        if "Idempotency-Key" in headers:
            headers["Idempotency-Key"] = f"spec-{uuid.uuid4().hex}"
        if path.startswith(_API + "/webhooks/"):
            headers["X-Webhook-Secret"] = self.webhook_secret
        elif path.startswith(_API + "/automation/"):
            headers["Authorization"] = f"Bearer {self.automation_token}"
        elif path in OWNER_ROUTES:
            headers["Authorization"] = f"Bearer {self.rooms.token}"

    def _doomed_member(self) -> int:
        client, user_id = self.make_user()
        assert client.post(f"/invites/{self._invite_token()}/accept").status_code == 201
        return user_id

    def adapt_body(self, case) -> None:
        """A body the rules beyond the schema accept: a free slug, a password with `password`, real ids."""
        body, path = case.body, case.operation.path
        if isinstance(body.get("slug"), str) and body["slug"].strip():
            body["slug"] = f"{body['slug'].strip()[:60]}-{uuid.uuid4().hex[:8]}-{next(_counter)}"
        if body.get("visibility") == "password" and not body.get("password"):
            body["password"] = "open sesame"
        if isinstance(body.get("password"), str) and len(body["password"]) < 8:
            body["password"] = body["password"] + "-padded-"
        if path.endswith("/messages") and "/webhooks/" not in path:
            upload, parent = self.rooms.for_message(case) if path.startswith(ROOMS) else (self.upload, self.message)
            if isinstance(body.get("attachment_ids"), list) and body["attachment_ids"]:
                # The author's own staged files; the generated ids name none.
                body["attachment_ids"] = [upload() for _ in body["attachment_ids"][:2]]
            elif not (isinstance(body.get("content"), str) and body["content"].strip()):
                body["content"] = "spec content"
            if body.get("parent_message_id") is not None:
                body["parent_message_id"] = parent
        if path == f"{_API}/files" and isinstance(body.get("meta"), dict) and len(json.dumps(body["meta"])) > 4096:
            body["meta"] = {"spec": "meta"}  # the description's limit, which a JSON Schema cannot state
        if "/webhooks" in path:
            if body.get("default_channel_id") is not None:
                body["default_channel_id"] = self.channel
            if path.endswith("/messages"):  # an update may have taken the webhook's default channel away
                body["channel_id"] = self.channel
        if path.endswith("/direct-recipients/resolve"):  # a generated address may be on a special-use domain
            body["email"] = self.member_email if next(_counter) % 2 else f"nobody-{uuid.uuid4().hex[:12]}@example.com"
        if path == f"{_API}/devices" and body.get("provider") in _PUSH_TOKENS:
            # A token of the provider's shape, for a platform it reaches (`apns` is iOS only, `expo` not web).
            body["push_token"] = _PUSH_TOKENS[body["provider"]]()
            if body.get("platform") not in ("ios", "android", "web") or (
                    body["provider"] != "fcm" and body["platform"] != "ios"):
                body["platform"] = "ios"
        if "participant_user_id" in body:
            body["participant_user_id"] = str(self.member_id)
        if path.endswith("/channels/{channel_id}/members"):
            body["user_id"] = self.member_id
        if path.startswith(ROOMS):
            self.rooms.adapt_body(case)

    def fit_range(self, case) -> None:
        """A download's Range as a client that knows the file's size sends it: one the file has bytes for
        (an empty file has none, so no Range). A Range that is not one `bytes=` span is ignored by the
        server, and kept."""
        headers, params = case.headers or {}, case.path_parameters or {}
        wanted = headers.get("Range")
        if not case.operation.path.endswith("/download") or not isinstance(wanted, str):
            return
        target = params.get("file_id") or params.get("attachment_id")
        size = self.sizes.get(target)
        if size is None and "file_id" in params:  # a file uploaded in a linked call
            found = self.owner.get(f"/files/{target}")
            size = found.json()["data"]["size"] if found.status_code == 200 else None
        span = _RANGE.match(wanted.strip())
        if size is None or span is None or not any(span.groups()):
            return  # a file that is not there (404), or a Range the server ignores
        first, last = span.groups()
        satisfiable = (int(first) < size and (not last or int(last) >= int(first))) if first \
            else int(last) > 0 and size > 0
        if not satisfiable:
            if size:
                headers["Range"] = "bytes=0-"
            else:
                del headers["Range"]


#: A single byte range as the server reads one (files.py's _RANGE).
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
