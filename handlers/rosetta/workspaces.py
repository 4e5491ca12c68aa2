"""RosettaChat workspaces (Sector groups): list, create, show, change, delete, and join."""

from __future__ import annotations

import uuid

from peewee import JOIN, fn
from sanic import Blueprint
from sanic.response import empty

from domain import chat_access as access
from domain import commands as c
from domain.errors import Invalid, NotFound
from handlers.bodies import json, path_ulid
from handlers.rosetta import resources as r
from handlers.rosetta.accounts import check_shared_password, hash_shared_password
from handlers.rosetta.forms import Field, body, validate
from handlers.rosetta.guard import signed_in
from handlers.rosetta.members import member_resource
from handlers.rosetta.paging import paginate
from handlers.rosetta.schemas import stamp
from handlers.writing import claim_ids, write
from models import Membership, Workspace, ulid_of, utcnow

bp = Blueprint("rosetta_workspaces", strict_slashes=False)

VISIBILITIES = ("public", "private", "password")
SLUG = Field(max=80, pattern=r"[A-Za-z0-9_-]+",
             pattern_rule="must only contain letters, numbers, dashes, and underscores",
             description="Letters, digits, `-` and `_`; made from the name when absent (with a suffix when taken).",
             example="design-team")
PASSWORD = Field(min=8, max=120, trim=False, nullable=True,
                 description="Required with visibility `password`: what joining takes. Stored as a bcrypt hash (of its SHA-256).",
                 example="open sesame")


VISIBILITY = Field(one_of=VISIBILITIES, nullable=True, example="private",
                   description="`public`: anyone signed in may see and join; `private`: members only, by invite; "
                               "`password`: anyone may see it, joining takes the password. `private` when absent.")


WORKSPACE = {"name": Field(required=True, max=120, description="The workspace's name.", example="Design Team"),
             "slug": SLUG, "visibility": VISIBILITY, "password": PASSWORD,
             "description": Field(max=2000, description="What the workspace is for.", example="")}
WORKSPACE_UPDATE = {**WORKSPACE, "name": Field(max=120, description="The workspace's name.", example="Design Team")}
JOIN_FORM = {"password": Field(trim=False, max=120,
                               description="The workspace's (or channel's) password, when it has one.",
                               example="open sesame")}
PASSWORD_NEEDED = "The password field is required when visibility is password."


def _member_counts():
    return (Membership.select(fn.COUNT(Membership.id)).where(Membership.workspace == Workspace.id)
            .alias("member_count"))


def workspace_resource(w) -> r.Workspace:
    """A workspace read with its member count and the viewer's `role` (null for a non-member)."""
    return r.Workspace(ulid_of(w.id), w.name, w.slug, w.description, w.visibility, w.role, w.member_count,
                       stamp(w.created_at), stamp(w.updated_at))


def _one(workspace_id, viewer_id: int, status: int = 200):
    found = (Workspace.select(Workspace, _member_counts(), Membership.role.alias("role"))
             .join(Membership, on=(Membership.workspace == Workspace.id) & (Membership.user == viewer_id),
                   join_type=JOIN.LEFT_OUTER).where(Workspace.id == workspace_id).objects().first())
    if found is None:
        raise NotFound("Workspace not found.")
    return json(r.WorkspaceOne(workspace_resource(found)), status=status)


async def password_values(request, form: dict, visibility: str | None, had_password: bool = False) -> str | None:
    """The bcrypt hash of the form's password; a 422 when visibility `password` comes without one."""
    if visibility == "password" and not form.get("password") and not had_password:
        raise Invalid(PASSWORD_NEEDED, {"password": [PASSWORD_NEEDED]})
    return await hash_shared_password(request, form["password"]) if form.get("password") else None


def slug_free(slug: str | None, taken) -> None:
    if slug is not None and taken.exists():
        raise Invalid("The slug has already been taken.", {"slug": ["The slug has already been taken."]})


