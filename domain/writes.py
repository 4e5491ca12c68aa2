"""How each write command changes the database, inside the caller's transaction.

The write actor records every applied command id, so a redelivered command never gets here
twice. What remains for these functions is to refuse what the domain does not allow: an id
already taken by someone else's create, a name taken meanwhile, a parent deleted meanwhile.
Creates insert first and explain a refusal afterwards, so the common case costs one statement.
"""

from __future__ import annotations

import json
import threading
from functools import singledispatch
from itertools import groupby

from peewee import IntegrityError

from domain import commands as c
from domain.errors import Conflict, DomainError, Invalid, NotFound
from models import Guest, Room, SocialAccount, Token, User, Workspace, db


@singledispatch
def apply(command: c.Command) -> None:
    """Apply one command; raises a DomainError when it cannot."""
    raise TypeError(f"no write defined for {type(command).__name__}")


# Follow-up work a command asks for once it is committed (a mail to send, a message to fan out):
# (kind, arguments). The write actor stores them in the outbox in the same transaction; after the
# commit its process's relay sends them (actors/relay.py). A refused command's go with it.
_followups = threading.local()


def after_commit(kind: str, **arguments) -> None:
    """Ask for `kind` of follow-up once this command commits; arguments are JSON values."""
    pending().append((kind, arguments))


def pending() -> list[tuple[str, dict]]:
    """This thread's follow-ups so far; the caller empties it."""
    if not hasattr(_followups, "items"):
        _followups.items = []
    return _followups.items


# Kinds of command that can be applied many at a time in one statement: kind -> apply(list).
BULK = {}


def apply_all(commands: list[c.Command]) -> None:
    """Apply commands in order, each run of one bulk kind in one statement.

    Raises the first refusal (DomainError or IntegrityError); the caller then applies them one by
    one to find which. Building SQL is most of peewee's cost here (~0.5 ms a row), so a batch of
    messages costs about as much as one.
    """
    for kind, run in groupby(commands, key=type):
        run = list(run)
        if kind in BULK and len(run) > 1:
            BULK[kind](run)
        else:
            for command in run:
                apply(command)


def create(model, **values) -> None:
    try:
        with db.atomic():  # a savepoint, so the transaction survives a refused insert
            model.insert(**values).execute()
    except IntegrityError as e:
        raise explain(model, values) from e


def explain(model, values: dict) -> DomainError:
    """Why inserting `values` into `model` broke a constraint, in words a client can act on."""
    pk = model._meta.primary_key
    if pk.name in values and model.select().where(pk == values[pk.name]).exists():
        return Conflict("That id is already in use.", {"id": ["That id is already in use."]})
    for field in model._meta.refs:
        if values.get(field.name) is not None:
            target = field.rel_model
            if not target.select().where(field.rel_field == values[field.name]).exists():
                return NotFound(f"The {field.name} does not exist.")
    return Conflict(f"The {model.__name__.lower()} conflicts with an existing one.")


def update(model, key, values: dict, missing: str) -> None:
    values = {k: v for k, v in values.items() if v is not None}
    try:
        count = model.update(**values).where(key).execute()
    except IntegrityError as e:
        # A unique value taken by another worker's commit between our check and this update.
        raise Conflict(f"The {model.__name__.lower()} conflicts with an existing one.") from e
    if count == 0:
        raise NotFound(missing)


# A user with no username (signed up through RosettaChat, or a webhook's bot) is shown to Sector, whose
# accounts must have one, as `rosetta-<id>`; so no Sector account may take a name spelt that way.
_SHOWN_PREFIX = "rosetta-"


def display_username(user: User) -> str:
    """The username Sector shows for `user`: its own, or `rosetta-<id>` when it has none."""
    return user.username or f"{_SHOWN_PREFIX}{user.id}"


def is_reserved_username(username: str) -> bool:
    """Whether `username` is spelt `rosetta-<digits>`, in any case: a name kept for users without one."""
    key = username.strip().casefold()
    return key.startswith(_SHOWN_PREFIX) and key[len(_SHOWN_PREFIX):].isdecimal()


def _username_free(username: str, user_id: int | None = None) -> None:
    taken = User.select().where(User.username_key == username.casefold())
    if user_id is not None:
        taken = taken.where(User.id != user_id)
    if is_reserved_username(username) or taken.exists():
        raise Conflict("That username is taken.", {"username": ["That username is taken."]})


@apply.register
def _(cmd: c.CreateAccount) -> None:
    _username_free(cmd.username)
    create(User, uid=cmd.user_uid, username=cmd.username, username_key=cmd.username.casefold(),
           pubkey=cmd.pubkey, profile_pic=cmd.profile_pic, created_at=cmd.at, updated_at=cmd.at)


@apply.register
def _(cmd: c.UpdateAccount) -> None:
    values = {"profile_pic": cmd.profile_pic, "updated_at": cmd.at}
    if cmd.username is not None:
        _username_free(cmd.username, cmd.user_id)
        values.update(username=cmd.username, username_key=cmd.username.casefold())
    update(User, User.id == cmd.user_id, values, "Account not found.")


@apply.register
def _(cmd: c.DeleteAccount) -> None:
    # Groups the account owns go with it, and the guests of its temporary rooms; foreign keys cascade to the rest.
    User.delete().where(User.id.in_(Guest.select(Guest.user).join(Room).where(Room.owner == cmd.user_id))).execute()
    Workspace.delete().where(Workspace.owner == cmd.user_id).execute()
    User.delete().where(User.id == cmd.user_id).execute()


