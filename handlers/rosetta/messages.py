"""Messages of RosettaChat channels (and, through the same functions, of direct conversations):
post, list with cursors, read one, edit, delete; and automation posts by bot tokens.

A channel list is newest first and holds top-level messages; `parent_message_id=` lists one
thread oldest first. Cursors are message ids, which are time-ordered ULIDs, so a page never
repeats or skips a message while others post.
"""

from __future__ import annotations

import json as stdjson
import uuid
from urllib.parse import urlencode

from sanic import Blueprint
from sanic.response import empty

from config import settings
from domain import chat_access as access
from domain import commands as c
from domain import files, languages
from domain.errors import Forbidden, Invalid, NotFound
from handlers.bodies import json, path_ulid
from handlers.rosetta import resources as r
from handlers.rosetta.forms import Field, body, query, validate
from handlers.rosetta.guard import signed_in
from handlers.rosetta.schemas import stamp
from handlers.writing import claim_ids, write
from models import Message, Prepared, Translation, User, new_id, ulid_of, utcnow

bp = Blueprint("rosetta_messages", strict_slashes=False)

AUTOMATION = "automation:post"
_ULID = r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}"
_CONTENT = Field(max=settings().limits.content_chars, example="Hello, team!",
                 description="The text; required when attachment_ids is not present.")
MESSAGE = {
    "content": _CONTENT,
    "attachment_ids": Field(type="array", max=10, items=Field(required=True, pattern=_ULID,
                                                              pattern_rule="must be a valid ULID"),
                            description="Files the author uploaded (POST /files) and has not attached yet; "
                                        "posting claims them.", example=[]),
    "parent_message_id": Field(nullable=True, pattern=_ULID, pattern_rule="must be a valid ULID",
                               description="Reply in this message's thread (a top-level message of the same channel).",
                               example=None),
    "type": Field(one_of=("text",), nullable=True, example="text",
                  description="`text` (the default). `system` is reserved for messages the server writes."),
    "skip_translation": Field(type="boolean", nullable=True, example=False,
                              description="Show every reader the original: translation_status is `skipped`."),
}
DIRECT_MESSAGE = {name: MESSAGE[name] for name in ("content", "attachment_ids", "skip_translation")}
WEBHOOK_MESSAGE = {"content": Field(required=True, max=settings().limits.content_chars, example="Deploy finished.",
                                    description="The text."),
                   "skip_translation": MESSAGE["skip_translation"]}
EDIT = {"content": Field(required=True, max=settings().limits.content_chars, description="The new text.",
                         example="Hello, everyone!")}
LIST = {
    "before": Field(pattern=_ULID, pattern_rule="must be a valid ULID", example=None,
                    description="Messages older than this message id (the `next` page of a channel)."),
    "after": Field(pattern=_ULID, pattern_rule="must be a valid ULID", example=None,
                   description="Messages newer than this message id (the `next` page of a thread)."),
    "per_page": Field(type="integer", min=1, max=100, description="Messages a page; 50 when absent.", example=50),
    "parent_message_id": Field(pattern=_ULID, pattern_rule="must be a valid ULID", example=None,
                               description="List this message's thread, oldest first, instead of the channel."),
}
CONTENT_NEEDED = "The content field is required when attachment ids is not present."
_ONE = "/workspaces/<workspace_id:str>/channels/<channel_id:str>/messages/<message_id:str>"


def _ulid(value: str) -> uuid.UUID:
    return path_ulid(value, "")  # the form's pattern has vouched for it


def message_form(data: dict, form: dict = MESSAGE) -> dict:
    """The checked fields of a new message: content or attachments (as file UUIDs), a parent's id as a UUID."""
    fields = validate(data, form)
    fields["attachment_ids"] = list(dict.fromkeys(_ulid(i) for i in fields.get("attachment_ids") or []))
    if fields.get("content") is None and not fields["attachment_ids"]:
        raise Invalid(CONTENT_NEEDED, {"content": [CONTENT_NEEDED]})
    if fields.get("parent_message_id"):
        fields["parent_message_id"] = _ulid(fields["parent_message_id"])
    return fields


def _check_parent(channel_id: uuid.UUID, parent_id: uuid.UUID | None) -> None:
    if parent_id is None:
        return
    parent = Message.get_or_none((Message.id == parent_id) & (Message.channel == channel_id)
                                 & Message.deleted_at.is_null() & Message.parent.is_null())
    if parent is None:
        text = "The selected parent message id is invalid."
        raise Invalid(text, {"parent_message_id": [text]})


