"""Sector: create_app() and the command line (serve | worker | scheduler | dev | migrate | tokens | rooms |
operators)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time

import redis.asyncio as aioredis
from sanic import Sanic

import config
import models
import telemetry

logger = logging.getLogger("sector")


def create_app(settings: config.Settings | None = None) -> Sanic:
    """The HTTP app: both dialects' blueprints, the error handler, and the shared clients."""
    from handlers import errors, realtime, redis_client, rosetta, sector
    from handlers.ops import metrics
    from handlers.ops import api as ops_api, openapi as ops_openapi, page as ops_page
    from handlers.rosetta import errors as rosetta_errors
    from handlers.sector import errors as sector_errors
    from handlers.submit import Submitter

    settings = settings or config.settings()
    # Our logging.basicConfig handles every logger; Sanic adding its own handlers printed lines twice.
    app = Sanic("sector", configure_logging=False)
    app.config.REQUEST_MAX_SIZE = settings.http.max_body_bytes
    app.config.FALLBACK_ERROR_FORMAT = "json"
    # Sanic's access line has no message and the raw URL (tickets, signed links): handlers/ops/metrics.py
    # writes one line a request instead when [http] access_log is on.
    app.config.ACCESS_LOG = False
    app.ctx.settings = settings
    app.blueprint(sector.blueprints)
    for blueprint in rosetta.blueprints:
        app.blueprint(blueprint)
    app.blueprint([ops_api.bp, ops_openapi.bp, ops_page.bp])  # the operations dashboard and its API (docs/operations.md)
    errors.install(app, {sector.PREFIX: sector_errors.render, rosetta.PREFIX: rosetta_errors.render,
                         rosetta.SANCTUM_PREFIX: rosetta_errors.render, ops_api.PREFIX: ops_api.render},
                   default=sector_errors.render)
    metrics.install(app, settings)  # X-Request-Id, a metric sample and log line a request, GET /metrics

    @app.before_server_start
    async def connect(app):
        models.open_database(settings.database_url)
        app.ctx.redis = redis_client.client(settings.redis_url)
        # The reply listener blocks in BLPOP, so it gets a connection of its own.
        replies = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
        app.ctx.submitter = Submitter(replies, namespace=settings.redis.namespace,
                                      reply_timeout_ms=settings.writes.reply_timeout_ms,
                                      batch_max=settings.writes.batch_max)
        await app.ctx.submitter.start()

    @app.after_server_stop
    async def disconnect(app):
        await app.ctx.submitter.stop()
        await app.ctx.submitter.client.aclose()
        await app.ctx.redis.aclose()
        if not models.db.is_closed():
            models.db.close()

    realtime.install(app, settings)
    return app


def _setup_logging(settings: config.Settings) -> None:
    # Dramatiq's worker processes are forks of this one and keep this handler (their basicConfig does nothing).
    handler = logging.StreamHandler()
    handler.setFormatter(telemetry.JsonFormatter() if settings.logging.format == "json" else
                         logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=settings.logging.level, handlers=[handler])
    # APScheduler logs every run of every job at INFO; the sweeps log what they did themselves.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # A line for every request the push and translation workers make, at thousands a second.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _require_redis(settings: config.Settings) -> None:
    import embedded

    if settings.redis.url == "embedded" and not embedded.is_running(settings.embedded_redis_socket):
        sys.exit(f"The embedded Redis is not running on {settings.embedded_redis_socket}. "
                 "Start everything with `python app.py dev`, or set SECTOR_REDIS_URL.")


def migrate(settings: config.Settings) -> None:
    if settings.database.url == "embedded":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    models.open_database(settings.database_url)
    models.migrate()
    models.db.close()


def _served_app(settings: config.Settings) -> Sanic:
    """The app of one Sanic process: its workers are spawned, fresh interpreters, so logging is set up here."""
    _setup_logging(settings)
    return create_app(settings)


