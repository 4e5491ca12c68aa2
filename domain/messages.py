"""Messages of channels and direct conversations, and the direct conversations themselves: their
commands and how they apply. Every message write asks for a follow-up (`message_posted`,
`message_edited`, `message_deleted`), which the outbox delivers once the write has committed."""

from __future__ import annotations

import datetime as dt
import uuid

from peewee import Case, IntegrityError

from domain import commands as c
from domain import files
from domain import realtime as rt
from domain import rooms
from domain.commands import Command
from domain.writes import BULK, after_commit, apply, create, update
from models import Channel, ChannelMember, Message, Translation, User, db


class OpenDirectConversation(Command):
    """The direct conversation of two users; nothing changes if they have one already."""

    channel_id: uuid.UUID
    user_ids: list[int]  # the two participants
    at: dt.datetime


class MarkRead(Command):
    """The member has read the channel up to `message_id`; a read mark never moves back."""

    channel_id: uuid.UUID
    user_id: int
    message_id: uuid.UUID


def pair_key(a: int, b: int) -> str:
    """What makes a direct conversation one per pair of users, whichever of them opens it."""
    low, high = sorted((a, b))
    return f"{low}:{high}"


def _message_row(cmd: c.PostMessage) -> dict:
    return {"id": cmd.message_id, "channel": cmd.channel_id, "author": cmd.author_id, "body": cmd.body,
            "pinned": cmd.pinned, "created_at": cmd.at, "parent": cmd.parent_id, "type": cmd.message_type,
            "author_kind": cmd.author_kind, "translation_status": cmd.translation_status,
            "attachment_count": len(cmd.file_ids)}


def _count_replies(parent_ids: list[uuid.UUID], delta: int) -> None:
    for parent_id in parent_ids:
        Message.update(reply_count=Message.reply_count + delta).where(Message.id == parent_id).execute()


@apply.register
def _(cmd: c.PostMessage) -> None:
    rooms.refuse_shut([cmd.channel_id])
    create(Message, **_message_row(cmd))
    files.claim(cmd.message_id, cmd.author_id, cmd.file_ids, cmd.attachment_ids, cmd.at)
    _count_replies([cmd.parent_id] if cmd.parent_id else [], 1)
    after_commit("message_posted", message_id=str(cmd.message_id))


def _post_messages(cmds: list[c.PostMessage]) -> None:
    rooms.refuse_shut([cmd.channel_id for cmd in cmds])
    Message.insert_many([_message_row(cmd) for cmd in cmds]).execute()
    for cmd in cmds:
        files.claim(cmd.message_id, cmd.author_id, cmd.file_ids, cmd.attachment_ids, cmd.at)
    _count_replies([cmd.parent_id for cmd in cmds if cmd.parent_id], 1)
    for cmd in cmds:
        after_commit("message_posted", message_id=str(cmd.message_id))


BULK[c.PostMessage] = _post_messages


@apply.register
def _(cmd: c.UpdateMessage) -> None:
    values = {"body": cmd.body, "pinned": cmd.pinned, "revision": Message.revision + 1}
    if cmd.body is None and cmd.pinned is None:
        return
    if cmd.body is not None:
        # A new version of the body: its translations are made afresh, and a late one of the old
        # version is refused by the translation worker (it stores only the current version's).
        values |= {"edited_at": cmd.at, "version": Message.version + 1,
                   "translation_status": Case(None, [(Message.translation_status == "skipped", "skipped")], "pending")}
    live = (Message.id == cmd.message_id) & Message.deleted_at.is_null()
    update(Message, live, values, "Message not found.")
    if cmd.body is not None:
        Translation.delete().where(Translation.message == cmd.message_id).execute()
    after_commit("message_edited", message_id=str(cmd.message_id))


@apply.register
def _(cmd: c.DeleteMessage) -> None:
    message = Message.get_or_none((Message.id == cmd.message_id) & Message.deleted_at.is_null())
    if message is None:
        return
    # Kept as a tombstone (threads refer to it); the text is gone, in every language.
    Message.update(deleted_at=cmd.at, body="", pinned=False, revision=Message.revision + 1).where(Message.id == cmd.message_id).execute()
    Translation.delete().where(Translation.message == cmd.message_id).execute()
    _count_replies([message.parent_id] if message.parent_id else [], -1)
    after_commit("message_deleted", message_id=str(cmd.message_id))


@apply.register
def _(cmd: OpenDirectConversation) -> None:
    key = pair_key(*cmd.user_ids)
    if Channel.select().where(Channel.pair_key == key).exists():
        return
    try:
        with db.atomic():
            Channel.insert(id=cmd.channel_id, name=key, kind="direct", visibility="private", pair_key=key,
                           created_by=cmd.user_ids[0], created_at=cmd.at, updated_at=cmd.at).execute()
    except IntegrityError:
        return  # opened by the other user in a commit of another worker
    ChannelMember.insert_many([{"channel": cmd.channel_id, "user": user_id, "created_at": cmd.at}
                               for user_id in cmd.user_ids]).execute()
    rt.announce(cmd.command_id, rt.CONVERSATION_CREATED, cmd.channel_id.hex,
                {"id": cmd.channel_id.hex, "participants": [rt.user_of(user) for user in
                                                            User.select().where(User.id.in_(cmd.user_ids))],
                 "created_at": rt.millis(cmd.at)}, cmd.user_ids)


@apply.register
def _(cmd: MarkRead) -> None:
    ChannelMember.update(last_read=cmd.message_id).where(
        (ChannelMember.channel == cmd.channel_id) & (ChannelMember.user == cmd.user_id)
        & (ChannelMember.last_read.is_null() | (ChannelMember.last_read < cmd.message_id))
    ).execute()
