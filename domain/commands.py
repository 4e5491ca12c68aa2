"""Write commands: what handlers send to the `writes` queue and the write actor applies.

A command carries ids and small values only. Its `command_id` is fixed by the handler before
it is sent, so a redelivered or retried command is recognised and applied once.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec


class Command(msgspec.Struct, tag=True, kw_only=True):
    command_id: str


class CreateAccount(Command):
    user_uid: uuid.UUID
    username: str
    pubkey: str
    profile_pic: str
    at: dt.datetime


class UpdateAccount(Command):
    user_id: int
    at: dt.datetime
    username: str | None = None
    profile_pic: str | None = None


class DeleteAccount(Command):
    user_id: int


class IssueToken(Command):
    token_id: uuid.UUID
    user_id: int
    name: str
    secret_hash: str
    abilities: list[str]
    expires_at: dt.datetime | None
    at: dt.datetime


class RevokeToken(Command):
    token_id: uuid.UUID
    at: dt.datetime


class CreateGroup(Command):
    group_id: uuid.UUID
    owner_id: int
    name: str
    description: str
    member_ids: list[int]
    at: dt.datetime


class UpdateGroup(Command):
    group_id: uuid.UUID
    at: dt.datetime
    name: str | None = None
    description: str | None = None


class DeleteGroup(Command):
    group_id: uuid.UUID


class AddMember(Command):
    group_id: uuid.UUID
    user_id: int
    at: dt.datetime


class RemoveMember(Command):
    group_id: uuid.UUID
    user_id: int


class CreateChannel(Command):
    channel_id: uuid.UUID
    group_id: uuid.UUID
    created_by: int
    name: str
    description: str
    at: dt.datetime


class UpdateChannel(Command):
    channel_id: uuid.UUID
    at: dt.datetime
    name: str | None = None
    description: str | None = None


class DeleteChannel(Command):
    channel_id: uuid.UUID


class PostMessage(Command):
    message_id: uuid.UUID
    channel_id: uuid.UUID
    author_id: int
    body: str
    pinned: bool
    at: dt.datetime


class UpdateMessage(Command):
    message_id: uuid.UUID
    at: dt.datetime
    body: str | None = None
    pinned: bool | None = None


class DeleteMessage(Command):
    message_id: uuid.UUID
    at: dt.datetime


AnyCommand = (
    CreateAccount | UpdateAccount | DeleteAccount | IssueToken | RevokeToken
    | CreateGroup | UpdateGroup | DeleteGroup | AddMember | RemoveMember
    | CreateChannel | UpdateChannel | DeleteChannel
    | PostMessage | UpdateMessage | DeleteMessage
)


def to_wire(command: Command) -> dict:
    """The JSON-ready form a Dramatiq message carries."""
    return msgspec.to_builtins(command)


def from_wire(data: dict) -> Command:
    """Rebuild a command from its wire form."""
    return msgspec.convert(data, AnyCommand)


def new_command_id() -> str:
    """A fresh command id, for commands no client retry needs to find again."""
    return uuid.uuid4().hex
