"""Settings: config.toml defaults, overridden by SECTOR_<SECTION>_<KEY> environment variables."""

from __future__ import annotations

import functools
import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

ROOT = Path(__file__).resolve().parent
DEFAULT_FILE = ROOT / "config.toml"


class Http(msgspec.Struct, frozen=True):
    host: str
    port: int
    workers: int
    max_body_bytes: int
    access_log: bool


class Database(msgspec.Struct, frozen=True):
    url: str


class Redis(msgspec.Struct, frozen=True):
    url: str
    namespace: str


class Paths(msgspec.Struct, frozen=True):
    data_dir: str


class Writes(msgspec.Struct, frozen=True):
    reply_timeout_ms: int
    batch_max: int
    idempotency_ttl_s: int
    applied_retention_h: int
    outbox_resend_s: int
    followup_window_ms: int


class Workers(msgspec.Struct, frozen=True):
    processes: int
    threads: int
    groups: str
    idle_timeout_ms: int
    heartbeat_timeout_ms: int
    maintenance_chance: int


class Auth(msgspec.Struct, frozen=True):
    challenge_ttl_s: int
    token_ttl_days: int
    bcrypt_rounds: int
    otp_ttl_s: int
    otp_max_attempts: int
    reset_ttl_s: int
    verify_ttl_s: int
    session_lifetime_s: int
    session_cookie: str
    secure_cookies: bool
    app_url: str
    frontend_url: str
    strict_email_domains: bool


class Throttle(msgspec.Struct, frozen=True):
    window_s: int
    login_email: int
    login_ip: int
    otp_email: int
    otp_ip: int
    otp_verify_email: int
    otp_verify_ip: int
    forgot_email: int
    forgot_ip: int
    verification_user: int
    resolve_user: int
    resolve_ip: int
    webhook: int


class OAuthProvider(msgspec.Struct, frozen=True):
    """An OAuth2 / OpenID Connect provider, known by its endpoints; enabled when client_id is set."""

    client_id: str = ""
    client_secret: str = ""
    authorize_url: str = ""
    token_url: str = ""
    userinfo_url: str = ""
    # GitHub-like providers keep addresses apart: a list of {email, primary, verified}.
    emails_url: str = ""
    scopes: str = ""
    # Where the provider sends the browser back with ?code=&state= (the client's page).
    redirect_uri: str = ""
    # Fields of the userinfo answer.
    id_field: str = "sub"
    email_field: str = "email"
    email_verified_field: str = "email_verified"
    name_field: str = "name"
    avatar_field: str = "picture"

    @property
    def enabled(self) -> bool:
        return bool(self.client_id and self.authorize_url and self.token_url and self.userinfo_url)


class Limits(msgspec.Struct, frozen=True):
    name_chars: int
    description_chars: int
    message_chars: int
    content_chars: int
    profile_pic_chars: int
    search_default: int
    search_max: int


class Scheduler(msgspec.Struct, frozen=True):
    lock_ttl_s: int
    sweep_interval_s: int


class Security(msgspec.Struct, frozen=True):
    secret_key: str


class Mail(msgspec.Struct, frozen=True):
    transport: Literal["maildir", "smtp"]
    from_address: str
    smtp_host: str
    smtp_port: int
    smtp_security: Literal["starttls", "tls", "none"]
    smtp_username: str
    smtp_password: str
    smtp_ca_file: str
    smtp_timeout_s: int


class Translation(msgspec.Struct, frozen=True):
    provider: Literal["none", "libretranslate", "deepl", "openai"]
    libretranslate_url: str
    libretranslate_api_key: str
    deepl_url: str
    deepl_key: str
    openai_url: str
    openai_model: str
    openai_key: str
    detect: Literal["local", "engine"]
    detect_languages: str
    concurrency: int
    rate_per_s: float
    timeout_s: float
    max_retries: int
    max_chars: int
    cache_ttl_s: int
    stuck_after_s: int


class Files(msgspec.Struct, frozen=True):
    storage: Literal["local", "s3"]
    local_dir: str
    max_bytes: int
    staged_ttl_s: int
    default_visibility: Literal["public", "private"]
    s3_endpoint: str
    s3_region: str
    s3_bucket: str
    s3_access_key: str
    s3_secret_key: str


