"""Uploaded files: staging one, claiming files for a message inside its write, deleting one; and who
may read a file. The bytes are stored before the row is written (providers/storage.py); a file's
bytes are removed after the commit that deleted it (follow-up `file_deleted`).

A staged file expires at `expires_at` unless a message claims it first. A claim happens in the
message's own write and only succeeds for the author's own, unclaimed, unexpired files, each once;
a refused message claims nothing. The expiry sweep (actors/files.py) deletes only files expired for
a while (EXPIRY_GRACE), so a claim and the sweep never race for one file.
"""

from __future__ import annotations

import datetime as dt
import uuid

from domain import chat_access
from domain.commands import Command
from domain.errors import Conflict, DomainError, Invalid
from domain.writes import after_commit, apply, create
from models import Attachment, Channel, File, Message, utcnow

#: How long past its expiry a staged file waits for the sweep: longer than any write takes to apply.
EXPIRY_GRACE = dt.timedelta(minutes=1)
NOT_ATTACHABLE = "The selected attachment ids is invalid."


class StageFile(Command):
    file_id: uuid.UUID
    uploader_id: int | None
    client_name: str
    mime_type: str
    size: int
    sha256: str
    visibility: str
    meta: str | None
    storage_key: str
    at: dt.datetime
    expires_at: dt.datetime


class DeleteFile(Command):
    file_id: uuid.UUID
    at: dt.datetime


@apply.register
def _(cmd: StageFile) -> None:
    create(File, id=cmd.file_id, uploader=cmd.uploader_id, client_name=cmd.client_name, mime_type=cmd.mime_type,
           size=cmd.size, sha256=cmd.sha256, visibility=cmd.visibility, meta=cmd.meta, storage_key=cmd.storage_key,
           expires_at=cmd.expires_at, created_at=cmd.at)


@apply.register
def _(cmd: DeleteFile) -> None:
    found = File.get_or_none((File.id == cmd.file_id) & File.deleted_at.is_null())
    if found is None:
        return
    if (Attachment.select().join(Message).where((Attachment.file == cmd.file_id) & Message.deleted_at.is_null())
            .exists()):
        raise Conflict("The file is attached to a message; delete the message first.")
    File.update(deleted_at=cmd.at, expires_at=None).where(File.id == cmd.file_id).execute()
    after_commit("file_deleted", storage_key=found.storage_key)


def claim(message_id: uuid.UUID, author_id: int, file_ids: list[uuid.UUID], attachment_ids: list[uuid.UUID],
          at: dt.datetime) -> None:
    """Attach the author's staged files to the message (inside its write); Invalid if any cannot be."""
    if not file_ids:
        return
    now = utcnow()  # the time of the write, not of the request: a file that expired meanwhile stays out
    claimed = File.update(claimed_at=now, expires_at=None).where(_claimable(author_id, file_ids, now)).execute()
    if claimed != len(set(file_ids)):
        raise Invalid(NOT_ATTACHABLE, {"attachment_ids": [NOT_ATTACHABLE]})
    Attachment.insert_many([{"id": attachment_id, "message": message_id, "file": file_id, "position": position,
                             "created_at": at}
                            for position, (file_id, attachment_id) in enumerate(zip(file_ids, attachment_ids))]
                           ).execute()


def attachable(author_id: int, file_ids: list[uuid.UUID]) -> bool:
    """Whether every file could be claimed now (the handler's early answer; the write decides)."""
    return File.select().where(_claimable(author_id, file_ids, utcnow())).count() == len(set(file_ids))


def _claimable(author_id: int, file_ids: list[uuid.UUID], now: dt.datetime):
    """Which of these files the author may attach at `now`: theirs, staged, not deleted, not expired."""
    return (File.id.in_(file_ids) & (File.uploader == author_id) & File.claimed_at.is_null()
            & File.deleted_at.is_null() & (File.expires_at > now))


def may_read_message_of(viewer_id: int, channel: Channel) -> bool:
    """Whether the viewer may read the messages of this channel or direct conversation."""
    try:
        if channel.kind == "direct":
            chat_access.conversation(viewer_id=viewer_id, conversation_id=channel.id)
        else:
            chat_access.channel(viewer_id=viewer_id, workspace_id=channel.workspace_id, channel_id=channel.id)
    except DomainError:  # hidden from them (NotFound) or not entered (Forbidden)
        return False
    return True


def readable(viewer_id: int, file: File, room_channel_id: uuid.UUID | None = None) -> bool:
    """The uploader; anyone signed in for a public file; for a private one, whoever may read a live
    message it is attached to. A guest (`room_channel_id`: its room's channel) is no one "signed in":
    beyond its own uploads it reads only what is attached in its room."""
    if file.deleted_at is not None:
        return False
    if file.uploader_id == viewer_id or (file.visibility == "public" and room_channel_id is None):
        return True
    attached = (Channel.select().join(Message).join(Attachment)
                .where((Attachment.file == file.id) & Message.deleted_at.is_null()).first())
    return attached is not None and room_channel_id in (None, attached.id) and may_read_message_of(viewer_id, attached)
