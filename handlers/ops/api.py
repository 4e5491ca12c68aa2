"""The ops JSON API under /ops/api: what the dashboard shows and does, for the page and for scripts.

Callers: an operator's personal access token with the `ops` ability (or `*`), or the dashboard's web
session (changes then carry X-XSRF-TOKEN, as the RosettaChat web app's do). Anyone else gets 401 (no
or a bad credential) or 403 (not an operator, or a token without the ability). Errors are
`{"error": code, "message": text, "errors": {field: [text]}}`. Reads and actions on Redis run on a
thread (the broker's client is blocking), and every action writes an audit row.
"""

from __future__ import annotations

import time
import uuid
from functools import partial, wraps

import msgspec
from sanic import Blueprint

from actors import broker
from actors.queues import QUEUES, snapshot
from domain.errors import Forbidden, Invalid, NotFound
from domain.ops import operators, schedule, series, workers
from domain.ops.actions import Actions
from domain.ops.jobs import JobStore
from handlers.bodies import json, parse
from handlers.ops import schemas as s
from handlers.rosetta import sessions, throttle
from handlers.rosetta.accounts import check_password, in_thread, require_active, user_by_email
from handlers.rosetta.auth import CREDENTIALS_WRONG
from handlers.rosetta.guard import signed_in

PREFIX = "/ops/api"
ABILITY = "ops"
NOT_OPERATOR = "Only operators may use the operations API."

bp = Blueprint("ops_api", url_prefix=PREFIX)
_store = JobStore(broker, QUEUES)
_actions = Actions(_store)


def render(error) -> object:
    """The ops API's one error shape."""
    return json(s.Error(error.code, error.message, error.errors), status=error.status)


def operator(handler):
    """Require an operator: a token with the `ops` ability (or `*`), or a web session; then `request.ctx.user`."""

    @wraps(handler)
    async def checked(request, *args, **kwargs):
        if not operators.is_operator(request.ctx.user.id):
            raise Forbidden(NOT_OPERATOR)
        return await handler(request, *args, **kwargs)

    return signed_in(checked, ability=ABILITY)


def _query(request, schema):
    try:
        return msgspec.convert({name: values[0] for name, values in request.args.items()}, schema, strict=False)
    except msgspec.ValidationError as e:
        text = str(e)
        field = text.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in text else "query"
        raise Invalid(f"{field}: {text}", {field: [text]}) from None


def _confirmed(request) -> None:
    """The confirmation step: the body must be `{"confirm": true}` (422 otherwise, 400 without a JSON body)."""
    parse(request, s.Confirm)


def _message_id(value: str) -> str:
    """A Dramatiq message id (a UUID); anything else names no job."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound("There is no job with this id.") from None


async def _audited(request, action: str, target: str, work, detail: str = "") -> s.Done:
    """Run an action on a thread, then write its audit row."""
    count = await in_thread(work)
    await in_thread(operators.record, request.ctx.user, action, target, detail or f"{count} job(s)")
    return s.Done(action, target, count)


# Signing in on the dashboard (scripts use tokens instead).

@bp.post("/session")
async def sign_in(request):
    """Start a web session for an operator; the same password check and session as the web app's sign-in."""
    form = parse(request, s.SignIn)
    sessions.check_xsrf(request, None)
    config = request.app.ctx.settings.throttle
    limits = {f"email:{form.email}": config.login_email, f"ip:{throttle.client_ip(request)}": config.login_ip}
    await throttle.check(request, "login", limits)
    user = user_by_email(form.email)
    if not await check_password(request, form.password, user.password_hash if user else None):
        await throttle.hit(request, "login", limits)
        raise Invalid(CREDENTIALS_WRONG, {"email": [CREDENTIALS_WRONG]})
    require_active(user)
    if not operators.is_operator(user.id):
        raise Forbidden("This account is not an operator.")
    await throttle.clear(request, "login", f"email:{form.email}")
    response = json(s.Operator(user.id, user.email, user.name))
    await sessions.start(request, response, user.id)
    return response


@bp.delete("/session")
@operator
async def sign_out(request):
    response = json(s.Done("sign_out", request.ctx.user.email or "", 0))
    await sessions.end(request, response)
    return response


@bp.get("/me")
@operator
async def me(request):
    user = request.ctx.user
    return json(s.Operator(user.id, user.email, user.name))


# Reads.

def _overview() -> s.Overview:
    keys = _store.keys
    states = snapshot(broker.client, broker.namespace, QUEUES)
    hour = series.read(broker.client, keys, list(QUEUES))
    paused = _actions.paused()
    queues = []
    for state in states:
        queue_series = hour[state.name]
        processed, failed = series.per_minute(queue_series)
        queues.append(s.QueueView(state.name, state.depth, state.delayed, state.dead, state.oldest_age_s,
                                  state.name in paused, processed, failed, queue_series.p50_ms, queue_series.p95_ms,
                                  queue_series.minutes))
    return s.Overview(time.time(), queues, workers.read(broker.client, keys))


