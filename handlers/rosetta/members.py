"""Members of a RosettaChat workspace: list, change a role or language, remove (or leave).

Admins manage members; only an owner makes or unmakes owners (or removes one); a member may set
their own language and leave. The last owner can neither leave nor be demoted.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import empty

from domain import chat_access as access
from domain import commands as c
from domain.errors import Forbidden, NotFound
from domain.workspaces import ROLES, ChangeMember
from handlers.bodies import json, path_ulid
from handlers.rosetta import resources as r
from handlers.rosetta.forms import Field, body, validate
from handlers.rosetta.guard import signed_in
from handlers.rosetta.paging import paginate
from handlers.rosetta.schemas import LANGUAGES, stamp
from handlers.writing import write
from models import Membership, User, ulid_of

bp = Blueprint("rosetta_members", strict_slashes=False)

MEMBER = {
    "role": Field(required=True, one_of=ROLES, description="`owner`, `admin` or `member`.", example="admin"),
    "preferred_language": Field(one_of=LANGUAGES, nullable=True, example="ja",
                                description="Messages in this workspace are translated into this for the member; "
                                            "null: the user's own language."),
}
_ONE = "/workspaces/<workspace_id:str>/members/<user_id:str>"


def member_resource(member: Membership, user: User) -> r.Member:
    return r.Member(ulid_of(member.workspace_id), user.id, user.name, member.role, member.preferred_language,
                    stamp(member.created_at))


def _target(workspace_id: str, user_id: str, viewer) -> tuple:
    """(the workspace as the viewer sees it, the member the path names)."""
    workspace = access.member_workspace(viewer_id=viewer.id,
                                        workspace_id=path_ulid(workspace_id, "Workspace not found."))
    if not user_id.isascii() or not user_id.isdigit() or len(user_id) > 18:
        raise NotFound("Member not found.")
    return workspace, access.membership(workspace_id=workspace.id, user_id=int(user_id))


def _render(workspace_id, user_id: int):
    member = access.membership(workspace_id=workspace_id, user_id=user_id)
    return json(r.MemberOne(member_resource(member, User.get_by_id(user_id))))


@bp.get("/workspaces/<workspace_id:str>/members")
@signed_in
async def list_members(request, workspace_id):
    workspace = access.member_workspace(viewer_id=request.ctx.user.id,
                                        workspace_id=path_ulid(workspace_id, "Workspace not found."))
    members = (Membership.select(Membership, User).join(User).where(Membership.workspace == workspace.id)
               .order_by(Membership.created_at, Membership.id))
    items, meta, links = paginate(request, members, lambda m: member_resource(m, m.user))
    return json(r.MemberList(items, meta, links))


@bp.put(_ONE)
@signed_in
async def change_member(request, workspace_id, user_id):
    viewer = request.ctx.user
    workspace, member = _target(workspace_id, user_id, viewer)
    data = body(request)
    form = validate(data, MEMBER)
    role = form["role"]
    own_language_only = member.user_id == viewer.id and role == member.role
    if not own_language_only:
        if not access.at_least(workspace.role, "admin"):
            raise Forbidden("Only the workspace's owners and admins may change members.")
        if "owner" in (role, member.role) and role != member.role and workspace.role != "owner":
            raise Forbidden("Only an owner may make or unmake owners.")
    command = ChangeMember(command_id=c.new_command_id(), group_id=workspace.id, user_id=member.user_id,
                           role=role, preferred_language=form.get("preferred_language"),
                           clear_language="preferred_language" in data and form.get("preferred_language") is None)
    return await write(request, command, render=lambda: _render(workspace.id, member.user_id))


@bp.delete(_ONE)
@signed_in
async def remove_member(request, workspace_id, user_id):
    viewer = request.ctx.user
    workspace, member = _target(workspace_id, user_id, viewer)
    if member.user_id != viewer.id:
        if not access.at_least(workspace.role, "admin"):
            raise Forbidden("Only the workspace's owners and admins may remove members.")
        if member.role == "owner" and workspace.role != "owner":
            raise Forbidden("Only an owner may remove an owner.")
    command = c.RemoveMember(command_id=c.new_command_id(), group_id=workspace.id, user_id=member.user_id)
    return await write(request, command, render=lambda: empty(status=204))
