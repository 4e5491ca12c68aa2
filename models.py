"""Peewee models of the shared domain, id and time helpers, and schema setup.

One domain serves both dialects: a Sector *account* is a RosettaChat *user*, a Sector
*group* is a RosettaChat *workspace*. Rows are keyed by 128-bit ids minted as ULIDs (so they
sort by creation time); Sector renders them as UUID strings and RosettaChat as lowercase
ULIDs. Users also carry an integer id because RosettaChat shows user ids as integers.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import weakref

import peewee
from peewee import (
    AutoField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateTimeField,
    ForeignKeyField,
    Model,
    PostgresqlDatabase,
    TextField,
    UUIDField,
    fn,
)
from playhouse.db_url import connect
from ulid import ULID

db = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "cache_size": -16_000,
}


def new_id() -> uuid.UUID:
    """A fresh time-ordered id: a ULID's 128 bits as a UUID."""
    return ULID().to_uuid()


def ulid_of(value: uuid.UUID) -> str:
    """The RosettaChat spelling of an id: its lowercase ULID."""
    return str(ULID.from_uuid(value)).lower()


def utcnow() -> dt.datetime:
    """Now in UTC, naive, at millisecond precision so it survives a JSON round trip."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class BaseModel(Model):
    class Meta:
        database = db


class User(BaseModel):
    """An account (Sector) or user (RosettaChat)."""

    id = AutoField()
    uid = UUIDField(unique=True)
    username = CharField(null=True)
    username_key = CharField(null=True, unique=True)  # casefolded username
    name = CharField(null=True)
    email = CharField(null=True)
    email_key = CharField(null=True, unique=True)  # casefolded email
    password_hash = CharField(null=True)
    pubkey = CharField(null=True)  # ed25519 public key as the client gave it (base64 or hex)
    profile_pic = TextField(default="")  # RosettaChat's avatar_url
    preferred_language = CharField(default="en")
    is_active = BooleanField(default=True)
    email_verified_at = DateTimeField(null=True)
    last_login_at = DateTimeField(null=True)
    created_at = DateTimeField()
    updated_at = DateTimeField()


class Token(BaseModel):
    """A bearer token; only the SHA-256 of its secret is kept."""

    id = UUIDField(primary_key=True)
    user = ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    name = CharField(default="")
    secret_hash = CharField(unique=True)
    abilities = TextField(default='["*"]')  # JSON list
    last_used_at = DateTimeField(null=True)
    expires_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)
    created_at = DateTimeField()


class SocialAccount(BaseModel):
    """A login with an OAuth2/OIDC provider, linked to a user."""

    id = AutoField()
    user = ForeignKeyField(User, backref="social_accounts", on_delete="CASCADE", index=True)
    provider = CharField()
    provider_user_id = CharField()
    provider_email = CharField(null=True)
    name = CharField(null=True)
    avatar = TextField(null=True)
    created_at = DateTimeField()

    class Meta:
        indexes = ((("provider", "provider_user_id"), True),)


class Workspace(BaseModel):
    """A group (Sector) or workspace (RosettaChat)."""

    id = UUIDField(primary_key=True)
    name = CharField()
    slug = CharField(null=True, unique=True)
    description = TextField(default="")
    visibility = CharField(default="private")
    owner = ForeignKeyField(User, backref="owned_workspaces", on_delete="CASCADE")
    created_at = DateTimeField(index=True)
    updated_at = DateTimeField()


class Membership(BaseModel):
    workspace = ForeignKeyField(Workspace, backref="memberships", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="memberships", on_delete="CASCADE", index=True)
    role = CharField(default="member")  # owner | admin | member | guest
    created_at = DateTimeField()

    class Meta:
        indexes = ((("workspace", "user"), True),)


class Channel(BaseModel):
    id = UUIDField(primary_key=True)
    workspace = ForeignKeyField(Workspace, backref="channels", on_delete="CASCADE")
    name = CharField()
    slug = CharField(null=True)
    description = TextField(default="")
    visibility = CharField(default="public")  # public | private
    kind = CharField(default="channel")  # channel | direct
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        indexes = ((("workspace", "created_at"), False),)


class Message(BaseModel):
    id = UUIDField(primary_key=True)
    channel = ForeignKeyField(Channel, backref="messages", on_delete="CASCADE")
    author = ForeignKeyField(User, backref="messages", on_delete="CASCADE", index=True)
    parent = ForeignKeyField("self", null=True, backref="replies", on_delete="CASCADE")
    type = CharField(default="text")
    body = TextField()
    language = CharField(null=True)
    pinned = BooleanField(default=False)
    created_at = DateTimeField()
    edited_at = DateTimeField(null=True)
    deleted_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("channel", "created_at"), False),)


class AppliedCommand(BaseModel):
    """Ids of write commands already committed, so a redelivered message changes nothing."""

    id = CharField(primary_key=True)
    applied_at = DateTimeField(index=True)


class Prepared:
    """A SELECT that peewee builds once per process; each call only binds fresh values.

    Building a query's SQL costs peewee ~0.4-1 ms here, against ~15 us for SQLite to run it, so
    the reads every request makes (token, membership) are prepared. `build` receives one stand-in
    per keyword of `kinds` (uuid.UUID or int) and returns the query; calls pass the real values.
    """

    def __init__(self, build, **kinds):
        self.build = build
        self.kinds = kinds
        self._compiled = None

    def _compile(self):
        stand_ins = {
            name: uuid.uuid4() if kind is uuid.UUID else -(uuid.uuid4().int >> 80) for name, kind in self.kinds.items()
        }
        query = self.build(**stand_ins)
        sql, params = query.sql()
        wire = {(v.hex if isinstance(v, uuid.UUID) else v): name for name, v in stand_ins.items()}
        slots = [wire.get(p) if isinstance(p, (str, int)) else None for p in params]
        if set(n for n in slots if n) != set(self.kinds):
            raise ValueError("a stand-in value did not reach the SQL parameters")
        if is_postgres():
            # Planning a 4-table join took longer than running it; PostgreSQL plans a PREPAREd
            # statement once per connection instead of on every call.
            placeholders = iter(range(1, len(params) + 1))
            self._pg_plan = re.sub(r"%s", lambda _: f"${next(placeholders)}", sql)
            sql = f"EXECUTE sector_q{id(self)} ({', '.join(['%s'] * len(params))})" if params else f"EXECUTE sector_q{id(self)}"
            self._prepared_on = weakref.WeakSet()
        self._compiled = (db.obj, query, sql, params, slots)
        self._layout = None

    def _prepare_on_this_connection(self) -> None:
        connection = db.connection()
        if connection not in self._prepared_on:
            db.execute_sql(f"PREPARE sector_q{id(self)} AS {self._pg_plan}")
            self._prepared_on.add(connection)

    def __call__(self, **values) -> list:
        if self._compiled is None or self._compiled[0] is not db.obj:
            self._compile()
        _, query, sql, params, slots = self._compiled
        bound = [
            (values[name].hex if isinstance(values[name], uuid.UUID) else values[name]) if name else param
            for param, name in zip(params, slots, strict=True)
        ]
        if is_postgres():
            self._prepare_on_this_connection()
        # Peewee's own row reader for this query (a private hook, stable across 3.x-4.x). It works
        # out which column goes to which model on every call, ~15% of a request here; the SQL never
        # changes, so what it worked out the first time is handed to the next readers.
        reader = query._get_cursor_wrapper(db.execute_sql(sql, bound))
        if self._layout is not None:
            reader.__dict__.update(self._layout)
            return list(reader)
        before = set(reader.__dict__)
        rows = list(reader)
        if reader.initialized:
            self._layout = {key: reader.__dict__[key] for key in reader.__dict__.keys() - before}
            self._layout["initialized"] = True
        return rows

    def first(self, **values):
        rows = self(**values)
        return rows[0] if rows else None


TABLES = [User, Token, SocialAccount, Workspace, Membership, Channel, Message, AppliedCommand]


def is_postgres() -> bool:
    return isinstance(db.obj, PostgresqlDatabase)


def fold_text(text: str) -> str:
    """Fold text for case-insensitive matching the way `folded()` folds a column."""
    return text.lower() if is_postgres() else text.casefold()


def folded(column):
    """A column folded for case-insensitive matching of any script, not only ASCII."""
    return fn.LOWER(column) if is_postgres() else fn.sector_fold(column)


def open_database(url: str) -> None:
    """Bind the models to the database at `url` (a peewee URL)."""
    if url.startswith("sqlite"):
        database = connect(url, pragmas=SQLITE_PRAGMAS)
        # SQLite's own lower() knows only ASCII; names and messages here are in any language.
        database.register_function(lambda s: s.casefold() if s is not None else None, "sector_fold", 1)
    else:
        database = connect(url, autorollback=True)
    db.initialize(database)


def drop_connection() -> None:
    """Forget this thread's connection after the database dropped it; the next query reconnects."""
    try:
        db.close()
    except peewee.PeeweeException:
        db._state.reset()  # close() refuses inside a transaction; a dead connection has none to keep