@bp.get("/workspaces")
@signed_in
async def list_workspaces(request):
    viewer = request.ctx.user
    mine = (Workspace.select(Workspace, _member_counts(), Membership.role.alias("role")).join(Membership)
            .where(Membership.user == viewer.id).order_by(Workspace.created_at.desc(), Workspace.id.desc()).objects())
    items, meta, links = paginate(request, mine, workspace_resource)
    return json(r.WorkspaceList(items, meta, links))


@bp.post("/workspaces")
@signed_in
async def create_workspace(request):
    viewer = request.ctx.user
    form = validate(body(request), WORKSPACE)
    visibility = form.get("visibility") or "private"
    slug_free(form.get("slug"), Workspace.select().where(Workspace.slug == form.get("slug")))
    password_hash = await password_values(request, form, visibility)
    ids = await claim_ids(request, f"user:{viewer.id}", "id")
    workspace_id = uuid.UUID(ids["id"])
    command = c.CreateGroup(command_id=ids["command_id"], group_id=workspace_id, owner_id=viewer.id, name=form["name"],
                            description=form.get("description") or "", member_ids=[], slug=form.get("slug"),
                            visibility=visibility, password_hash=password_hash, at=utcnow())
    return await write(request, command, location=f"/api/v1/workspaces/{ulid_of(workspace_id)}",
                       render=lambda: _one(workspace_id, viewer.id, status=201))


@bp.get("/workspaces/<workspace_id:str>")
@signed_in
async def get_workspace(request, workspace_id):
    found = access.workspace(viewer_id=request.ctx.user.id,
                             workspace_id=path_ulid(workspace_id, "Workspace not found."))
    return _one(found.id, request.ctx.user.id)


@bp.patch("/workspaces/<workspace_id:str>")
@signed_in
async def update_workspace(request, workspace_id):
    viewer = request.ctx.user
    found = access.member_workspace(viewer_id=viewer.id, workspace_id=path_ulid(workspace_id, "Workspace not found."),
                                    role="owner")
    form = validate(body(request), WORKSPACE_UPDATE)
    slug_free(form.get("slug"),
              Workspace.select().where((Workspace.slug == form.get("slug")) & (Workspace.id != found.id)))
    visibility = form.get("visibility")
    password_hash = await password_values(request, form, visibility, had_password=found.password_hash is not None)
    command = c.UpdateGroup(command_id=c.new_command_id(), group_id=found.id, name=form.get("name"),
                            description=form.get("description"), slug=form.get("slug"), visibility=visibility,
                            password_hash=password_hash, at=utcnow())
    return await write(request, command, render=lambda: _one(found.id, viewer.id))


@bp.delete("/workspaces/<workspace_id:str>")
@signed_in
async def delete_workspace(request, workspace_id):
    found = access.member_workspace(viewer_id=request.ctx.user.id,
                                    workspace_id=path_ulid(workspace_id, "Workspace not found."), role="owner")
    return await write(request, c.DeleteGroup(command_id=c.new_command_id(), group_id=found.id),
                       render=lambda: empty(status=204))


@bp.post("/workspaces/<workspace_id:str>/join")
@signed_in
async def join_workspace(request, workspace_id):
    """Join a public workspace, or a password one with its password; 201 the first time, then 200."""
    viewer = request.ctx.user
    found = access.workspace(viewer_id=viewer.id, workspace_id=path_ulid(workspace_id, "Workspace not found."))
    form = validate(body(request), JOIN_FORM)
    if found.role is not None:
        return json(r.MemberOne(member_resource(access.membership(workspace_id=found.id, user_id=viewer.id), viewer)))
    if found.visibility == "password" and not await check_shared_password(request, form.get("password") or "",
                                                                     found.password_hash):
        raise Invalid("The password is incorrect.", {"password": ["The password is incorrect."]})
    command = c.AddMember(command_id=c.new_command_id(), group_id=found.id, user_id=viewer.id, at=utcnow())
    return await write(request, command, render=lambda: json(r.MemberOne(member_resource(
        access.membership(workspace_id=found.id, user_id=viewer.id), viewer)), status=201))