async def post(request, channel_id: uuid.UUID, author_id: int, author_name: str | None, author_kind: str,
               fields: dict, location: str, language: str = "", direct: bool = False):
    """Send the new message through the write path; answer 201 with it as stored (`language`: the reader's)."""
    _check_parent(channel_id, fields.get("parent_message_id"))
    file_ids = fields.get("attachment_ids") or []
    if file_ids and not files.attachable(author_id, file_ids):
        raise Invalid(files.NOT_ATTACHABLE, {"attachment_ids": [files.NOT_ATTACHABLE]})
    ids = await claim_ids(request, f"user:{author_id}", "id")
    message_id = uuid.UUID(ids["id"])
    body_text = fields.get("content") or ""
    command = c.PostMessage(command_id=ids["command_id"], message_id=message_id, channel_id=channel_id,
                            author_id=author_id, body=body_text, pinned=False, at=utcnow(),
                            parent_id=fields.get("parent_message_id"), author_kind=author_kind,
                            translation_status="skipped" if fields.get("skip_translation") or not body_text
                            else "pending", file_ids=file_ids, attachment_ids=[new_id() for _ in file_ids])
    stored = r.Message(ulid_of(message_id), r.Author(author_id, author_name, author_kind), "text", command.body,
                       None, command.translation_status, None, command.body, "original",
                       ulid_of(command.parent_id) if command.parent_id else None, 0, stamp(command.at), None)
    return await write(request, command, location=f"{location}/{ulid_of(message_id)}",
                       render=lambda: one(channel_id, message_id, language, status=201, direct=direct),
                       render_applied=None if file_ids else lambda: json(r.MessageOne(stored), status=201))


_live = Prepared(lambda channel_id, message_id: Message.select().where(
    (Message.id == message_id) & (Message.channel == channel_id) & Message.deleted_at.is_null()),
    channel_id=uuid.UUID, message_id=uuid.UUID)


def live_message(channel_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    found = _live.first(channel_id=channel_id, message_id=message_id)
    if found is None:
        raise NotFound("Message not found.")
    return found


def _columns():
    return Message.select(*r.MESSAGE_COLUMNS, r.author_name(), Translation.body).join(User)


_one = Prepared(lambda channel_id, message_id, language: r.with_translation(_columns(), language).where(
    (Message.id == message_id) & (Message.channel == channel_id) & Message.deleted_at.is_null()),
    channel_id=uuid.UUID, message_id=uuid.UUID, language=str)


def one(channel_id: uuid.UUID, message_id: uuid.UUID, language: str, status: int = 200, direct: bool = False):
    """The message as a reader of `language` sees it ("": the original)."""
    rows = _one.raw(channel_id=channel_id, message_id=message_id, language=language)
    if not rows:
        raise NotFound("Message not found.")
    attachments = r.attachments_of([message_id], direct) if rows[0][12] else None
    return json(r.MessageOne(r.message_of_row(rows[0], attachments)), status=status)


def _window(newest_first: bool, thread: bool):
    """The prepared read of one page: live messages past a cursor id, in one direction, in a reader's language."""
    def build(channel_id, parent_id, cursor, limit, language):
        query = r.with_translation(_columns(), language).where(
            (Message.channel == channel_id) & Message.deleted_at.is_null()
            & ((Message.parent == parent_id) if thread else Message.parent.is_null())
            & ((Message.id < cursor) if newest_first else (Message.id > cursor)))
        return query.order_by(Message.id.desc() if newest_first else Message.id).limit(limit)
    kinds = {"channel_id": uuid.UUID, "cursor": uuid.UUID, "limit": int, "language": str}
    if not thread:
        return Prepared(lambda channel_id, cursor, limit, language: build(channel_id, None, cursor, limit, language),
                        **kinds)
    return Prepared(build, parent_id=uuid.UUID, **kinds)


_WINDOWS = {(newest_first, thread): _window(newest_first, thread) for newest_first in (True, False)
            for thread in (True, False)}
_LOWEST, _HIGHEST = uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)


def page(request, channel_id: uuid.UUID, language: str,
         direct: bool = False) -> tuple[r.MessageList, uuid.UUID | None]:
    """One page of the channel (newest first) or of a thread (oldest first) as a reader of `language` sees it;
    also the newest id on it."""
    form = validate(query(request), LIST)
    per_page = form.get("per_page", 50)
    thread = _ulid(form["parent_message_id"]) if form.get("parent_message_id") else None
    # Going "forward" is toward older messages in a channel and toward newer ones in a thread.
    forward_key, back_key = ("after", "before") if thread else ("before", "after")
    back = bool(form.get(back_key)) and not form.get(forward_key)
    key = back_key if back else forward_key
    cursor = _ulid(form[key]) if form.get(key) else None
    newest_first = (thread is None) != back
    args = {"channel_id": channel_id, "limit": per_page + 1, "language": language,
            "cursor": cursor or (_HIGHEST if newest_first else _LOWEST)} | ({"parent_id": thread} if thread else {})
    rows = _WINDOWS[(newest_first, thread is not None)].raw(**args)
    more = len(rows) > per_page
    rows = rows[:per_page]
    if back:
        rows.reverse()  # read backward from the cursor; shown in the list's own order
    with_files = [row[0] for row in rows if row[12]]
    attachments = r.attachments_of(with_files, direct) if with_files else None
    items = [r.message_of_row(row, attachments) for row in rows]
    has_next, has_prev = (True, more) if back else (more, cursor is not None)
    next_cursor = items[-1].id if items and has_next else None
    prev_cursor = items[0].id if items and has_prev else None

    def link(key, value):
        if value is None:
            return None
        params = {key: value, "per_page": per_page} | ({"parent_message_id": ulid_of(thread)} if thread else {})
        return f"{request.scheme}://{request.host}{request.path}?{urlencode(params)}"

    listing = r.MessageList(items, r.CursorMeta(request.path, per_page, next_cursor, prev_cursor),
                            r.CursorLinks(None, None, link(back_key, prev_cursor), link(forward_key, next_cursor)))
    return listing, uuid.UUID(str(max(row[0] for row in rows))) if rows else None