#: Errors that mean the connection, not the query, failed (a restart, a failover, the network).
CONNECTION_ERRORS = (peewee.OperationalError, peewee.InterfaceError)


def migrate() -> None:
    """Create missing tables and indexes; safe to run from several processes at once."""
    with db.atomic():
        if is_postgres():
            # Serialize concurrent starters: CREATE TABLE IF NOT EXISTS races on PostgreSQL.
            db.execute_sql("SELECT pg_advisory_xact_lock(727001)")
        db.create_tables(TABLES, safe=True)
        _add_missing_columns()


def _add_missing_columns() -> None:
    """Add columns that models gained since a table was created (only nullable ones are ever added),
    and widen VARCHAR columns that became TEXT (PostgreSQL; SQLite does not enforce lengths)."""
    from playhouse.migrate import migrate as run, PostgresqlMigrator, SqliteMigrator

    migrator = PostgresqlMigrator(db.obj) if is_postgres() else SqliteMigrator(db.obj)
    for model in TABLES:
        table = model._meta.table_name
        present = {column.name: column for column in db.get_columns(table)}
        for field in model._meta.sorted_fields:
            column = present.get(field.column_name)
            if column is not None and isinstance(field, TextField) and column.data_type == "character varying":
                db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "{field.column_name}" TYPE text')  # widened
            if column is None:
                if not field.null:
                    raise RuntimeError(f"{table}.{field.column_name} is missing and not nullable; migrate by hand")
                run(migrator.add_column(table, field.column_name, field))
