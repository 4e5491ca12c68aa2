"""Peewee models of the shared domain, id and time helpers, and schema setup.

One domain serves both dialects: a Sector *account* is a RosettaChat *user*, a Sector
*group* is a RosettaChat *workspace*. Rows are keyed by 128-bit ids minted as ULIDs (so they
sort by creation time); Sector renders them as UUID strings and RosettaChat as lowercase
ULIDs. Users also carry an integer id because RosettaChat shows user ids as integers.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
import weakref

import peewee
from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    IntegerField,
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


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# Two base32 digits for each 10 bits: 128 bits are 13 such pairs (the first two bits always 0).
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]


def ulid_of(value: uuid.UUID | str) -> str:
    """The RosettaChat spelling of an id: its lowercase ULID (Crockford base32 of the 128 bits).

    Takes a UUID, or the text a database driver returns for one (hex, with or without dashes).
    Written out here because python-ulid's round trip costs ~6 us an id, and a page shows hundreds.
    """
    n = value.int if isinstance(value, uuid.UUID) else int(value.replace("-", ""), 16)
    return "".join([_PAIRS[(n >> shift) & 1023] for shift in range(120, -1, -10)])


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
    visibility = CharField(default="private")  # public | private | password
    password_hash = CharField(null=True)  # bcrypt, for visibility "password"
    owner = ForeignKeyField(User, backref="owned_workspaces", on_delete="CASCADE")  # its creator (Sector's owner)
    created_at = DateTimeField(index=True)
    updated_at = DateTimeField()


class Membership(BaseModel):
    workspace = ForeignKeyField(Workspace, backref="memberships", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="memberships", on_delete="CASCADE", index=True)
    role = CharField(default="member")  # owner | admin | member | guest
    preferred_language = CharField(null=True)  # overrides the user's in this workspace
    created_at = DateTimeField()

    class Meta:
        indexes = ((("workspace", "user"), True),)


class Channel(BaseModel):
    """A channel of a workspace, or (kind "direct", no workspace) a direct conversation of two users."""

    id = UUIDField(primary_key=True)
    workspace = ForeignKeyField(Workspace, backref="channels", on_delete="CASCADE", null=True)
    name = CharField()
    slug = CharField(null=True)  # unique within its workspace
    description = TextField(default="")
    visibility = CharField(default="public")  # public | private | password
    password_hash = CharField(null=True)  # bcrypt, for visibility "password"
    kind = CharField(default="standard")  # standard | direct | temporary_room
    pair_key = CharField(null=True, unique=True)  # "<low user id>:<high user id>" of a direct conversation
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = DateTimeField()
    updated_at = DateTimeField()

    class Meta:
        indexes = ((("workspace", "created_at"), False), (("workspace", "slug"), True))


class ChannelMember(BaseModel):
    """Who may enter a private or password channel, and the two participants of a direct conversation;
    `last_read` is the newest message the member has read (direct conversations' unread counts)."""

    channel = ForeignKeyField(Channel, backref="members", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="channel_memberships", on_delete="CASCADE", index=True)
    last_read = UUIDField(null=True)
    created_at = DateTimeField()

    class Meta:
        indexes = ((("channel", "user"), True),)


class Message(BaseModel):
    id = UUIDField(primary_key=True)
    channel = ForeignKeyField(Channel, backref="messages", on_delete="CASCADE")
    author = ForeignKeyField(User, backref="messages", on_delete="CASCADE", index=True)
    parent = ForeignKeyField("self", null=True, backref="replies", on_delete="CASCADE")
    type = CharField(default="text")  # text | system
    author_kind = CharField(default="user")  # user | webhook | automation | guest
    body = TextField()
    language = CharField(null=True)  # detected by the translation worker
    # pending | completed | partial (some languages failed) | failed | skipped
    translation_status = CharField(default="pending")
    translation_error = TextField(null=True)  # what failed, for partial and failed
    version = IntegerField(default=1)  # bumped by each edit of the body; translations are of one version
    attachment_count = IntegerField(default=0)  # so a page of messages looks attachments up only when it has any
    reply_count = IntegerField(default=0)  # live replies in its thread
    pinned = BooleanField(default=False)
    # Bumped by every change (body, pin, deletion); names the message's realtime events (actors/realtime.py),
    # so pinning it again after an unpin is an event of its own.
    revision = IntegerField(default=1)
    pushed_at = DateTimeField(null=True)  # when its readers' push notifications were queued (actors/push.py)
    created_at = DateTimeField()
    edited_at = DateTimeField(null=True)
    deleted_at = DateTimeField(null=True)

    class Meta:
        # (channel, id): ids are time-ordered, so this pages a channel newest first without gaps.
        indexes = ((("channel", "created_at"), False), (("channel", "id"), False), (("parent", "id"), False))


# The translation sweep's look-up of messages left pending; few are, so the index stays small.
Message.add_index(Message.index(Message.created_at, name="message_pending")
                  .where(Message.translation_status == "pending"))


class Translation(BaseModel):
    """A message's body in one reader language, for one version of the body; `engine` made it."""

    id = AutoField()
    message = ForeignKeyField(Message, backref="translations", on_delete="CASCADE")
    language = CharField()
    version = IntegerField()
    body = TextField()
    engine = CharField()
    created_at = DateTimeField()

    class Meta:
        indexes = ((("message", "language", "version"), True),)


class File(BaseModel):
    """An uploaded file: staged (deleted at `expires_at`) until a message claims it (`claimed_at`).
    The bytes are in the store under `storage_key`; `client_name` is only data."""

    id = UUIDField(primary_key=True)
    uploader = ForeignKeyField(User, null=True, backref="files", on_delete="SET NULL", index=True)
    client_name = CharField()
    mime_type = CharField()
    size = BigIntegerField()
    sha256 = CharField()
    visibility = CharField()  # public | private
    meta = TextField(null=True)  # JSON object the uploader gave
    storage_key = CharField(unique=True)
    expires_at = DateTimeField(null=True)  # null once claimed
    claimed_at = DateTimeField(null=True)
    deleted_at = DateTimeField(null=True)
    created_at = DateTimeField()

    class Meta:
        indexes = ((("expires_at",), False),)


class Attachment(BaseModel):
    """A file attached to a message; a file is claimed by one message."""

    id = UUIDField(primary_key=True)
    message = ForeignKeyField(Message, backref="attachments", on_delete="CASCADE", index=True)
    file = ForeignKeyField(File, backref="attachment", on_delete="CASCADE", unique=True)
    position = IntegerField(default=0)
    created_at = DateTimeField()


class Invite(BaseModel):
    """A link that adds whoever accepts it to a workspace; only the SHA-256 of its token is kept."""

    id = UUIDField(primary_key=True)
    workspace = ForeignKeyField(Workspace, backref="invites", on_delete="CASCADE")
    token_hash = CharField(unique=True)
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    expires_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)
    created_at = DateTimeField()


