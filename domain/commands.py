"""Write commands: what handlers send to the `writes` queue and the write actor applies.

A command carries ids and small values only. Its `command_id` is fixed by the handler before
it is sent, so a redelivered or retried command is recognised and applied once.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import uuid

import msgspec


class Command(msgspec.Struct, tag=True, kw_only=True):
    command_id: str

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _KINDS.append(cls)


# Every kind of command, wherever it is declared (each area of domain/ declares its own).
_KINDS: list[type[Command]] = []


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
    login: bool = False  # a login, not a minted token: the user's last_login_at moves too


class NewToken(msgspec.Struct, kw_only=True):
    """A token issued together with a new user."""

    token_id: uuid.UUID
    name: str
    secret_hash: str
    abilities: list[str]
    expires_at: dt.datetime | None


class NewSocialAccount(msgspec.Struct, kw_only=True):
    provider: str
    provider_user_id: str
    provider_email: str | None
    name: str | None
    avatar: str | None


class RegisterUser(Command):
    """A RosettaChat sign-up (password, OTP or social), with the first token when it is an app's."""

    user_uid: uuid.UUID
    name: str
    email: str
    password_hash: str | None
    preferred_language: str
    email_verified: bool
    at: dt.datetime
    avatar_url: str = ""
    token: NewToken | None = None
    social: NewSocialAccount | None = None


class RecordLogin(Command):
    user_id: int
    at: dt.datetime


class SetPassword(Command):
    """A changed or reset password; every token but `keep_token_id` is revoked."""

    user_id: int
    password_hash: str
    keep_token_id: uuid.UUID | None
    at: dt.datetime


class VerifyEmail(Command):
    user_id: int
    email_key: str  # the address the link was sent to; a changed address is not verified by it
    at: dt.datetime


class UpdateProfile(Command):
    user_id: int
    at: dt.datetime
    name: str | None = None
    preferred_language: str | None = None
    avatar_url: str | None = None


class TouchToken(Command):
    token_id: uuid.UUID
    at: dt.datetime


class LinkSocialAccount(Command):
    user_id: int
    account: NewSocialAccount
    at: dt.datetime


class UnlinkSocialAccount(Command):
    user_id: int
    provider: str


class RevokeToken(Command):
    token_id: uuid.UUID
    at: dt.datetime


class CreateGroup(Command):
    """A Sector group or a RosettaChat workspace; without a slug, one is made from the name."""

    group_id: uuid.UUID
    owner_id: int
    name: str
    description: str
    member_ids: list[int]
    at: dt.datetime
    slug: str | None = None
    visibility: str = "private"
    password_hash: str | None = None


class UpdateGroup(Command):
    group_id: uuid.UUID
    at: dt.datetime
    name: str | None = None
    description: str | None = None
    slug: str | None = None
    visibility: str | None = None  # away from "password", the password goes
    password_hash: str | None = None


class DeleteGroup(Command):
    group_id: uuid.UUID


class AddMember(Command):
    """Adds the user unless already a member (then nothing changes)."""

    group_id: uuid.UUID
    user_id: int
    at: dt.datetime
    role: str = "member"


class RemoveMember(Command):
    group_id: uuid.UUID
    user_id: int


class CreateChannel(Command):
    """A channel; without a slug, one is made from the name. The creator may enter a private or
    password channel."""

    channel_id: uuid.UUID
    group_id: uuid.UUID
    created_by: int
    name: str
    description: str
    at: dt.datetime
    slug: str | None = None
    visibility: str = "public"
    password_hash: str | None = None


class UpdateChannel(Command):
    channel_id: uuid.UUID
    at: dt.datetime
    name: str | None = None
    description: str | None = None
    slug: str | None = None
    visibility: str | None = None  # away from "password", the password goes
    password_hash: str | None = None


class DeleteChannel(Command):
    channel_id: uuid.UUID


class PostMessage(Command):
    message_id: uuid.UUID
    channel_id: uuid.UUID
    author_id: int
    body: str
    pinned: bool
    at: dt.datetime
    parent_id: uuid.UUID | None = None  # a reply in this message's thread
    message_type: str = "text"  # text | system
    author_kind: str = "user"  # user | webhook | automation | guest
    translation_status: str = "pending"  # "skipped" when the author asked for none
    file_ids: list[uuid.UUID] = []  # staged files of the author's to attach (claimed by this write)
    attachment_ids: list[uuid.UUID] = []  # the new attachments' ids, one a file


class UpdateMessage(Command):
    message_id: uuid.UUID
    at: dt.datetime
    body: str | None = None
    pinned: bool | None = None


class DeleteMessage(Command):
    message_id: uuid.UUID
    at: dt.datetime


def to_wire(command: Command) -> dict:
    """The JSON-ready form a Dramatiq message carries."""
    return msgspec.to_builtins(command)


def from_wire(data: dict) -> Command:
    """Rebuild a command from its wire form."""
    return msgspec.convert(data, _any_command())


@functools.cache
def _any_command():
    """The tagged union of every kind; built at first use, once every area of domain/ is imported."""
    import domain.writes  # noqa: F401  (imports each area, declaring its commands)

    return functools.reduce(operator.or_, _KINDS)


def new_command_id() -> str:
    """A fresh command id, for commands no client retry needs to find again."""
    return uuid.uuid4().hex