def serve(settings: config.Settings) -> None:
    """Run the Sanic server with [http] workers processes."""
    from functools import partial

    from sanic.worker.loader import AppLoader

    _require_redis(settings)
    migrate(settings)
    loader = AppLoader(factory=partial(_served_app, settings))
    app = loader.load()
    app.prepare(host=settings.http.host, port=settings.http.port, workers=settings.http.workers,
                access_log=False, motd=False)  # see create_app
    Sanic.serve(primary=app, app_loader=loader)


def worker(settings: config.Settings, queues: list[str] | None) -> None:
    """Run Dramatiq worker processes for the given queues; by default one group of processes for each
    of `[workers] groups`, so that calls to slow outside services (translation engines, push gateways)
    never hold the threads the write path needs."""
    import dramatiq.cli

    _require_redis(settings)
    migrate(settings)
    groups = [group.split(",") for group in settings.workers.groups.split(";") if group.strip()]
    if not queues and len(groups) > 1:
        sys.exit(_supervise([subprocess.Popen([sys.executable, str(config.ROOT / "app.py"), "worker", "-Q",
                                               *[queue.strip() for queue in group]]) for group in groups]))
    # Read by dramatiq.worker at import: the longest an idle consumer waits before polling again.
    os.environ["dramatiq_worker_timeout"] = str(settings.workers.idle_timeout_ms)
    args = ["actors", "--processes", str(settings.workers.processes), "--threads", str(settings.workers.threads),
            "--path", str(config.ROOT)]
    if queues:
        args += ["--queues", *queues]
    sys.exit(dramatiq.cli.main(dramatiq.cli.make_argument_parser().parse_args(args)))


def scheduler(settings: config.Settings) -> None:
    from scheduler import jobs

    _require_redis(settings)
    jobs.run(settings)


def dev(settings: config.Settings) -> None:
    """Everything on one machine: embedded Redis (unless [redis] url says otherwise), SQLite by
    default, one worker process for each group of queues, the scheduler and one HTTP worker."""
    import embedded

    redis_server = embedded.start_redis(settings) if settings.redis.url == "embedded" else None
    migrate(settings)
    env = {**os.environ, "SECTOR_HTTP_WORKERS": "1", "SECTOR_WORKERS_PROCESSES": "1"}
    children = [
        subprocess.Popen([sys.executable, str(config.ROOT / "app.py"), role], env=env)
        for role in ("worker", "scheduler", "serve")
    ]
    logger.info("Sector is up on http://%s:%d (data in %s). Ctrl-C stops it.",
                settings.http.host, settings.http.port, settings.data_dir)
    status = _supervise(children)
    if redis_server is not None:
        embedded.stop_redis(redis_server)
    sys.exit(1 if status else 0)


def _supervise(children: list[subprocess.Popen]) -> int:
    """Run until SIGINT/SIGTERM or until a child exits, then stop the others; the exited child's status."""
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    while not stopping:
        exited = next((child for child in children if child.poll() is not None), None)
        if exited is not None:
            logger.error("A Sector process exited with status %d; stopping the rest.", exited.returncode)
            status = exited.returncode if exited.returncode > 0 else 1
            break
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    for child in children:
        telemetry.process_exited(child.pid)
    return status


def tokens(settings: config.Settings, args) -> None:
    """Personal access tokens of a user, for operators: create (the token is printed once), list, revoke."""
    import json

    import actors  # noqa: F401  (configures the broker)
    from actors.writes import commit_and_wait
    from domain import commands as c
    from domain import tokens as token_ids
    from handlers.rosetta.me import ABILITIES
    from ulid import ULID

    _require_redis(settings)
    models.open_database(settings.database_url)
    if args.action == "revoke":
        try:
            token_id = ULID.from_str(args.token_id.upper()).to_uuid()
        except ValueError:
            sys.exit(f"{args.token_id!r} is not a token id (the part before the | of a token).")
        if models.Token.get_or_none(models.Token.id == token_id) is None:
            sys.exit("No such token.")
        commit_and_wait([c.RevokeToken(command_id=c.new_command_id(), token_id=token_id, at=models.utcnow())])
        print("Revoked.")
        return
    user = models.User.get_or_none(models.User.email_key == args.email.casefold())
    if user is None:
        sys.exit(f"No user has the email {args.email}.")
    if args.action == "list":
        for token in user.tokens.where(models.Token.revoked_at.is_null()).order_by(models.Token.created_at):
            print(str(ULID.from_uuid(token.id)).lower(), token.name, ",".join(json.loads(token.abilities)),
                  f"expires={token.expires_at or 'never'}", f"last_used={token.last_used_at or 'never'}", sep="\t")
        return
    unknown = set(args.ability) - set(ABILITIES)
    if unknown:
        sys.exit(f"Unknown abilities {sorted(unknown)}; choose from {', '.join(ABILITIES)}.")
    token_id, token, secret_hash = token_ids.mint()
    outcome = commit_and_wait([c.IssueToken(
        command_id=c.new_command_id(), token_id=token_id, user_id=user.id, name=args.name, secret_hash=secret_hash,
        abilities=args.ability or ["*"], expires_at=token_ids.expiry(args.expires_days), at=models.utcnow())])
    if any(isinstance(result, dict) for result in outcome.values()):
        sys.exit(f"Refused: {outcome}")
    print(token)


