"""Sector messages: members post and read; only the author edits the body; any member pins;
the author or the group owner deletes."""

from sanic import Blueprint
from sanic.response import empty

from domain import access, languages, search, translations
from domain import commands as c
from domain.errors import Forbidden, Invalid
from handlers.auth import authenticated
from handlers.bodies import json, parse, path_id
from handlers.sector import schemas as s
from handlers.sector.paging import page_of, paged
from handlers.writing import creation_ids, write
from models import utcnow

bp = Blueprint("sector_messages", url_prefix="/api", strict_slashes=False)

_ONE = "/group/<group_id:str>/channel/<channel_id:str>/message/<message_id:str>"


def _ids(group_id, channel_id, message_id=None):
    ids = path_id(group_id, "groupId"), path_id(channel_id, "channelId")
    return ids + (path_id(message_id, "messageId"),) if message_id is not None else ids


def _shown(request, messages: list) -> list[s.Message]:
    """The messages, each in the first language of the request's Accept-Language it can be read in (an
    extension; without the header, exactly as the spec shows them)."""
    wanted = languages.accepted(request.headers.get("accept-language"))
    if not wanted:
        return [s.message(m, m.author.uid) for m in messages]
    chosen = translations.chosen(messages, wanted)
    return [s.message_in_language(m, m.author.uid, chosen.get(m.id)) for m in messages]


def render_message(request, gid, cid, mid, status=200):
    message = access.message_for_member(viewer=request.ctx.user, group_id=gid, channel_id=cid, message_id=mid)
    return json(_shown(request, [message])[0], status=status, headers={"Vary": "Accept-Language"})


@bp.post("/group/<group_id:str>/channel/<channel_id:str>/message")
@authenticated
async def post_message(request, group_id, channel_id):
    viewer = request.ctx.user
    gid, cid = _ids(group_id, channel_id)
    access.channel_for_member(viewer=viewer, group_id=gid, channel_id=cid)
    body = parse(request, s.MessageIn)
    if body.author is not None and body.author != viewer.uid:
        raise Forbidden("You may post only as yourself.")
    if body.channel is not None and body.channel != cid:
        raise Invalid("channel must match the channel in the path.", {"channel": ["Does not match the path."]})
    command_id, mid = await creation_ids(request, viewer.uid.hex, "message", body.id)
    command = c.PostMessage(command_id=command_id, message_id=mid, channel_id=cid, author_id=viewer.id,
                            body=body.body, pinned=body.pinned, at=utcnow())
    stored = s.Message(viewer.uid, command.body, cid, s.utc(command.at), mid, command.pinned)
    return await write(request, command, location=f"/v1/api/group/{gid}/channel/{cid}/message/{mid}",
                       render=lambda: render_message(request, gid, cid, mid, status=201),
                       render_applied=lambda: json(stored, status=201))


@bp.post("/message/search")
@authenticated
async def search_messages(request):
    body = parse(request, s.MessageFilter)
    rows, cursor = search.messages(viewer=request.ctx.user, ids=body.id, channels=body.channel, authors=body.author,
                                   body=body.body, pinned=body.pinned, since=s.naive_utc(body.since),
                                   until=s.naive_utc(body.until), page=page_of(body))
    return paged(_shown(request, rows), cursor)


@bp.get(_ONE)
@authenticated
async def get_message(request, group_id, channel_id, message_id):
    return render_message(request, *_ids(group_id, channel_id, message_id))


@bp.put(_ONE)
@authenticated
async def update_message(request, group_id, channel_id, message_id):
    viewer = request.ctx.user
    gid, cid, mid = _ids(group_id, channel_id, message_id)
    message = access.message_for_member(viewer=viewer, group_id=gid, channel_id=cid, message_id=mid)
    body = parse(request, s.MessageUpdate)
    if body.body is not None and message.author_id != viewer.id:
        raise Forbidden("Only the author may edit a message's body.")
    command = c.UpdateMessage(command_id=c.new_command_id(), message_id=mid, body=body.body, pinned=body.pinned,
                              at=utcnow())
    # The spec answers an update with 201.
    return await write(request, command, location=f"/v1/api/group/{gid}/channel/{cid}/message/{mid}",
                       render=lambda: render_message(request, gid, cid, mid, status=201))


@bp.delete(_ONE)
@authenticated
async def delete_message(request, group_id, channel_id, message_id):
    viewer = request.ctx.user
    gid, cid, mid = _ids(group_id, channel_id, message_id)
    message = access.message_for_member(viewer=viewer, group_id=gid, channel_id=cid, message_id=mid)
    if viewer.id not in (message.author_id, message.channel.workspace.owner_id):
        raise Forbidden("Only the author or the group's owner may delete a message.")
    return await write(request, c.DeleteMessage(command_id=c.new_command_id(), message_id=mid, at=utcnow()),
                       render=lambda: empty(status=204))
