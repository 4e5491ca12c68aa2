"""Direct conversations: one per pair of users, opened from either side; their messages; and finding
a recipient by email.

Reading a conversation's messages moves the reader's read mark to the newest message read, which
is what its unread count counts from.
"""

from __future__ import annotations

import uuid

from peewee import fn
from sanic import Blueprint

from domain import chat_access as access
from domain import commands as c
from domain import languages
from domain.errors import DomainError, Invalid, NotFound
from domain.messages import MarkRead, OpenDirectConversation, pair_key
from handlers.bodies import json, path_ulid
from handlers.rosetta import messages
from handlers.rosetta import resources as r
from handlers.rosetta import throttle
from handlers.rosetta.forms import Field, body, validate
from handlers.rosetta.guard import signed_in
from handlers.rosetta.paging import paginate
from handlers.rosetta.resources import author_name
from handlers.rosetta.schemas import stamp
from handlers.writing import write
from models import Channel, ChannelMember, Message, Translation, User, new_id, ulid_of, utcnow

bp = Blueprint("rosetta_direct", strict_slashes=False)

OPEN = {"participant_user_id": Field(required=True, max=20, pattern=r"[0-9]+", pattern_rule="must be a user id",
                                     description="The other user's id, as a string of digits.",
                                     example="42")}
RESOLVE = {"email": Field(required=True, email=True, max=255, description="The address the user registered with.",
                          example="ada@example.com")}
NO_SUCH_RECIPIENT = "No user with this email can receive direct messages."


def _participant(user: User) -> r.Participant:
    return r.Participant(user.id, user.name, user.profile_pic or None)


def _newest():
    # Not MAX(id): PostgreSQL has no max() of uuid.
    return (Message.select(Message.id).where((Message.channel == Channel.id) & Message.deleted_at.is_null())
            .order_by(Message.id.desc()).limit(1))


def _conversations(viewer_id: int):
    """The viewer's conversations with the other participant, read mark, and newest message id."""
    mine, theirs = ChannelMember.alias(), ChannelMember.alias()
    return (Channel.select(Channel, mine.last_read.alias("last_read"), theirs.user.alias("other_id"),
                           _newest().alias("newest_id"))
            .join(mine, on=(mine.channel == Channel.id) & (mine.user == viewer_id))
            .join(theirs, on=(theirs.channel == Channel.id) & (theirs.user != viewer_id), src=Channel)
            .where(Channel.kind == "direct").objects())


def _render(conversations: list, viewer: User) -> list[r.Conversation]:
    """Conversations with their other participant, last message (in the viewer's language) and unread
    count, in a few queries."""
    if not conversations:
        return []
    viewer_id = viewer.id
    others = {u.id: u for u in User.select().where(User.id.in_([conv.other_id for conv in conversations]))}
    newest_ids = [uuid.UUID(str(conv.newest_id)) for conv in conversations if conv.newest_id]
    last = {m.channel_id: m for m in r.with_translation(
        Message.select(Message, author_name(), Translation.body.alias("translated")).join(User),
        languages.canonical(viewer.preferred_language)).where(Message.id.in_(newest_ids)).objects()} \
        if newest_ids else {}
    files = r.attachments_of([m.id for m in last.values() if m.attachment_count], direct=True)
    unread = {}
    for conv in conversations:
        counted = Message.select().where((Message.channel == conv.id) & (Message.author != viewer_id)
                                         & Message.deleted_at.is_null())
        unread[conv.id] = (counted.where(Message.id > conv.last_read) if conv.last_read else counted).count()
    return [r.Conversation(ulid_of(conv.id), _participant(others[conv.other_id]),
                           r.message(last[conv.id], last[conv.id].author_name, last[conv.id].translated, files)
                           if conv.id in last else None,
                           unread[conv.id], stamp(conv.created_at)) for conv in conversations]


def _one(viewer: User, conversation_id: uuid.UUID, status: int):
    conversation = _conversations(viewer.id).where(Channel.id == conversation_id).first()
    return json(r.ConversationOne(_render([conversation], viewer)[0]), status=status)