# `rooms limits` options: (flag, the limit it sets).
_ROOM_LIMIT_FLAGS = (("--active", "active_limit"), ("--monthly", "monthly_creation_limit"),
                     ("--max-ttl-hours", "max_ttl_hours"), ("--extension-hours", "extension_hours"),
                     ("--max-lifetime-hours", "max_lifetime_hours"))


def rooms(settings: config.Settings, args) -> None:
    """An owner's temporary-room limits, for operators: set some (the rest stay), reset them, or show them."""
    import actors  # noqa: F401  (configures the broker)
    from actors.writes import commit_and_wait
    from domain import rooms as room_rules

    _require_redis(settings)
    models.open_database(settings.database_url)
    user = models.User.get_or_none(models.User.email_key == args.email.casefold())
    if user is None:
        sys.exit(f"No user has the email {args.email}.")
    wanted = {name: getattr(args, name) for _, name in _ROOM_LIMIT_FLAGS if getattr(args, name) is not None}
    if any(not 0 <= value <= 1_000_000 for value in wanted.values()):
        sys.exit("Limits are whole numbers from 0 to 1000000.")
    if wanted or args.reset:
        outcome = commit_and_wait([room_rules.SetRoomLimits(
            command_id=models.new_id().hex, user_id=user.id, at=models.utcnow(), **wanted,
            clear=[name for name in room_rules.LIMIT_FIELDS if name not in wanted] if args.reset else [])])
        if any(isinstance(result, dict) for result in outcome.values()):
            sys.exit(f"Refused: {outcome}")
    own = models.RoomLimit.get_or_none(models.RoomLimit.user == user.id)
    limits = room_rules.limits_of(user.id)
    for name in room_rules.LIMIT_FIELDS:
        source = "own" if own is not None and getattr(own, name) is not None else "default"
        print(name, getattr(limits, name), source, sep="\t")


def _clear_metrics(command: str) -> None:
    """The commands that start the others drop the metrics files that earlier runs' processes left."""
    if command in ("dev", "serve", "worker"):
        telemetry.clear_dead_processes()