class Webhook(BaseModel):
    """An incoming webhook: posts as its own bot user; only the SHA-256 of its secret is kept."""

    id = UUIDField(primary_key=True)
    workspace = ForeignKeyField(Workspace, backref="webhooks", on_delete="CASCADE")
    name = CharField()
    secret_hash = CharField()
    is_active = BooleanField(default=True)
    default_channel = ForeignKeyField(Channel, null=True, on_delete="SET NULL")
    bot_user = ForeignKeyField(User, on_delete="CASCADE")
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    created_at = DateTimeField()
    updated_at = DateTimeField()


class Device(BaseModel):
    """A device that gets push notifications for its user. The push token is its identity: only its keyed
    hash (for look-ups) and the token sealed under the deployment's key are kept."""

    id = UUIDField(primary_key=True)
    user = ForeignKeyField(User, backref="devices", on_delete="CASCADE")
    platform = CharField()  # ios | android | web
    provider = CharField()  # fcm | apns | expo
    token_hash = CharField(unique=True)
    token_sealed = TextField()
    device_id = CharField(null=True)  # the client's own stable identifier, if it gave one
    device_name = CharField(null=True)
    app_version = CharField(null=True)
    created_at = DateTimeField()
    last_used_at = DateTimeField()

    class Meta:
        indexes = ((("user", "last_used_at"), False),)


class PushDelivery(BaseModel):
    """One message's notification to one device, so it is sent once however often its actor runs.

    `queued` when the fan-out wrote it, `sending` once a batch claimed it (`claim`), then `sent` (`ref`:
    the gateway's id for it), `failed` (`error` says why) or back to `queued` for another try. Expo's
    tickets are checked for a receipt at `receipt_at`.
    """

    id = AutoField()
    message = ForeignKeyField(Message, backref="push_deliveries", on_delete="CASCADE")
    device = ForeignKeyField(Device, backref="deliveries", on_delete="CASCADE", index=True)
    language = CharField()  # the reader's, when the fan-out ran
    status = CharField(default="queued")
    claim = CharField(null=True)
    attempts = IntegerField(default=0)
    due_at = DateTimeField()  # queued: when it is to be sent; sending: when it was claimed
    ref = CharField(null=True)
    error = TextField(null=True)
    receipt_at = DateTimeField(null=True)
    created_at = DateTimeField()
    sent_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("message", "device"), True), (("claim",), False))


