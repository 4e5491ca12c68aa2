"""Sector groups: create, read, update and delete (owner), members, search."""

from sanic import Blueprint
from sanic.response import empty

from domain import access, search
from domain import commands as c
from domain.errors import Conflict, Forbidden, NotFound
from handlers.auth import authenticated
from handlers.bodies import json, parse, path_id
from handlers.sector import schemas as s
from handlers.sector.paging import page_of, paged
from handlers.writing import creation_ids, write
from models import utcnow

bp = Blueprint("sector_groups", url_prefix="/api/group", strict_slashes=False)


def render_group(viewer, group_id, status=200):
    group = access.group_for_member(viewer=viewer, group_id=group_id)
    return json(s.group(group, access.member_uids(group)), status=status)


@bp.post("/")
@authenticated
async def create_group(request):
    viewer = request.ctx.user
    body = parse(request, s.GroupIn)
    members = access.accounts(uids=body.members)
    command_id, group_id = await creation_ids(request, viewer.uid.hex, "group", body.id)
    command = c.CreateGroup(command_id=command_id, group_id=group_id, owner_id=viewer.id, name=body.name,
                            description=body.description, member_ids=[m.id for m in members], at=utcnow())
    return await write(request, command, location=f"/v1/api/group/{group_id}",
                       render=lambda: render_group(viewer, group_id, status=201))


@bp.post("/search")
@authenticated
async def search_groups(request):
    body = parse(request, s.GroupFilter)
    rows, cursor = search.groups(viewer=request.ctx.user, ids=body.id, members=body.members, name=body.name,
                                 since=s.naive_utc(body.since), until=s.naive_utc(body.until), page=page_of(body))
    members = access.member_uids_of(rows)
    return paged([s.group(g, members[g.id]) for g in rows], cursor)


@bp.get("/<group_id:str>")
@authenticated
async def get_group(request, group_id):
    return render_group(request.ctx.user, path_id(group_id, "groupId"))


@bp.put("/<group_id:str>")
@authenticated
async def update_group(request, group_id):
    viewer = request.ctx.user
    group = access.group_for_owner(viewer=viewer, group_id=path_id(group_id, "groupId"))
    body = parse(request, s.GroupUpdate)
    command = c.UpdateGroup(command_id=c.new_command_id(), group_id=group.id, name=body.name,
                            description=body.description, at=utcnow())
    # The spec answers an update with 201.
    return await write(request, command, location=f"/v1/api/group/{group.id}",
                       render=lambda: render_group(viewer, group.id, status=201))


@bp.delete("/<group_id:str>")
@authenticated
async def delete_group(request, group_id):
    group = access.group_for_owner(viewer=request.ctx.user, group_id=path_id(group_id, "groupId"))
    return await write(request, c.DeleteGroup(command_id=c.new_command_id(), group_id=group.id),
                       render=lambda: empty(status=204))


@bp.post("/<group_id:str>/members/<member_id:str>")
@authenticated
async def add_member(request, group_id, member_id):
    viewer = request.ctx.user
    group = access.group_for_owner(viewer=viewer, group_id=path_id(group_id, "groupId"))
    member = access.account(uid=path_id(member_id, "memberId"))
    command = c.AddMember(command_id=c.new_command_id(), group_id=group.id, user_id=member.id, at=utcnow())
    return await write(request, command, location=f"/v1/api/group/{group.id}",
                       render=lambda: render_group(viewer, group.id))


@bp.delete("/<group_id:str>/members/<member_id:str>")
@authenticated
async def remove_member(request, group_id, member_id):
    """The owner removes anyone but themselves; a member may remove themselves (leave)."""
    viewer = request.ctx.user
    group = access.group_for_member(viewer=viewer, group_id=path_id(group_id, "groupId"))
    member = access.account(uid=path_id(member_id, "memberId"))
    if member.id == group.owner_id:
        raise Conflict("The owner cannot leave the group; delete it instead.")
    if viewer.id not in (group.owner_id, member.id):
        raise Forbidden("Only the group's owner may remove other members.")
    if access.membership(viewer=member, group_id=group.id) is None:
        raise NotFound("That account is not a member of this group.")
    command = c.RemoveMember(command_id=c.new_command_id(), group_id=group.id, user_id=member.id)
    return await write(request, command, render=lambda: empty(status=204))