def operators(settings: config.Settings, args) -> None:
    """Who may use the operations dashboard and its API (/ops/): grant, revoke, list; and `token`, a personal
    access token with the `ops` ability for an operator's scripts (printed once)."""
    from domain.ops import operators as ops

    models.open_database(settings.database_url)
    if args.action == "list":
        for user, operator in ops.listed():
            print(user.email or "-", user.name or "-", f"granted={operator.granted_at.isoformat()}Z", sep="\t")
        return
    user = models.User.get_or_none(models.User.email_key == args.email.casefold())
    if user is None:
        sys.exit(f"No user has the email {args.email}.")
    if args.action == "grant":
        print("Granted." if ops.grant(user) else f"{args.email} is an operator already.")
    elif args.action == "revoke":
        print("Revoked." if ops.revoke(user) else f"{args.email} is not an operator.")
    else:
        if not ops.is_operator(user.id):
            sys.exit(f"{args.email} is not an operator; grant them first.")
        import actors  # noqa: F401  (configures the broker)
        from actors.writes import commit_and_wait
        from domain import commands as c
        from domain import tokens as token_ids

        _require_redis(settings)
        token_id, token, secret_hash = token_ids.mint()
        outcome = commit_and_wait([c.IssueToken(
            command_id=c.new_command_id(), token_id=token_id, user_id=user.id, name=args.name,
            secret_hash=secret_hash, abilities=["ops"], expires_at=token_ids.expiry(args.expires_days),
            at=models.utcnow())])
        if any(isinstance(result, dict) for result in outcome.values()):
            sys.exit(f"Refused: {outcome}")
        print(token)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="app.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP server")
    work = commands.add_parser("worker", help="run Dramatiq workers")
    work.add_argument("-Q", "--queues", nargs="*", help="queues to consume (default: all)")
    commands.add_parser("scheduler", help="run the periodic job scheduler")
    commands.add_parser("dev", help="run everything on one machine with embedded Redis and SQLite")
    commands.add_parser("migrate", help="create or update the database schema")
    token = commands.add_parser("tokens", help="create, list or revoke a user's personal access tokens")
    token_actions = token.add_subparsers(dest="action", required=True)
    create = token_actions.add_parser("create", help="mint a token; it is printed once")
    create.add_argument("--email", required=True, help="the user's email")
    create.add_argument("--name", required=True, help="what the token is for")
    create.add_argument("--ability", action="append", default=[],
                        help="an ability, repeatable (default: *, everything the user can do)")
    create.add_argument("--expires-days", type=int, default=0, help="days until it expires (default: never)")
    token_actions.add_parser("list", help="a user's live tokens").add_argument("--email", required=True)
    token_actions.add_parser("revoke", help="revoke a token by id").add_argument("token_id")
    room = commands.add_parser("rooms", help="an owner's external temporary room limits")
    limits = room.add_subparsers(dest="action", required=True).add_parser(
        "limits", help="set an owner's limits (those not given stay), reset them to the defaults, or --show them")
    limits.add_argument("--email", required=True, help="the owner's email")
    for flag, name in _ROOM_LIMIT_FLAGS:
        limits.add_argument(flag, dest=name, type=int, metavar="N", help=f"the owner's {name.replace('_', ' ')}")
    limits.add_argument("--reset", action="store_true", help="back to the deployment's [rooms] defaults, but for "
                                                              "the limits given")
    limits.add_argument("--show", action="store_true", help="only show them (what every call prints last); "
                                                             "with a limit or --reset it is a usage error")
    operator = commands.add_parser("operators", help="who may use the operations dashboard (/ops/) and its API")
    operator_actions = operator.add_subparsers(dest="action", required=True)
    for action, text in (("grant", "make a user an operator"), ("revoke", "take the operator mark away")):
        operator_actions.add_parser(action, help=text).add_argument("--email", required=True, help="the user's email")
    operator_actions.add_parser("list", help="every operator")
    ops_token = operator_actions.add_parser("token", help="mint a token with the `ops` ability; it is printed once")
    ops_token.add_argument("--email", required=True, help="the operator's email")
    ops_token.add_argument("--name", default="ops", help="what the token is for")
    ops_token.add_argument("--expires-days", type=int, default=0, help="days until it expires (default: never)")
    args = parser.parse_args(argv)
    if args.command == "rooms" and args.show and (args.reset or any(getattr(args, name) is not None
                                                                    for _, name in _ROOM_LIMIT_FLAGS)):
        limits.error("--show only shows the limits: give it no limit and no --reset")  # exits 2, writes nothing

    settings = config.settings()
    _setup_logging(settings)
    _clear_metrics(args.command)
    if args.command == "worker":
        worker(settings, args.queues)
    elif args.command == "tokens":
        tokens(settings, args)
    elif args.command == "rooms":
        rooms(settings, args)
    elif args.command == "operators":
        operators(settings, args)
    else:
        {"serve": serve, "scheduler": scheduler, "dev": dev, "migrate": migrate}[args.command](settings)


if __name__ == "__main__":
    main()
