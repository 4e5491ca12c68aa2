"""Sector channels: members create and read; the group owner or the channel's creator updates;
the group owner deletes."""

from sanic import Blueprint
from sanic.response import empty

from domain import access, search
from domain import commands as c
from domain.errors import Forbidden, Invalid
from handlers.auth import authenticated
from handlers.bodies import json, parse, path_id
from handlers.sector import schemas as s
from handlers.sector.paging import page_of, paged
from handlers.writing import creation_ids, write
from models import utcnow

bp = Blueprint("sector_channels", url_prefix="/api", strict_slashes=False)


def _url(group_id, channel_id) -> str:
    return f"/v1/api/group/{group_id}/channel/{channel_id}"


def render_channel(viewer, group_id, channel_id, status=200):
    return json(s.channel(access.channel_for_member(viewer=viewer, group_id=group_id, channel_id=channel_id)),
                status=status)


@bp.post("/group/<group_id:str>/channel")
@authenticated
async def create_channel(request, group_id):
    viewer = request.ctx.user
    group = access.group_for_member(viewer=viewer, group_id=path_id(group_id, "groupId"))
    body = parse(request, s.ChannelIn)
    if body.group is not None and body.group != group.id:
        raise Invalid("group must match the group in the path.", {"group": ["Does not match the path."]})
    command_id, channel_id = await creation_ids(request, viewer.uid.hex, "channel", body.id)
    command = c.CreateChannel(command_id=command_id, channel_id=channel_id, group_id=group.id, created_by=viewer.id,
                              name=body.name, description=body.description, at=utcnow())
    return await write(request, command, location=_url(group.id, channel_id),
                       render=lambda: render_channel(viewer, group.id, channel_id, status=201))


@bp.post("/channel/search")
@authenticated
async def search_channels(request):
    body = parse(request, s.ChannelFilter)
    rows, cursor = search.channels(viewer=request.ctx.user, ids=body.id, groups=body.group, name=body.name,
                                   since=s.naive_utc(body.since), until=s.naive_utc(body.until), page=page_of(body))
    return paged([s.channel(row) for row in rows], cursor)


@bp.get("/group/<group_id:str>/channel/<channel_id:str>")
@authenticated
async def get_channel(request, group_id, channel_id):
    return render_channel(request.ctx.user, path_id(group_id, "groupId"), path_id(channel_id, "channelId"))


@bp.put("/group/<group_id:str>/channel/<channel_id:str>")
@authenticated
async def update_channel(request, group_id, channel_id):
    viewer = request.ctx.user
    gid, cid = path_id(group_id, "groupId"), path_id(channel_id, "channelId")
    channel = access.channel_for_member(viewer=viewer, group_id=gid, channel_id=cid)
    if viewer.id not in (channel.workspace.owner_id, channel.created_by_id):
        raise Forbidden("Only the group's owner or the channel's creator may change it.")
    body = parse(request, s.ChannelUpdate)
    command = c.UpdateChannel(command_id=c.new_command_id(), channel_id=cid, name=body.name,
                              description=body.description, at=utcnow())
    # The spec answers an update with 201.
    return await write(request, command, location=_url(gid, cid),
                       render=lambda: render_channel(viewer, gid, cid, status=201))


@bp.delete("/group/<group_id:str>/channel/<channel_id:str>")
@authenticated
async def delete_channel(request, group_id, channel_id):
    viewer = request.ctx.user
    gid, cid = path_id(group_id, "groupId"), path_id(channel_id, "channelId")
    access.group_for_owner(viewer=viewer, group_id=gid)
    access.channel_for_member(viewer=viewer, group_id=gid, channel_id=cid)
    return await write(request, c.DeleteChannel(command_id=c.new_command_id(), channel_id=cid),
                       render=lambda: empty(status=204))