@bp.get("/overview")
@operator
async def overview(request):
    return json(await in_thread(_overview))


@bp.get("/workers")
@operator
async def list_workers(request):
    return json(s.Workers(await in_thread(workers.read, broker.client, _store.keys)))


@bp.get("/failed")
@operator
async def list_failed(request):
    query = _query(request, s.FailedQuery)
    names = [_actions.check_queue(query.queue)] if query.queue else list(QUEUES)

    def read():
        if query.state == "retrying":
            items = _store.retrying(query.queue, query.offset + query.limit)[query.offset:]
        else:
            merged = [f for name in names for f in _store.dead(name, query.offset + query.limit)]
            merged.sort(key=lambda f: -(f.last_failed_at or 0))
            items = merged[query.offset:query.offset + query.limit]
        return s.Failures(items, sum(broker.client.zcard(_store.keys.dead(name)) for name in names))

    return json(await in_thread(read))


@bp.get("/failed/<message_id:str>")
@operator
async def get_failed(request, message_id):
    failure = await in_thread(_store.failure, _message_id(message_id))
    if failure is None:
        raise NotFound("There is no failed job with this id.")
    return json(failure)


@bp.get("/queues/<queue:str>/delayed")
@operator
async def list_delayed(request, queue):
    query = _query(request, s.PageQuery)
    _actions.check_queue(queue)

    def read():
        jobs = _store.delayed(queue, query.offset + query.limit)[query.offset:]
        return s.Jobs(jobs, broker.client.hlen(_store.keys.delayed_messages(queue)))

    return json(await in_thread(read))


@bp.get("/search")
@operator
async def search(request):
    query = _query(request, s.SearchQuery)
    found = await in_thread(_store.search, query.q.strip() or query.q, query.limit)
    return json(s.Jobs(found, len(found)))


@bp.get("/schedule")
@operator
async def get_schedule(request):
    lock_key = f"{request.app.ctx.settings.redis.namespace}:scheduler:leader"

    def read():
        jobs = schedule.read(broker.client, _store.keys)
        return s.Schedule(schedule.leader(broker.client, lock_key, jobs), jobs)

    return json(await in_thread(read))


@bp.get("/audit")
@operator
async def audit(request):
    query = _query(request, s.PageQuery)
    items, total = operators.audit_log(query.limit, query.offset)
    return json(s.AuditLog(items, total))


# Actions: each audited; those that lose or re-run jobs need {"confirm": true}.

@bp.post("/failed/<message_id:str>/retry")
@operator
async def retry(request, message_id):
    _confirmed(request)
    return json(await _audited_job(request, "retry", _actions.retry, _message_id(message_id)))


@bp.post("/failed/<message_id:str>/delete")
@operator
async def delete(request, message_id):
    _confirmed(request)
    return json(await _audited_job(request, "delete", _actions.delete, _message_id(message_id)))


async def _audited_job(request, action: str, work, message_id: str) -> s.Done:
    """An action on one job: `work` does it and names the job's queue; then its audit row."""
    queue = await in_thread(work, message_id)
    target = f"{queue}/{message_id}"
    await in_thread(operators.record, request.ctx.user, action, target)
    return s.Done(action, target, 1)


@bp.post("/queues/<queue:str>/retry-all")
@operator
async def retry_all(request, queue):
    _confirmed(request)
    _actions.check_queue(queue)
    return json(await _audited(request, "retry_all", queue, lambda: _actions.retry_all(queue)))


@bp.post("/queues/<queue:str>/purge")
@operator
async def purge(request, queue):
    _confirmed(request)
    _actions.check_queue(queue)
    return json(await _audited(request, "purge", queue, lambda: _actions.purge(queue)))


@bp.post("/queues/<queue:str>/pause")
@operator
async def pause(request, queue):
    _actions.check_queue(queue)
    return json(await _audited(request, "pause", queue, lambda: _actions.pause(queue) or 0, "paused"))


@bp.post("/queues/<queue:str>/resume")
@operator
async def resume(request, queue):
    _actions.check_queue(queue)
    return json(await _audited(request, "resume", queue, lambda: _actions.resume(queue) or 0, "resumed"))


@bp.post("/queues/<queue:str>/delayed/<message_id:str>/run")
@operator
async def run_now(request, queue, message_id):
    _actions.check_queue(queue)
    return json(await _audited_job(request, "run_now", partial(_actions.run_now, queue), _message_id(message_id)))
