"""RosettaChat chat resources as Laravel API resources: `{"data": ...}`, lists with `meta` and `links`.

Ids are lowercase ULIDs (models.ulid_of); user ids are integers.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Struct

from handlers.rosetta.schemas import PageLinks, PageMeta, Timestamp, stamp
from peewee import JOIN, fn

from models import Attachment as AttachmentRow
from models import File as FileRow
from models import Message as MessageRow
from models import Translation, User, ulid_of

Visibility = Literal["public", "private", "password"]
Role = Literal["owner", "admin", "member"]
MemberRole = Literal["owner", "admin", "member", "guest"]  # guests: a temporary room's


class Workspace(Struct):
    id: str
    name: str
    slug: str | None
    description: str
    visibility: Visibility
    role: Role | None  # the caller's; null when not a member
    member_count: int
    created_at: Timestamp
    updated_at: Timestamp


class WorkspaceOne(Struct):
    data: Workspace


class WorkspaceList(Struct):
    data: list[Workspace]
    meta: PageMeta
    links: PageLinks


class Member(Struct):
    workspace_id: str
    user_id: int
    name: str | None
    role: MemberRole
    preferred_language: str | None  # this workspace's; null: the user's own applies
    joined_at: Timestamp


class MemberOne(Struct):
    data: Member


class MemberList(Struct):
    data: list[Member]
    meta: PageMeta
    links: PageLinks


class Channel(Struct):
    id: str
    workspace_id: str
    name: str
    slug: str | None
    description: str
    visibility: Visibility
    kind: Literal["standard", "temporary_room"]
    entered: bool  # may read and post (a password channel not joined yet: false)
    created_at: Timestamp
    updated_at: Timestamp


class ChannelOne(Struct):
    data: Channel


class ChannelList(Struct):
    data: list[Channel]


class Author(Struct):
    id: int
    name: str | None
    kind: Literal["user", "webhook", "automation", "guest"]


class Attachment(Struct):
    id: str
    file_id: str
    client_name: str
    mime_type: str
    size: int
    download_url: str  # for the message's readers


class Message(Struct):
    id: str
    author: Author
    type: Literal["text", "system"]
    original_content: str
    language: str | None  # detected when it was translated
    translation_status: Literal["pending", "completed", "partial", "failed", "skipped"]
    translation_error: str | None  # for partial and failed: which languages failed, and why
    display_content: str  # in the reader's language when a translation exists
    display_source: Literal["original", "translated"]
    parent_message_id: str | None
    reply_count: int
    created_at: Timestamp
    edited_at: Timestamp | None
    attachments: list[Attachment] = []


class MessageOne(Struct):
    data: Message


class CursorMeta(Struct):
    path: str
    per_page: int
    next_cursor: str | None
    prev_cursor: str | None


class CursorLinks(Struct):
    first: None
    last: None
    prev: str | None
    next: str | None


class MessageList(Struct):
    """Laravel's cursor paginator: `links.next` goes further in the list's order, `links.prev` back."""

    data: list[Message]
    meta: CursorMeta
    links: CursorLinks


def author_name():
    """The column to select as a message's `author_name`: a Sector account has a username, not a name."""
    return fn.COALESCE(User.name, User.username).alias("author_name")


#: The columns of a message's row, in the order `message_of_row` reads them.
MESSAGE_COLUMNS = (MessageRow.id, MessageRow.author, MessageRow.author_kind, MessageRow.type, MessageRow.body,
                   MessageRow.language, MessageRow.translation_status, MessageRow.translation_error,
                   MessageRow.parent, MessageRow.reply_count, MessageRow.created_at, MessageRow.edited_at,
                   MessageRow.attachment_count)


def with_translation(query, language: str):
    """`query` of messages, joined to their current translation into `language` (the row's last column)."""
    return query.switch(MessageRow).join(
        Translation, JOIN.LEFT_OUTER, on=(Translation.message == MessageRow.id) & (Translation.language == language)
        & (Translation.version == MessageRow.version))


