"""The temporary rooms of the RosettaChat schemathesis world (tests/chat_world.py): the owner's rooms, a guest
of them with its own files, and what a real owner's or guest's positive case would send."""

from __future__ import annotations

import httpx

_API = "/api/v1"
FILE_BYTES = b"spec file contents"

GUEST = "X-Rosetta-Guest-Token"
ROOMS = _API + "/external/rooms"
_ROOM = ROOMS + "/{room_id}"
OWNER_ROUTES = {ROOMS, ROOMS + "/usage", _ROOM, _ROOM + "/extend"}
_GUEST_ROUTES = {_ROOM + "/messages", _ROOM + "/messages/{message_id}"}
#: The operations a guest token opens besides its room's (not DELETE /files/{id}).
_GUEST_TOO = {("post", _API + "/files"), ("get", _API + "/files/{id}"), ("get", _API + "/files/{file_id}/download"),
              ("get", _API + "/message-attachments/{attachment_id}/download")}


class Rooms:
    """Temporary rooms of the owner (limits raised, so few cases meet a quota) through a token with the
    room abilities, one of them expired; a guest of the live one, with a message, a staged file and an
    attachment of its own; and `thrifty`, an owner on the deployment's limits (three active rooms, no
    extension), whose token every fifth positive case on an owner route takes, to meet the 403s.
    """

    def __init__(self, owner: httpx.Client, thrifty: httpx.Client, expire_room, limits: tuple[dict, dict]):
        self.http = httpx.Client(base_url=owner.base_url, timeout=30)
        self.token, self.thrifty = _room_token(owner), _room_token(thrifty)
        self.limits = dict(zip((self.token, self.thrifty), limits, strict=True))
        self._guests: dict[str, str | None] = {}  # a room of the world's: a guest's token, once one joined
        self._turns: dict[str, int] = {}
        self.room, self.expired, self.thrifty_room = self.create(), self.create(), self.create(self.thrifty)
        self.guest = self.guest_of(self.room)
        self.guest_of(self.expired)  # so that its guest routes answer the 410 of an expired room
        expire_room(self.expired)
        self.message = self._posted({"content": "spec guest message"})["id"]
        self.file = self.upload()  # staged, and never attached
        self.attachment = self._posted({"attachment_ids": [self.upload()]})["attachments"][0]["id"]

    def create(self, token: str | None = None) -> str:
        """A new room of the owner's (or of the owner of `token`)."""
        answer = self.http.post("/external/rooms", json={"name": "spec room"},
                                headers={"Authorization": f"Bearer {token or self.token}"})
        assert answer.status_code == 201, answer.text
        self._guests[answer.json()["data"]["room_id"]] = None
        return answer.json()["data"]["room_id"]

    def guest_of(self, room_id) -> str | None:
        """A guest token of one of the world's rooms (None for any other id), joining it the first time."""
        if room_id in self._guests and self._guests[room_id] is None:
            answer = self.http.post(f"/external/rooms/{room_id}/guests",
                                    json={"nickname": "Spec Guest", "preferred_language": "en"})
            if answer.status_code == 201:
                self._guests[room_id] = answer.json()["data"]["session"]["token"]
        return self._guests.get(room_id)

    def upload(self, token: str | None = None) -> str:
        """A file the guest (or the guest of `token`) staged."""
        answer = self.http.post("/files", files={"file": ("guest.txt", FILE_BYTES)},
                                headers={GUEST: token or self.guest})
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]["id"]

    def for_message(self, case) -> tuple:
        """What the guest of the case's room attaches (files it staged) and replies to (a message of the
        room, or none) as it posts."""
        room_id = (case.path_parameters or {}).get("room_id")
        token = self.guest_of(room_id) if room_id != self.expired else None  # its guest uploads nothing now
        return (lambda: self.upload(token)), self.message if room_id == self.room else None

    def _posted(self, body: dict) -> dict:
        answer = self.http.post(f"/external/rooms/{self.room}/messages", json=body, headers={GUEST: self.guest})
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]

    def _turn(self, case) -> int:
        label = case.operation.label
        self._turns[label] = self._turns.get(label, 0) + 1
        return self._turns[label]

    def point_ids(self, case) -> None:
        """An owner route's room of the caller's (a fresh one to extend; sometimes the expired one), or the
        thrifty owner's with its token; a guest route's room, mostly the live one, and its message; on the
        routes a guest token opens, every other case the guest's, with its file and attachment."""
        params, path, headers = case.path_parameters or {}, case.operation.path, case.headers
        if path in OWNER_ROUTES:
            turn = self._turn(case)
            if turn % 5 == 0:
                headers["Authorization"] = f"Bearer {self.thrifty}"
                room = self.thrifty_room
            else:
                room = self.expired if turn % 5 == 2 else self.create() if path.endswith("/extend") else self.room
            if "room_id" in params:
                params["room_id"] = room
        elif path.startswith(ROOMS):
            if self._turn(case) % 4 == 0:
                params["room_id"] = self.expired
            else:  # each join counts against its room's joins a minute ([rooms] join_room): a room of its own
                params["room_id"] = self.create() if path.endswith("/guests") else self.room
            if "message_id" in params:
                params["message_id"] = self.message
        elif (case.method.lower(), path) in _GUEST_TOO and self._turn(case) % 2 == 0:
            headers.pop("Authorization", None)
            headers[GUEST] = self.guest
            for name in ("id", "file_id"):
                if name in params:
                    params[name] = self.file
            if "attachment_id" in params:
                params["attachment_id"] = self.attachment

    def seat_guest(self, case) -> None:
        """A guest route's case as a guest of the room in its path sends it: no owner's bearer token, and
        the guest's token if the world has one for the room."""
        path = case.operation.path
        if path.startswith(ROOMS) and path not in OWNER_ROUTES:
            headers = case.headers = case.headers or {}
            headers.pop("Authorization", None)
            token = self.guest_of((case.path_parameters or {}).get("room_id"))
            if token is not None and path in _GUEST_ROUTES:
                headers[GUEST] = token

    def seat_negative(self, case, *, credentials: bool) -> None:
        """A negative case on a rooms route whose fault is not in its path goes to the live room (and its
        message), with a real caller unless its fault may be in its headers, so that what the server
        refuses is the case's fault."""
        params, path = case.path_parameters or {}, case.operation.path
        if not path.startswith(ROOMS):
            return
        if "room_id" in params:
            params["room_id"] = self.room
        if "message_id" in params:
            params["message_id"] = self.message
        if not credentials:
            return
        if path in OWNER_ROUTES:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {self.token}"}
        else:
            self.seat_guest(case)

    def adapt_body(self, case) -> None:
        """A `ttl_hours` or `extension_hours` the caller's limits allow, as a client that knows them."""
        body, headers = case.body, case.headers or {}
        limits = self.limits[self.thrifty if headers.get("Authorization") == f"Bearer {self.thrifty}" else self.token]
        # A whole float is an integer to the server (JSON's 12.0), so it is capped too.
        if isinstance(body.get("ttl_hours"), (int, float)) and not isinstance(body["ttl_hours"], bool):
            body["ttl_hours"] = min(body["ttl_hours"], limits["max_ttl_hours"], limits["max_lifetime_hours"])
        if isinstance(body.get("extension_hours"), (int, float)) and not isinstance(body["extension_hours"], bool) \
                and limits["extension_hours"]:
            body["extension_hours"] = min(body["extension_hours"], limits["extension_hours"])

    def settle(self, case, response) -> None:
        """A room a linked call created is one of the world's: a later call may join it."""
        if case.operation.path == ROOMS and case.method.lower() == "post" and response.status_code == 201:
            self._guests.setdefault(response.json()["data"]["room_id"], None)


def _room_token(client: httpx.Client) -> str:
    """A token of the client's user with the three room abilities (and no other)."""
    answer = client.post("/me/tokens", json={"name": "spec rooms", "abilities": [
        "temporary-rooms:create", "temporary-rooms:read", "temporary-rooms:extend"]})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]["token"]


#: What the world's files hold.
