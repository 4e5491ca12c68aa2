"""Sector accounts: create (open), read, update and delete your own, search."""

from sanic import Blueprint
from sanic.response import empty

from domain import access, search
from domain import commands as c
from domain.errors import Conflict, Forbidden, Invalid
from domain.signatures import is_public_key
from domain.writes import is_reserved_username
from handlers.auth import authenticated
from handlers.bodies import json, parse, path_id
from handlers.sector import schemas as s
from handlers.sector.paging import page_of, paged
from handlers.writing import creation_ids, write
from models import utcnow

bp = Blueprint("sector_accounts", url_prefix="/api/account", strict_slashes=False)


@bp.post("/")
async def create_account(request):
    body = parse(request, s.AccountIn)
    if not is_public_key(body.pubkey):
        raise Invalid("pubkey must be a 32-byte ed25519 key in base64 or hex.", {"pubkey": ["Not an ed25519 public key."]})
    # With an `id` the write decides, so that a retry of a create that went through gets its account.
    if body.id is None and (is_reserved_username(body.username) or access.account_by_username(body.username)):
        raise _taken()
    command_id, uid = await creation_ids(request, "anonymous", "account", body.id)
    command = c.CreateAccount(command_id=command_id, user_uid=uid, username=body.username, pubkey=body.pubkey,
                              profile_pic=body.profile_pic, at=utcnow())
    return await write(request, command, location=f"/v1/api/account/{uid}",
                       render=lambda: json(s.account(access.account(uid=uid)), status=201))


@bp.post("/search")
@authenticated
async def search_accounts(request):
    body = parse(request, s.AccountFilter)
    rows, cursor = search.accounts(ids=body.id, username=body.username, since=s.naive_utc(body.since),
                                   until=s.naive_utc(body.until), page=page_of(body))
    return paged([s.account(u) for u in rows], cursor)


@bp.get("/<account_id:str>")
@authenticated
async def get_account(request, account_id):
    return json(s.account(access.account(uid=path_id(account_id, "id"))))


def _taken() -> Conflict:
    # The write refuses the same names (domain.writes._username_free); refusing here saves the round trip.
    return Conflict("That username is taken.", {"username": ["That username is taken."]})


def _own_account(request, account_id: str):
    user = access.account(uid=path_id(account_id, "id"))
    if user.id != request.ctx.user.id:
        raise Forbidden("You may change only your own account.")
    return user


@bp.put("/<account_id:str>")
@authenticated
async def update_account(request, account_id):
    user = _own_account(request, account_id)
    body = parse(request, s.AccountUpdate)
    if body.username is not None:
        holder = access.account_by_username(body.username)
        if is_reserved_username(body.username) or (holder is not None and holder.id != user.id):
            raise _taken()
    command = c.UpdateAccount(command_id=c.new_command_id(), user_id=user.id, username=body.username,
                              profile_pic=body.profile_pic, at=utcnow())
    return await write(request, command, location=f"/v1/api/account/{user.uid}",
                       render=lambda: json(s.account(access.account(uid=user.uid))))


@bp.delete("/<account_id:str>")
@authenticated
async def delete_account(request, account_id):
    user = _own_account(request, account_id)
    return await write(request, c.DeleteAccount(command_id=c.new_command_id(), user_id=user.id),
                       render=lambda: empty(status=204))