def message_of_row(row: tuple, attachments: dict | None = None) -> Message:
    """A message as its reader sees it, from MESSAGE_COLUMNS, the author's name and the translation into the
    reader's language (or None), as the driver returns them (ids as UUIDs or text); `attachments` by
    message id (attachments_of) for rows that have any."""
    (message_id, author_id, author_kind, kind, body, language, status, error, parent_id, replies, created_at,
     edited_at, attachment_count, name, translated) = row
    return Message(ulid_of(message_id), Author(author_id, name, author_kind), kind, body, language, status,
                   error if status in ("partial", "failed") else None,
                   body if translated is None else translated, "original" if translated is None else "translated",
                   ulid_of(parent_id) if parent_id else None, replies, stamp(created_at), stamp(edited_at),
                   attachments.get(str(message_id).replace("-", ""), []) if attachment_count and attachments else [])


def message(m, author_name: str | None, translated: str | None = None, attachments: dict | None = None) -> Message:
    """A message model as its reader sees it."""
    return message_of_row((m.id, m.author_id, m.author_kind, m.type, m.body, m.language, m.translation_status,
                           m.translation_error, m.parent_id, m.reply_count, m.created_at, m.edited_at,
                           m.attachment_count, author_name, translated), attachments)


def attachments_of(message_ids: list, direct: bool) -> dict[str, list[Attachment]]:
    """The attachments of these messages (ids as UUIDs or driver text), by message id as 32 hex digits."""
    if not message_ids:
        return {}
    path = "direct-message-attachments" if direct else "message-attachments"
    found: dict[str, list[Attachment]] = {}
    rows = (AttachmentRow.select(AttachmentRow.id, AttachmentRow.message, FileRow.id, FileRow.client_name,
                                 FileRow.mime_type, FileRow.size).join(FileRow)
            .where(AttachmentRow.message.in_([_uuid(m) for m in message_ids]))
            .order_by(AttachmentRow.message, AttachmentRow.position).tuples())
    for attachment_id, message_id, file_id, client_name, mime_type, size in rows:
        attachment = ulid_of(attachment_id)
        found.setdefault(str(message_id).replace("-", ""), []).append(
            Attachment(attachment, ulid_of(file_id), client_name, mime_type, size,
                       f"/api/v1/{path}/{attachment}/download"))
    return found


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


class Participant(Struct):
    id: int
    name: str | None
    avatar_url: str | None


class Conversation(Struct):
    id: str
    participant: Participant  # the other one
    last_message: Message | None
    unread_count: int
    created_at: Timestamp


class ConversationOne(Struct):
    data: Conversation


class ConversationList(Struct):
    data: list[Conversation]
    meta: PageMeta
    links: PageLinks


class Recipient(Struct):
    id: int
    name: str | None
    email: str
    avatar_url: str | None


class RecipientOne(Struct):
    data: Recipient


class Invite(Struct):
    id: str
    workspace_id: str
    created_by: int | None
    expires_at: Timestamp | None
    created_at: Timestamp


class NewInvite(Invite):
    """A created invite; `token` (and `url`) are shown this once."""

    token: str
    url: str


class InviteCreated(Struct):
    data: NewInvite


class InviteList(Struct):
    data: list[Invite]
    meta: PageMeta
    links: PageLinks


class InviteWorkspace(Struct):
    id: str
    name: str
    visibility: Visibility
    member_count: int


class InvitePreview(Struct):
    workspace: InviteWorkspace
    expires_at: Timestamp | None


class InvitePreviewOne(Struct):
    data: InvitePreview


class Webhook(Struct):
    id: str
    workspace_id: str
    name: str
    default_channel_id: str | None
    is_active: bool
    bot_user_id: int
    created_at: Timestamp
    updated_at: Timestamp


class WebhookWithSecret(Webhook):
    """`secret` is shown at creation and when regenerated, never again."""

    secret: str


class WebhookOne(Struct):
    data: Webhook


class WebhookSecretOne(Struct):
    data: WebhookWithSecret


class WebhookList(Struct):
    data: list[Webhook]


def webhook(w) -> Webhook:
    return Webhook(ulid_of(w.id), ulid_of(w.workspace_id), w.name,
                   ulid_of(w.default_channel_id) if w.default_channel_id else None, w.is_active, w.bot_user_id,
                   stamp(w.created_at), stamp(w.updated_at))