@bp.get("/direct-conversations")
@signed_in
async def list_conversations(request):
    viewer = request.ctx.user
    # Most recent activity first: the newest message, else the opening (both ids are time-ordered).
    rows = _conversations(viewer.id).order_by(fn.COALESCE(_newest(), Channel.id).desc())
    items, meta, links = paginate(request, rows, lambda conv: conv)
    return json(r.ConversationList(_render(items, viewer), meta, links))


@bp.post("/direct-conversations")
@signed_in
async def open_conversation(request):
    """The conversation with the other user: 201 when this opens it, 200 when it was open already."""
    viewer = request.ctx.user
    form = validate(body(request), OPEN)
    other_id = int(form["participant_user_id"]) if len(form["participant_user_id"]) < 19 else 0
    other = User.get_or_none((User.id == other_id) & User.is_active & User.email.is_null(False))
    if other is None or other.id == viewer.id:
        text = "The selected participant user id is invalid."
        raise Invalid(text, {"participant_user_id": [text]})
    existing = Channel.get_or_none(Channel.pair_key == pair_key(viewer.id, other.id))
    if existing is not None:
        return _one(viewer, existing.id, 200)
    command = OpenDirectConversation(command_id=c.new_command_id(), channel_id=new_id(),
                                     user_ids=[viewer.id, other.id], at=utcnow())
    return await write(request, command, render=lambda: _one(
        viewer, Channel.get(Channel.pair_key == pair_key(viewer.id, other.id)).id, 201))


@bp.post("/direct-recipients/resolve")
@signed_in
async def resolve_recipient(request):
    """A registered, active user by exact email (any case); 404 for any other address, after the same work."""
    viewer = request.ctx.user
    form = validate(body(request), RESOLVE)
    limits = request.app.ctx.settings.throttle
    await throttle.hit(request, "resolve", {f"user:{viewer.id}": limits.resolve_user,
                                            f"ip:{throttle.client_ip(request)}": limits.resolve_ip})
    user = User.get_or_none(User.email_key == form["email"].casefold())
    if user is None or not user.is_active:
        raise NotFound(NO_SUCH_RECIPIENT)
    return json(r.RecipientOne(r.Recipient(user.id, user.name, user.email, user.profile_pic or None)))


def _conversation(request, conversation_id: str) -> Channel:
    return access.conversation(viewer_id=request.ctx.user.id,
                               conversation_id=path_ulid(conversation_id, "Conversation not found."))


@bp.get("/direct-conversations/<conversation_id:str>/messages")
@signed_in
async def list_direct_messages(request, conversation_id):
    conversation = _conversation(request, conversation_id)
    listing, newest = messages.page(request, conversation.id, languages.canonical(request.ctx.user.preferred_language),
                                    direct=True)
    if newest is not None and (conversation.last_read is None or newest > conversation.last_read):
        await _mark_read(request, conversation.id, newest)
    return json(listing)


async def _mark_read(request, conversation_id: uuid.UUID, message_id: uuid.UUID) -> None:
    """Move the read mark in the background: the list answers without waiting for it."""
    command = MarkRead(command_id=c.new_command_id(), channel_id=conversation_id, user_id=request.ctx.user.id,
                       message_id=message_id)
    try:
        await request.app.ctx.submitter.submit(command, wait=False)
    except DomainError:  # Redis away: the next read marks it
        pass


@bp.post("/direct-conversations/<conversation_id:str>/messages")
@signed_in
async def post_direct_message(request, conversation_id):
    conversation = _conversation(request, conversation_id)
    viewer = request.ctx.user
    fields = messages.message_form(body(request), messages.DIRECT_MESSAGE)
    return await messages.post(request, conversation.id, viewer.id, viewer.name, "user", fields,
                               f"/api/v1/direct-conversations/{ulid_of(conversation.id)}/messages",
                               languages.canonical(viewer.preferred_language), direct=True)
