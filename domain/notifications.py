"""Who is notified of a new message, and what their notification says, in their language.

Recipients are the message's readers other than its author: in a workspace channel the members who
may enter it (every member of a public channel; of a private or password channel its channel members
and the workspace's owners and admins), in a direct conversation the other participant. Inactive
users are passed over, and so are system messages. There is no muting yet: a reader who may read a
channel is notified of it.

A notification's title is `workspace · channel` (the sender's name for a direct message); its body the
message in the reader's language when its translation is stored (the original otherwise), prefixed
with the sender's name in a channel, cut to `[push] preview_chars`. A message of attachments only
reads `📎 <first file name>`. Its data carries the ids an app needs to open the message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from peewee import JOIN, fn

from domain.languages import canonical, same
from models import Attachment, Channel, ChannelMember, Device, File, Membership, Message, Translation, User, \
    Workspace, ulid_of


@dataclass(frozen=True)
class Recipient:
    user_id: int
    device_id: uuid.UUID
    provider: str
    language: str  # canonical tag


@dataclass(frozen=True)
class Content:
    """What one reader's device shows for one message."""

    title: str
    body: str
    data: dict[str, str]
    thread: str  # the conversation: notifications of one group together on the device
    collapse_id: str  # the message: a repeat replaces the first instead of showing twice


def recipients(channel: Channel) -> list[Recipient]:
    """The devices of the channel's active readers, with each reader's language (the caller leaves the
    author out)."""
    if channel.kind == "direct":
        language = User.preferred_language
        readers = (ChannelMember.select(User.id, Device.id, Device.provider, language.alias("language"))
                   .join(User, on=User.id == ChannelMember.user)
                   .where(ChannelMember.channel == channel.id))
    else:
        language = fn.COALESCE(Membership.preferred_language, User.preferred_language)
        readers = (Membership.select(User.id, Device.id, Device.provider, language.alias("language"))
                   .join(User, on=User.id == Membership.user)
                   .where(Membership.workspace == channel.workspace_id))
        if channel.visibility != "public":
            entered = ChannelMember.select(ChannelMember.user).where(ChannelMember.channel == channel.id)
            readers = readers.where(Membership.role.in_(("owner", "admin")) | Membership.user.in_(entered))
    readers = readers.join(Device, on=Device.user == User.id).where(User.is_active)
    return [Recipient(user_id, uuid.UUID(str(device_id)), provider, canonical(language or "en"))
            for user_id, device_id, provider, language in readers.tuples()]


@dataclass(frozen=True)
class _Message:
    id: uuid.UUID
    body: str
    language: str | None
    author_id: int
    author_name: str
    channel_id: uuid.UUID
    channel_name: str
    direct: bool
    workspace_id: uuid.UUID | None
    workspace_name: str | None
    first_file: str | None
    files: int


def contents(wanted: set[tuple[uuid.UUID, str]], preview_chars: int) -> dict[tuple[uuid.UUID, str], Content]:
    """The Content for each (message id, reader language) in `wanted`; deleted messages are left out."""
    message_ids = {message_id for message_id, _ in wanted}
    found = _messages(message_ids)
    languages = {language for _, language in wanted}
    translated = dict((((uuid.UUID(str(m)), language), body) for m, language, body in (
        Translation.select(Translation.message, Translation.language, Translation.body).join(Message)
        .where(Translation.message.in_(list(found)) & Translation.language.in_(list(languages))
               & (Translation.version == Message.version)).tuples())))
    out = {}
    for message_id, language in wanted:
        message = found.get(message_id)
        if message is None:
            continue
        text = message.body
        if not (message.language and same(language, message.language)):
            text = translated.get((message_id, language), text)
        out[message_id, language] = _content(message, text, preview_chars)
    return out


def _messages(ids: set[uuid.UUID]) -> dict[uuid.UUID, _Message]:
    author = fn.COALESCE(User.name, User.username, "Someone").alias("author_name")
    rows = (Message.select(Message.id, Message.body, Message.language, Message.author, author, Message.attachment_count,
                           Channel.id, Channel.name, Channel.kind, Workspace.id, Workspace.name)
            .join(User, on=User.id == Message.author).switch(Message).join(Channel)
            .join(Workspace, JOIN.LEFT_OUTER, on=Workspace.id == Channel.workspace)
            .where(Message.id.in_(list(ids)) & Message.deleted_at.is_null()).tuples())
    with_files = []
    found = {}
    for (message_id, body, language, author_id, author_name, files, channel_id, channel_name, kind, workspace_id,
         workspace_name) in rows:
        message_id = uuid.UUID(str(message_id))
        found[message_id] = _Message(message_id, body, language, author_id, author_name, uuid.UUID(str(channel_id)),
                                     channel_name, kind == "direct",
                                     uuid.UUID(str(workspace_id)) if workspace_id else None, workspace_name, None, files)
        if files:
            with_files.append(message_id)
    if with_files:
        names: dict[uuid.UUID, str] = {}
        for message_id, name in (Attachment.select(Attachment.message, File.client_name).join(File)
                                 .where(Attachment.message.in_(with_files))
                                 .order_by(Attachment.message, Attachment.position).tuples()):
            names.setdefault(uuid.UUID(str(message_id)), name)
        for message_id, name in names.items():
            found[message_id] = replace(found[message_id], first_file=name)
    return found


def _content(message: _Message, text: str, preview_chars: int) -> Content:
    preview = " ".join(text.split())
    if not preview and message.first_file:
        preview = f"📎 {message.first_file}" + (f" +{message.files - 1}" if message.files > 1 else "")
    data = {"type": "message", "message_id": ulid_of(message.id), "sender_id": str(message.author_id)}
    if message.direct:
        title, thread = message.author_name, f"conversation:{ulid_of(message.channel_id)}"
        data["conversation_id"] = ulid_of(message.channel_id)
    else:
        title, thread = f"{message.workspace_name} · {message.channel_name}", f"channel:{ulid_of(message.channel_id)}"
        data |= {"workspace_id": ulid_of(message.workspace_id), "channel_id": ulid_of(message.channel_id)}
        preview = f"{message.author_name}: {preview}"
    if len(preview) > preview_chars:
        preview = preview[:preview_chars - 1].rstrip() + "…"
    return Content(title, preview, data, thread, ulid_of(message.id))