def with_secret(w, secret: str) -> WebhookWithSecret:
    return WebhookWithSecret(**msgspec.structs.asdict(webhook(w)), secret=secret)


class FileResource(Struct):
    id: str
    client_name: str  # as the uploader named it (only data: the stored name is random)
    size: int
    mime_type: str  # sniffed from the bytes
    visibility: Literal["public", "private"]
    sha256: str
    meta: dict | None
    claimed: bool  # attached to a message: kept; until then it expires
    expires_at: Timestamp | None
    created_at: Timestamp
    download_url: str


class FileOne(Struct):
    data: FileResource


class FileList(Struct):
    data: list[FileResource]
    meta: PageMeta
    links: PageLinks


class Device(Struct):
    id: str
    platform: Literal["ios", "android", "web"]
    provider: Literal["fcm", "expo", "apns"]
    device_name: str | None
    device_id: str | None  # the app install's own identifier, as it sent it
    app_version: str | None
    last_used_at: Timestamp  # when it was last registered (apps register on every launch)
    created_at: Timestamp


class DeviceOne(Struct):
    data: Device


class DeviceList(Struct):
    data: list[Device]
    meta: PageMeta
    links: PageLinks


# External temporary rooms. Their times are ISO 8601 with an offset, as the spec shows them.
IsoTime = Annotated[str, msgspec.Meta(examples=["2026-06-12T12:00:00+00:00"], extra_json_schema={"format": "date-time"})]
RoomStatus = Literal["active", "expired"]


class RoomJoin(Struct):
    method: Literal["POST"]
    endpoint: str  # where guests join: the deployment's [rooms] public_base_url


class Room(Struct):
    room_id: str
    workspace_id: str | None  # null once the expired room is purged
    channel_id: str | None
    name: str
    kind: Literal["temporary_room"]
    status: RoomStatus
    external_reference: str | None
    expires_at: IsoTime
    max_expires_at: IsoTime  # no extension goes past it
    extension_count: int
    created_at: IsoTime
    join: RoomJoin


class RoomOne(Struct):
    data: Room


class RoomList(Struct):
    data: list[Room]
    meta: PageMeta
    links: PageLinks


class RoomLimits(Struct):
    """The quotas, as the spec's usage summary shows them (the owner's other limits answer a 422 when passed)."""

    active_limit: int
    monthly_creation_limit: int


class RoomCounts(Struct):
    active_room_count: int
    monthly_creation_count: int


class RoomAbuseSignals(Struct):
    active_limit_reached: bool
    monthly_creation_limit_reached: bool


class RoomUsage(Struct):
    limits: RoomLimits
    usage: RoomCounts
    abuse_signals: RoomAbuseSignals


class RoomUsageOne(Struct):
    data: RoomUsage


class RoomExtended(Struct):
    room_id: str
    expires_at: IsoTime
    max_expires_at: IsoTime
    extension_count: int


class RoomExtendedOne(Struct):
    data: RoomExtended


class GuestProfile(Struct):
    id: str
    nickname: str
    preferred_language: str


class GuestSession(Struct):
    token: str  # shown this once
    token_type: Literal["guest"]
    header: Literal["X-Rosetta-Guest-Token"]
    expires_at: IsoTime


class GuestRoom(Struct):
    room_id: str
    workspace_id: str
    channel_id: str
    name: str
    status: RoomStatus
    expires_at: IsoTime


class GuestJoined(Struct):
    guest: GuestProfile
    session: GuestSession
    room: GuestRoom


class GuestJoinedOne(Struct):
    data: GuestJoined


SCHEMAS = (RoomOne, RoomList, RoomUsageOne, RoomExtendedOne, GuestJoinedOne, DeviceOne, DeviceList, FileOne, FileList, WorkspaceOne, WorkspaceList, MemberOne, MemberList, ChannelOne, ChannelList, MessageOne, MessageList,
           ConversationOne, ConversationList, RecipientOne, InviteCreated, InviteList, InvitePreviewOne, WebhookOne,
           WebhookSecretOne, WebhookList)