async def edit(request, channel_id: uuid.UUID, message_id: uuid.UUID, viewer_id: int, language: str):
    found = live_message(channel_id, message_id)
    form = validate(body(request), EDIT)
    if found.author_id != viewer_id:
        raise Forbidden("Only the author may edit a message.")
    command = c.UpdateMessage(command_id=c.new_command_id(), message_id=message_id, body=form["content"], at=utcnow())
    return await write(request, command, render=lambda: one(channel_id, message_id, language))


async def delete(request, channel_id: uuid.UUID, message_id: uuid.UUID, may_delete_any: bool, viewer_id: int):
    found = live_message(channel_id, message_id)
    if found.author_id != viewer_id and not may_delete_any:
        raise Forbidden("Only the author or an admin may delete a message.")
    return await write(request, c.DeleteMessage(command_id=c.new_command_id(), message_id=message_id, at=utcnow()),
                       render=lambda: empty(status=204))


def _channel(request, workspace_id: str, channel_id: str):
    return access.channel(viewer_id=request.ctx.user.id, workspace_id=path_ulid(workspace_id, "Workspace not found."),
                          channel_id=path_ulid(channel_id, "Channel not found."))


def reader_language(channel, viewer: User) -> str:
    """The language the viewer reads a channel in: theirs for its workspace, else their own."""
    return languages.canonical(channel.member_language or viewer.preferred_language)


def _location(channel) -> str:
    return f"/api/v1/workspaces/{ulid_of(channel.workspace_id)}/channels/{ulid_of(channel.id)}/messages"


@bp.get("/workspaces/<workspace_id:str>/channels/<channel_id:str>/messages")
@signed_in
async def list_channel_messages(request, workspace_id, channel_id):
    channel = _channel(request, workspace_id, channel_id)
    listing, _ = page(request, channel.id, reader_language(channel, request.ctx.user))
    return json(listing)


@bp.post("/workspaces/<workspace_id:str>/channels/<channel_id:str>/messages")
@signed_in
async def post_channel_message(request, workspace_id, channel_id):
    channel = _channel(request, workspace_id, channel_id)
    viewer = request.ctx.user
    return await post(request, channel.id, viewer.id, viewer.name, "user", message_form(body(request)),
                      _location(channel), reader_language(channel, viewer))


@bp.get(_ONE)
@signed_in
async def get_channel_message(request, workspace_id, channel_id, message_id):
    channel = _channel(request, workspace_id, channel_id)
    return one(channel.id, path_ulid(message_id, "Message not found."), reader_language(channel, request.ctx.user))


@bp.patch(_ONE)
@signed_in
async def edit_channel_message(request, workspace_id, channel_id, message_id):
    channel = _channel(request, workspace_id, channel_id)
    return await edit(request, channel.id, path_ulid(message_id, "Message not found."), request.ctx.user.id,
                      reader_language(channel, request.ctx.user))


@bp.delete(_ONE)
@signed_in
async def delete_channel_message(request, workspace_id, channel_id, message_id):
    channel = _channel(request, workspace_id, channel_id)
    return await delete(request, channel.id, path_ulid(message_id, "Message not found."),
                        access.at_least(channel.role, "admin"), request.ctx.user.id)


@bp.post("/automation/workspaces/<workspace_id:str>/channels/<channel_id:str>/messages")
@signed_in(ability=AUTOMATION)
async def post_automation_message(request, workspace_id, channel_id):
    """A bot's post, by a token minted with the `automation:post` ability; its author kind is `automation`."""
    token = request.ctx.token
    if token is None or AUTOMATION not in stdjson.loads(token.abilities):
        raise Forbidden("Invalid ability provided.")
    channel = _channel(request, workspace_id, channel_id)
    viewer = request.ctx.user
    return await post(request, channel.id, viewer.id, viewer.name, "automation", message_form(body(request)),
                      _location(channel), reader_language(channel, viewer))