# The sweeps' look-ups: deliveries still to send or being sent, and Expo tickets whose receipt is due.
PushDelivery.add_index(PushDelivery.index(PushDelivery.due_at, name="pushdelivery_unsent")
                       .where(PushDelivery.status.in_(("queued", "sending"))))
PushDelivery.add_index(PushDelivery.index(PushDelivery.receipt_at, name="pushdelivery_receipt")
                       .where(PushDelivery.receipt_at.is_null(False)))


class Room(BaseModel):
    """An external temporary room: a workspace of its own with one channel (kind `temporary_room`), owned
    by the developer whose token made it, that guests join until `expires_at`.

    `active` until it expires, then `expired`; `purged_at` once its messages, files and guests are gone
    (its workspace too, so `workspace` and `channel` are null then). The row stays: the owner's monthly
    creations count it.
    """

    id = UUIDField(primary_key=True)
    owner = ForeignKeyField(User, backref="rooms", on_delete="CASCADE")
    workspace = ForeignKeyField(Workspace, null=True, on_delete="SET NULL", unique=True)
    channel = ForeignKeyField(Channel, null=True, on_delete="SET NULL")
    name = CharField()
    external_reference = CharField(null=True)
    status = CharField(default="active")  # active | expired
    expires_at = DateTimeField()
    max_expires_at = DateTimeField()  # no extension goes past it
    extension_count = IntegerField(default=0)
    created_at = DateTimeField()
    expired_at = DateTimeField(null=True)
    purged_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("owner", "created_at"), False),)


# The sweeps' look-ups: active rooms by when they expire, expired ones not purged yet.
Room.add_index(Room.index(Room.expires_at, name="room_active").where(Room.status == "active"))
Room.add_index(Room.index(Room.expired_at, name="room_unpurged")
               .where((Room.status == "expired") & Room.purged_at.is_null()))


class RoomLimit(BaseModel):
    """An owner's own room limits, set by an operator (`app.py rooms limits`); null: the config's default."""

    user = ForeignKeyField(User, primary_key=True, on_delete="CASCADE")
    active_limit = IntegerField(null=True)
    monthly_creation_limit = IntegerField(null=True)
    max_ttl_hours = IntegerField(null=True)
    extension_hours = IntegerField(null=True)
    max_lifetime_hours = IntegerField(null=True)
    updated_at = DateTimeField()


class Guest(BaseModel):
    """A guest of a room: a restricted user (the author of its messages, a member of the room's workspace
    with the role `guest`) and its one session token, of which only the SHA-256 is kept."""

    id = UUIDField(primary_key=True)
    room = ForeignKeyField(Room, backref="guests", on_delete="CASCADE", index=True)
    user = ForeignKeyField(User, on_delete="CASCADE", unique=True)
    token_hash = CharField(unique=True)
    expires_at = DateTimeField()  # the room's, kept in step by extensions
    revoked_at = DateTimeField(null=True)
    created_at = DateTimeField()


class Outbox(BaseModel):
    """Follow-ups of committed commands, written in the same transaction; sent, then deleted."""

    id = AutoField()
    kind = CharField()
    arguments = TextField()  # JSON: a list of the arguments of each follow-up of this kind one commit asked for
    created_at = DateTimeField(index=True)
    request_id = TextField(null=True)  # the requests whose commands asked for them (telemetry.joined), for logs


class AppliedCommand(BaseModel):
    """Ids of write commands already committed, so a redelivered message changes nothing."""

    id = CharField(primary_key=True)
    applied_at = DateTimeField(index=True)


class Operator(BaseModel):
    """A user who may use the operations dashboard and its API (`python app.py operators grant`)."""

    user = ForeignKeyField(User, primary_key=True, on_delete="CASCADE")
    granted_at = DateTimeField()


class OpsAudit(BaseModel):
    """An operator's action on the queues (retry, delete, purge, pause, resume, run now): who, what, when.
    The email is kept as it was, so the row still says who when the user is gone."""

    id = AutoField()
    user = ForeignKeyField(User, null=True, on_delete="SET NULL")
    email = CharField()
    action = CharField()
    target = CharField()  # a queue, or <queue>/<message id>
    detail = TextField(default="")
    at = DateTimeField(index=True)


#: A value no caller passes, for each kind of parameter a Prepared query takes.
_STAND_IN = {uuid.UUID: uuid.uuid4, int: lambda: -(uuid.uuid4().int >> 80),
             str: lambda: f"stand-in-{uuid.uuid4().hex}"}