@apply.register
def _(cmd: c.IssueToken) -> None:
    create(Token, **_token_row(cmd.token_id, cmd.user_id, cmd.name, cmd.secret_hash, cmd.abilities,
                               cmd.expires_at, cmd.at))
    if cmd.login:
        User.update(last_login_at=cmd.at).where(User.id == cmd.user_id).execute()


@apply.register
def _(cmd: c.RevokeToken) -> None:
    Token.update(revoked_at=cmd.at).where((Token.id == cmd.token_id) & Token.revoked_at.is_null()).execute()


EMAIL_TAKEN = "This email is already registered."


def _email_free(email_key: str, user_id: int | None = None) -> None:
    taken = User.select().where(User.email_key == email_key)
    if user_id is not None:
        taken = taken.where(User.id != user_id)
    if taken.exists():
        raise Invalid(EMAIL_TAKEN, {"email": [EMAIL_TAKEN]})


def _token_row(token_id, user_id, name, secret_hash, abilities, expires_at, at) -> dict:
    return {"id": token_id, "user": user_id, "name": name, "secret_hash": secret_hash,
            "abilities": json.dumps(abilities), "expires_at": expires_at, "created_at": at}


def _social_row(user_id: int, account: c.NewSocialAccount, at) -> dict:
    return {"user": user_id, "provider": account.provider, "provider_user_id": account.provider_user_id,
            "provider_email": account.provider_email, "name": account.name, "avatar": account.avatar, "created_at": at}


@apply.register
def _(cmd: c.RegisterUser) -> None:
    email_key = cmd.email.casefold()
    _email_free(email_key)
    create(User, uid=cmd.user_uid, name=cmd.name, email=cmd.email, email_key=email_key,
           password_hash=cmd.password_hash, preferred_language=cmd.preferred_language, profile_pic=cmd.avatar_url,
           email_verified_at=cmd.at if cmd.email_verified else None,
           last_login_at=cmd.at, created_at=cmd.at, updated_at=cmd.at)
    user_id = User.select(User.id).where(User.uid == cmd.user_uid).scalar()
    if cmd.token is not None:
        t = cmd.token
        create(Token, **_token_row(t.token_id, user_id, t.name, t.secret_hash, t.abilities, t.expires_at, cmd.at))
    if cmd.social is not None:
        create(SocialAccount, **_social_row(user_id, cmd.social, cmd.at))
    if not cmd.email_verified:
        after_commit("verification_email", user_id=user_id)


@apply.register
def _(cmd: c.RecordLogin) -> None:
    User.update(last_login_at=cmd.at).where(User.id == cmd.user_id).execute()


@apply.register
def _(cmd: c.SetPassword) -> None:
    update(User, User.id == cmd.user_id, {"password_hash": cmd.password_hash, "updated_at": cmd.at}, "User not found.")
    others = Token.revoked_at.is_null() & (Token.user == cmd.user_id)
    if cmd.keep_token_id is not None:
        others &= Token.id != cmd.keep_token_id
    Token.update(revoked_at=cmd.at).where(others).execute()


@apply.register
def _(cmd: c.VerifyEmail) -> None:
    User.update(email_verified_at=cmd.at, updated_at=cmd.at).where(
        (User.id == cmd.user_id) & (User.email_key == cmd.email_key) & User.email_verified_at.is_null()
    ).execute()


@apply.register
def _(cmd: c.UpdateProfile) -> None:
    values = {"name": cmd.name, "preferred_language": cmd.preferred_language, "profile_pic": cmd.avatar_url,
              "updated_at": cmd.at}
    update(User, User.id == cmd.user_id, values, "User not found.")


@apply.register
def _(cmd: c.TouchToken) -> None:
    Token.update(last_used_at=cmd.at).where(Token.id == cmd.token_id).execute()


ALREADY_LINKED_HERE = "This social account is already linked to your account."
ALREADY_LINKED_ELSEWHERE = "This social account is already linked to another user."
LAST_LOGIN_METHOD = "Cannot unlink the last authentication method. Please set a password first."


@apply.register
def _(cmd: c.LinkSocialAccount) -> None:
    holder = SocialAccount.get_or_none((SocialAccount.provider == cmd.account.provider)
                                       & (SocialAccount.provider_user_id == cmd.account.provider_user_id))
    if holder is not None:
        raise Invalid(ALREADY_LINKED_HERE if holder.user_id == cmd.user_id else ALREADY_LINKED_ELSEWHERE)
    create(SocialAccount, **_social_row(cmd.user_id, cmd.account, cmd.at))


@apply.register
def _(cmd: c.UnlinkSocialAccount) -> None:
    mine = SocialAccount.user == cmd.user_id
    if not SocialAccount.select().where(mine & (SocialAccount.provider == cmd.provider)).exists():
        raise NotFound("Social account not found.")
    has_password = User.select().where((User.id == cmd.user_id) & User.password_hash.is_null(False)).exists()
    if not has_password and not SocialAccount.select().where(mine & (SocialAccount.provider != cmd.provider)).exists():
        raise Invalid(LAST_LOGIN_METHOD)
    SocialAccount.delete().where(mine & (SocialAccount.provider == cmd.provider)).execute()


# Each area's commands register how they apply when imported.
from domain import devices, files, messages, rooms, webhooks, workspaces  # noqa: E402,F401