class Push(msgspec.Struct, frozen=True):
    fcm_url: str
    fcm_token_url: str
    fcm_service_account_file: str
    apns_url: str
    apns_key_file: str
    apns_key_id: str
    apns_team_id: str
    apns_topic: str
    apns_token_refresh_s: int
    expo_url: str
    expo_access_token: str
    expo_receipt_delay_s: int
    translation_wait_ms: int
    concurrency: int
    timeout_s: float
    batch_size: int
    max_retries: int
    stuck_after_s: int
    preview_chars: int
    max_devices_per_user: int


class Rooms(msgspec.Struct, frozen=True):
    public_base_url: str
    active_limit: int
    monthly_creation_limit: int
    max_ttl_hours: int
    extension_hours: int
    max_lifetime_hours: int
    default_ttl_hours: int
    purge_after_hours: int
    join_room: int
    join_ip: int
    hour_s: float


class Realtime(msgspec.Struct, frozen=True):
    ticket_ttl_s: int
    auth_timeout_s: float
    replay_max_events: int
    replay_window_s: int
    typing_min_interval_s: float
    typing_ttl_s: float
    sse_heartbeat_s: float
    heartbeat_s: float
    send_queue_max: int
    send_timeout_s: float
    max_frame_bytes: int
    max_connections_per_user: int
    client_frames_max: int
    client_frames_window_s: float
    socket_send_buffer_bytes: int


class Logging(msgspec.Struct, frozen=True):
    level: str
    format: Literal["text", "json"]


class Metrics(msgspec.Struct, frozen=True):
    dir: str
    port: int
    host: str


class Ops(msgspec.Struct, frozen=True):
    # How often one worker process samples every queue's depth, delayed, dead and latency into the
    # dashboard's series (actors/ops.py); a minute keeps its last sample.
    queue_sample_s: Annotated[float, msgspec.Meta(gt=0)]


class Settings(msgspec.Struct, frozen=True):
    http: Http
    database: Database
    redis: Redis
    paths: Paths
    writes: Writes
    workers: Workers
    auth: Auth
    limits: Limits
    throttle: Throttle
    oauth: dict[str, OAuthProvider]
    scheduler: Scheduler
    security: Security
    mail: Mail
    translation: Translation
    files: Files
    push: Push
    rooms: Rooms
    realtime: Realtime
    logging: Logging
    metrics: Metrics
    ops: Ops

    @property
    def data_dir(self) -> Path:
        """The data directory, relative paths taken from the project root."""
        return (ROOT / self.paths.data_dir).resolve()

    @property
    def metrics_dir(self) -> Path:
        """Where every process keeps its metrics (prometheus-client's multiprocess files), relative paths
        taken from the data dir."""
        return (self.data_dir / self.metrics.dir).resolve()

    @property
    def database_url(self) -> str:
        """The peewee database URL, with "embedded" resolved to SQLite under the data dir."""
        if self.database.url == "embedded":
            return f"sqlite:///{self.data_dir / 'sector.sqlite3'}"
        return self.database.url

    @property
    def embedded_redis_socket(self) -> Path:
        """Where the embedded redis-server listens."""
        return self.data_dir / "redis.sock"

    @property
    def redis_url(self) -> str:
        """The Redis URL, with "embedded" resolved to the embedded server's unix socket."""
        if self.redis.url == "embedded":
            return f"unix://{self.embedded_redis_socket}"
        return self.redis.url


class ConfigError(Exception):
    """The configuration file or an override is not valid."""


def load(path: Path | str = DEFAULT_FILE, environ: dict[str, str] | None = None) -> Settings:
    """Read config.toml and apply SECTOR_<SECTION>_<KEY> overrides from the environment."""
    environ = os.environ if environ is None else environ
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    _override(raw, "SECTOR", environ)
    try:
        # strict=False lets environment strings become ints and bools.
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(f"invalid configuration: {e}") from None


def _override(table: dict, prefix: str, environ) -> None:
    """Apply PREFIX_<KEY> variables to `table`, and PREFIX_<TABLE>_<KEY> to tables within it."""
    for key, value in table.items():
        name = f"{prefix}_{key}".upper()
        if isinstance(value, dict):
            _override(value, name, environ)
        elif (override := environ.get(name)) is not None:
            table[key] = override


@functools.cache
def settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load()