class Prepared:
    """A SELECT that peewee builds once per process; each call only binds fresh values.

    Building a query's SQL costs peewee ~0.4-1 ms here, against ~15 us for SQLite to run it, so
    the reads every request makes (token, membership) are prepared. `build` receives one stand-in
    per keyword of `kinds` (uuid.UUID, int or str) and returns the query; calls pass the real values.
    """

    def __init__(self, build, **kinds):
        self.build = build
        self.kinds = kinds
        self._compiled = None

    def _compile(self):
        stand_ins = {name: _STAND_IN[kind]() for name, kind in self.kinds.items()}
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

    def _bind(self, values: dict) -> tuple:
        if self._compiled is None or self._compiled[0] is not db.obj:
            self._compile()
        _, query, sql, params, slots = self._compiled
        bound = [
            (values[name].hex if isinstance(values[name], uuid.UUID) else values[name]) if name else param
            for param, name in zip(params, slots, strict=True)
        ]
        if is_postgres():
            self._prepare_on_this_connection()
        return query, sql, bound

    def raw(self, **values) -> list[tuple]:
        """The rows as the driver returns them, unconverted: for hot reads that format columns themselves
        (a page of messages; peewee's conversions were most of its cost)."""
        _, sql, bound = self._bind(values)
        return db.execute_sql(sql, bound).fetchall()

    def __call__(self, **values) -> list:
        query, sql, bound = self._bind(values)
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


TABLES = [User, Token, SocialAccount, Workspace, Membership, Channel, ChannelMember, Message, Translation, File,
          Attachment, Invite, Webhook, Device, PushDelivery, Room, RoomLimit, Guest, AppliedCommand, Outbox,
          Operator, OpsAudit]


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
    """Create missing tables, columns and indexes; safe to run from several processes at once."""
    # On SQLite the write lock is taken at BEGIN, so a second process waits out busy_timeout instead
    # of failing at once when the first commits between its reads and its writes.
    with db.atomic() if is_postgres() else db.atomic("IMMEDIATE"):
        if is_postgres():
            # Serialize concurrent starters: CREATE TABLE IF NOT EXISTS races on PostgreSQL.
            db.execute_sql("SELECT pg_advisory_xact_lock(727001)")
        for model in TABLES:
            model._schema.create_table(safe=True)
        _add_missing_columns()
        for model in TABLES:  # after the columns: a new index may be on a new column
            model._schema.create_indexes(safe=True)
        # Channels of a workspace were kind "channel" before direct conversations came.
        Channel.update(kind="standard").where(Channel.kind == "channel").execute()


def _add_missing_columns() -> None:
    """Add columns that models gained since a table was created, make columns that became optional
    nullable, and widen VARCHAR columns that became TEXT (PostgreSQL; SQLite does not enforce lengths).

    A new column that is not nullable must have a default: it is added nullable and filled with it
    (making it NOT NULL afterwards would mean rebuilding the table on SQLite).
    """
    from playhouse.migrate import migrate as run, PostgresqlMigrator, SqliteMigrator

    migrator = PostgresqlMigrator(db.obj) if is_postgres() else SqliteMigrator(db.obj)
    for model in TABLES:
        table = model._meta.table_name
        present = {column.name: column for column in db.get_columns(table)}
        for field in model._meta.sorted_fields:
            column = present.get(field.column_name)
            if column is not None and isinstance(field, TextField) and column.data_type == "character varying":
                db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "{field.column_name}" TYPE text')  # widened
            if column is not None and field.null and not column.null:
                _drop_not_null(table, field.column_name)
            if column is None:
                if not field.null and field.default is None:
                    raise RuntimeError(f"{table}.{field.column_name} is missing and has no default; migrate by hand")
                added = copy.copy(field)
                added.null = True
                run(migrator.add_column(table, field.column_name, added))
                if field.default is not None:
                    model.update({field: field.default}).where(field.is_null()).execute()


def _drop_not_null(table: str, column: str) -> None:
    if is_postgres():
        db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" DROP NOT NULL')
        return
    # SQLite cannot alter a column; its documented way to drop a NOT NULL (sqlite.org/lang_altertable.html,
    # "Making Other Kinds Of Table Schema Changes") edits the stored CREATE TABLE and bumps the schema
    # version. Rebuilding the table instead would cascade-delete every row that refers to it.
    (sql,) = db.execute_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    loosened = re.sub(rf'("{column}" \w+) NOT NULL', r"\1", sql, count=1)
    (version,) = db.execute_sql("PRAGMA schema_version").fetchone()
    db.execute_sql("PRAGMA writable_schema = ON")
    db.execute_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (loosened, table))
    db.execute_sql(f"PRAGMA schema_version = {version + 1}")
    db.execute_sql("PRAGMA writable_schema = OFF")
