"""The `push` queue: a notification of each new message on every device of its other readers.

1. `fan_out` gets the ids of messages that were posted (the outbox's `message_posted` follow-up) and
   of messages whose translation just finished (actors/translation.py sends those on). A message still
   waiting for its translation waits up to `[push] translation_wait_ms` after it was posted, then goes
   out in the original. Once per message (`Message.pushed_at`, set in the transaction that writes its
   deliveries) it writes a `queued` PushDelivery for each device of each recipient
   (domain/notifications.py) and hands them to `send_batch` by gateway in batches of at most `[push]
   batch_size` (and of BATCH_WAVES waves of a worker's concurrency), in random order, so a big
   channel's devices spread over every push worker and every worker keeps every gateway busy.
2. `send_batch` claims its deliveries (queued → sending, one conditional UPDATE: a batch sent twice, or
   retried by Dramatiq, sends to each device once), builds each reader's notification in their language
   and sends them through the gateway's client (providers/push/) on the worker process's event loop
   (Dramatiq's AsyncIO middleware), where every batch of the process shares one HTTP/2 connection and
   `[push] concurrency` requests in flight. Then it records what became of each: `sent`; gone (an
   unregistered or invalid token: the device is deleted); to retry (timeouts, 5xx, 429: queued again
   and sent later with backoff, or after the gateway's Retry-After, which holds back every worker's
   batches for that gateway); `failed`.
3. `check_receipts` (scheduler) asks Expo for the receipts of its tickets `[push] expo_receipt_delay_s`
   after sending, 1000 a call until none is due; a DeviceNotRegistered there deletes the device too.
4. `resend_stuck_pushes` (scheduler) sends queued deliveries whose batch message was lost; a delivery
   left `sending` by a worker that died mid-send is marked failed and never sent again, since the
   gateway may have taken it: nothing is shown twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
import uuid
from itertools import groupby

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

import providers.push as gateways
from actors.database import one_writer, read_then_write
from config import settings
from domain import notifications
from domain.devices import token_of
from models import Channel, Device, Message, PushDelivery, db, utcnow
from providers.push import Notification, Outcome, Push, Sender

logger = logging.getLogger(__name__)

#: A message older than this is not pushed any more (an outage's backlog, a resend of an old edit).
STALE_AFTER = dt.timedelta(days=1)
#: Longest backoff between two tries of a delivery.
BACKOFF_MAX_S = 60.0
#: Receipts not ready yet are asked for again this much later, until Expo's day of keeping them is over.
RECEIPT_RECHECK = dt.timedelta(seconds=60)
RECEIPTS_KEPT = dt.timedelta(days=1)
#: Expo's receipts call takes this many ids at most: a chunk of check_receipts.
RECEIPTS_MAX = 1000
#: check_receipts's time limit, and how long it asks for chunk after chunk before it leaves the rest to
#: its next run (a minute later): a minute short of the limit, for the chunk under way.
RECEIPTS_TIME_LIMIT_MS = 300_000
RECEIPTS_BUDGET_S = 240
#: A batch holds at most this many waves of one worker process's requests to its gateway ([push]
#: concurrency of them, each of `per_request` pushes). A worker process takes (prefetches) several
#: batches at once and works them off through its own concurrency: with batches of 16 waves a channel
#: of 10,000 devices left one of two processes idle for the last 11 s while the other finished its
#: share (bench/push_fanout.py); with 2 they end within a second of each other.
BATCH_WAVES = 2

_POLICY = {"queue_name": "push", "max_retries": 5, "min_backoff": 1000, "max_backoff": 60_000, "time_limit": 300_000}


@dramatiq.actor(**_POLICY)
def fan_out(message_ids: list[str]) -> None:
    """Queue the notifications of these messages (those not pushed yet) to their readers' devices."""
    config = settings().push
    on = {name for name, reason in gateways.disabled(config).items() if reason is None}
    if not on:
        return  # every gateway is off (GET /v1/api/health/details says why): nothing to deliver, nothing to record
    now = utcnow()
    rows = list(Message.select(Message.id, Message.author, Message.type, Message.created_at,
                               Message.translation_status, Channel.id, Channel.kind, Channel.workspace,
                               Channel.visibility)
                .join(Channel).where(Message.id.in_([uuid.UUID(m) for m in message_ids]) & Message.pushed_at.is_null()
                                     & Message.deleted_at.is_null()))
    wait = dt.timedelta(milliseconds=config.translation_wait_ms)
    waiting = [row for row in rows if row.translation_status == "pending" and row.created_at + wait > now]
    if waiting:
        # translate_messages sends them back the moment they are done; this is the deadline.
        delay = min(row.created_at + wait for row in waiting) - now
        fan_out.send_with_options(args=([str(row.id) for row in waiting],),
                                  delay=max(50, int(delay.total_seconds() * 1000)))
    ready = [row for row in rows if row not in waiting and row.type != "system" and row.created_at > now - STALE_AFTER]
    if ready:
        _queue(ready, on, now)


def _queue(rows: list, on: set[str], now: dt.datetime) -> None:
    """Write the deliveries of these messages to devices of the gateways `on`, and send them to `send_batch`."""
    readers: dict[uuid.UUID, list[notifications.Recipient]] = {}
    planned, passed_over = [], 0
    for row in rows:
        if row.channel.id not in readers:
            readers[row.channel.id] = notifications.recipients(row.channel)
        for reader in readers[row.channel.id]:
            if reader.user_id == row.author_id:
                continue
            if reader.provider in on:
                planned.append((row.id, reader))
            else:
                passed_over += 1
    providers = {reader.device_id: reader.provider for _, reader in planned}
    written = []
    with read_then_write():
        claimed = [m for (m,) in Message.update(pushed_at=now).where(
            Message.id.in_([row.id for row in rows]) & Message.pushed_at.is_null()).returning(Message.id).tuples()]
        claimed = {uuid.UUID(str(m)) for m in claimed}  # another fan-out may have taken some meanwhile
        values = [{"message": message_id, "device": reader.device_id, "language": reader.language, "status": "queued",
                   "due_at": now, "created_at": now} for message_id, reader in planned if message_id in claimed]
        for start in range(0, len(values), 500):
            written += PushDelivery.insert_many(values[start:start + 500]).on_conflict_ignore().returning(
                PushDelivery.id, PushDelivery.device).tuples().execute()
    if passed_over:
        logger.info("%d devices passed over: their gateway is off (GET /v1/api/health/details says why).", passed_over)
    _send([(delivery_id, providers[uuid.UUID(str(device_id))]) for delivery_id, device_id in written])
    if written:
        logger.info("Queued %d notifications of %d messages.", len(written), len(claimed))


def _send(deliveries: list[tuple[int, str]], delay_ms: int | None = None) -> None:
    """Send (delivery id, provider) pairs to `send_batch`, a message per gateway and batch of at most
    `[push] batch_size` (and BATCH_WAVES), the gateways' batches in random order. Each worker process
    then holds some of every gateway and keeps all its gateways' connections busy. Not in turns: once
    Expo's batches were through, FCM's and APNs's alternated, and two worker processes fetching one
    message per ack in turn locked on to one gateway each, every thread of each waiting on 16 of its
    connection's 32 streams (0.54 of the ideal in bench/push_fanout.py)."""
    config = settings().push
    per_request = {name: kind.per_request for name, kind in gateways.kinds().items()}
    batches = []
    for provider, group in groupby(sorted(deliveries, key=lambda d: (d[1], d[0])), key=lambda d: d[1]):
        ids = [delivery_id for delivery_id, _ in group]
        size = min(config.batch_size, BATCH_WAVES * config.concurrency * per_request.get(provider, 1))
        batches += [(provider, ids[start:start + size]) for start in range(0, len(ids), size)]
    random.shuffle(batches)
    for provider, ids in batches:
        send_batch.send_with_options(args=(provider, ids), delay=delay_ms)


_built: dict[object, dict[str, Sender]] = {}
_building = threading.Lock()
#: Batches of each gateway this process is sending (see _take_turn).
_turns: dict[str, int] = {}
_turns_lock = threading.Lock()
#: A batch a process has no turn for goes back to the queue for this long (ms, from, to).
TURN_WAIT_MS = (100, 200)


def _senders() -> dict[str, Sender]:
    """This process's gateway clients, built once on its event loop (they keep their connections open)."""
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        raise RuntimeError("the push actors need Dramatiq's AsyncIO middleware (actors/__init__.py adds it)")
    with _building:
        if loop_thread not in _built:
            _built[loop_thread] = loop_thread.run_coroutine(_build())
        return _built[loop_thread]


async def _build() -> dict[str, Sender]:
    return gateways.build(settings().push)


def _pause_key(provider: str) -> str:
    return f"{settings().redis.namespace}:push:{provider}:paused"


@dramatiq.actor(**_POLICY)
def send_batch(provider: str, delivery_ids: list[int]) -> None:
    """Send these deliveries' notifications through `provider`, each once, and record what became of them."""
    client = dramatiq.get_broker().client
    paused_ms = client.pttl(_pause_key(provider))
    if paused_ms > 0:  # the gateway asked every sender to wait
        send_batch.send_with_options(args=(provider, delivery_ids), delay=paused_ms + random.randint(0, 250))
        return
    if not _take_turn(provider):  # this process has its share of that gateway's batches: another may take it
        send_batch.send_with_options(args=(provider, delivery_ids), delay=random.randint(*TURN_WAIT_MS))
        return
    try:
        _send_batch(provider, delivery_ids)
    finally:
        with _turns_lock:
            _turns[provider] -= 1


def _take_turn(provider: str) -> bool:
    """Whether a thread of this process may send a batch of `provider` now: not when that would leave
    fewer threads than the other gateways on. A batch holds its thread until its gateway answered it
    all, and batches of one gateway queue for its `concurrency` streams, so the threads of a process
    drift on to one gateway and leave the others' streams idle (bench/push_fanout.py saw a worker's
    APNs streams in flight drop from 16 to 3 for a second, a few times a run). A share of the threads
    each (3 of 8) sent most batches back and forth: 2.9 ms of worker CPU a notification instead of 0.8."""
    share = max(1, settings().workers.threads - (len(_senders()) - 1))
    with _turns_lock:
        if _turns.get(provider, 0) >= share:
            return False
        _turns[provider] = _turns.get(provider, 0) + 1
        return True


def _send_batch(provider: str, delivery_ids: list[int]) -> None:
    sender = _senders().get(provider)
    claim, now = uuid.uuid4().hex, utcnow()
    with one_writer(), db.atomic():
        PushDelivery.update(status="sending", claim=claim, attempts=PushDelivery.attempts + 1, due_at=now).where(
            PushDelivery.id.in_(delivery_ids) & (PushDelivery.status == "queued")).execute()
    rows = list(PushDelivery.select(PushDelivery.id, PushDelivery.message, PushDelivery.language,
                                    PushDelivery.attempts, Device.id, Device.token_sealed)
                .join(Device).where(PushDelivery.claim == claim).tuples())
    if not rows:
        return
    if sender is None:
        _record(provider, rows, [Outcome("failed", reason=f"{provider} is off")] * len(rows))
        return
    started = time.monotonic()
    try:
        pushes, outcomes = _prepare(rows)
        if pushes:
            sent = get_event_loop_thread().run_coroutine(sender.send(list(pushes.values())))
            outcomes.update(zip(pushes, sent))
    except Exception as e:
        # A sender gives every push an Outcome, even for what it did not foresee (providers/push), so it
        # raises only before any push went out: the claims go back, and Dramatiq's retry of this message
        # sends them. Left `sending`, the retry would claim nothing and the sweep fail them all unsent.
        with one_writer(), db.atomic():
            PushDelivery.update(status="queued", claim=None).where(PushDelivery.claim == claim).execute()
        logger.warning("%s: a batch of %d stopped on %s before anything was recorded; its deliveries are queued "
                       "again for the retry.", provider, len(rows), type(e).__name__)
        raise
    _record(provider, rows, [outcomes[row[0]] for row in rows])
    logger.info("%s: %s in %.0f ms.", provider, _summary(outcomes.values()), (time.monotonic() - started) * 1000)


def _prepare(rows: list[tuple]) -> tuple[dict[int, Push], dict[int, Outcome]]:
    """Each delivery's push, in its reader's language, by delivery id; and the outcomes of those that cannot go."""
    contents = notifications.contents({(m, language) for _, m, language, *_ in rows}, settings().push.preview_chars)
    pushes, outcomes = {}, {}
    for delivery_id, message_id, language, _, _, sealed in rows:
        content = contents.get((uuid.UUID(str(message_id)), language))
        if content is None:
            outcomes[delivery_id] = Outcome("failed", reason="the message was deleted before it was pushed")
        else:
            pushes[delivery_id] = Push(token_of(sealed), Notification(content.title, content.body, content.data,
                                                                      content.thread, content.collapse_id))
    return pushes, outcomes


def _record(provider: str, rows: list[tuple], outcomes: list[Outcome]) -> None:
    """Store each delivery's outcome; delete the devices that are gone; queue the retries."""
    config = settings().push
    now = utcnow()
    receipt_at = now + dt.timedelta(seconds=config.expo_receipt_delay_s) if provider == "expo" else None
    sent, failed, retry, gone = [], [], [], set()
    retry_after = 0.0
    for (delivery_id, _, _, attempts, device_id, _), outcome in zip(rows, outcomes):
        if outcome.status == "sent":
            sent.append((outcome.ref, now, receipt_at if outcome.ref else None, delivery_id))
        elif outcome.status == "gone":
            gone.add(device_id)
        elif outcome.status == "retry" and attempts <= config.max_retries:
            retry.append((delivery_id, attempts))
            retry_after = max(retry_after, outcome.retry_after or 0)
        elif outcome.status == "retry":
            failed.append((f"{outcome.reason} (after {attempts} tries)", delivery_id))
        else:
            failed.append((outcome.reason, delivery_id))
    delay_s = retry_after or (_backoff_s(max(a for _, a in retry)) if retry else 0)
    due = now + dt.timedelta(seconds=delay_s)
    with one_writer(), db.atomic():
        _each("UPDATE pushdelivery SET status = 'sent', claim = NULL, ref = {p}, sent_at = {p}, receipt_at = {p} "
              "WHERE id = {p}", [(ref, _stored(at), _stored(receipt), d) for ref, at, receipt, d in sent])
        _each("UPDATE pushdelivery SET status = 'failed', claim = NULL, error = {p} WHERE id = {p}", failed)
        if retry:
            PushDelivery.update(status="queued", claim=None, due_at=due).where(
                PushDelivery.id.in_([d for d, _ in retry])).execute()
        if gone:
            Device.delete().where(Device.id.in_(list(gone))).execute()
    if gone:
        logger.info("%s: %d devices deleted, their tokens are gone.", provider, len(gone))
    if retry:
        if retry_after:  # every worker's batches for this gateway wait too
            client = dramatiq.get_broker().client
            if client.pttl(_pause_key(provider)) < retry_after * 1000:
                client.set(_pause_key(provider), 1, px=int(retry_after * 1000))
        _send([(d, provider) for d, _ in retry], delay_ms=int(delay_s * 1000))


def _backoff_s(attempts: int) -> float:
    """0.5 s after the first try, doubling, at most BACKOFF_MAX_S; jittered so retries do not arrive together."""
    return min(BACKOFF_MAX_S, 2 ** attempts / 4) * random.uniform(0.5, 1)


def _stored(at: dt.datetime | None):
    return PushDelivery.sent_at.db_value(at)


def _each(sql: str, rows: list[tuple]) -> None:
    """Run one UPDATE for each row of parameters (peewee would build the same statement again per row)."""
    if rows:
        db.cursor().executemany(sql.format(p=db.param), rows)


def _summary(outcomes) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


@dramatiq.actor(queue_name="push", max_retries=3, time_limit=RECEIPTS_TIME_LIMIT_MS)
def check_receipts() -> None:
    """Ask Expo what became of the notifications it took whose receipts are due: all of them, a chunk
    after another, for up to RECEIPTS_BUDGET_S. One message to a channel of 10,000 makes ~3,300 tickets,
    and the scheduler runs this once a minute: a chunk a run would let the backlog grow without end."""
    sender = _senders().get("expo")
    if sender is None:
        return
    deadline = time.monotonic() + RECEIPTS_BUDGET_S
    while _check_receipts_chunk(sender):
        if time.monotonic() >= deadline:
            logger.warning("Expo receipts: still due after %d s; the next run goes on.", RECEIPTS_BUDGET_S)
            return


def _check_receipts_chunk(sender: Sender) -> bool:
    """Ask for the receipts of the RECEIPTS_MAX due longest and record them; whether there were any.
    Every due row leaves the due set (done, failed, gone, or due again RECEIPT_RECHECK later)."""
    now = utcnow()
    due = list(PushDelivery.select(PushDelivery.id, PushDelivery.ref, PushDelivery.device, PushDelivery.sent_at)
               .where(PushDelivery.receipt_at <= now).order_by(PushDelivery.receipt_at).limit(RECEIPTS_MAX).tuples())
    if not due:
        return False
    receipts = get_event_loop_thread().run_coroutine(sender.receipts([ref for _, ref, _, _ in due]))
    done, failed, later, gone = [], [], [], set()
    for delivery_id, ref, device_id, sent_at in due:
        receipt = receipts.get(ref)
        if receipt is None:
            (done if sent_at < now - RECEIPTS_KEPT else later).append(delivery_id)
        elif receipt.status == "gone":
            gone.add(device_id)
        elif receipt.status in ("failed", "retry"):
            failed.append((f"Expo's receipt: {receipt.reason}", delivery_id))
        else:
            done.append(delivery_id)
    with one_writer(), db.atomic():
        if done:
            PushDelivery.update(receipt_at=None).where(PushDelivery.id.in_(done)).execute()
        if later:
            PushDelivery.update(receipt_at=now + RECEIPT_RECHECK).where(PushDelivery.id.in_(later)).execute()
        _each("UPDATE pushdelivery SET status = 'failed', receipt_at = NULL, error = {p} WHERE id = {p}", failed)
        if gone:
            Device.delete().where(Device.id.in_(list(gone))).execute()
    logger.info("Expo receipts: %d ok, %d failed, %d devices gone, %d not ready.", len(done), len(failed), len(gone),
                len(later))
    return True


@dramatiq.actor(queue_name="push", max_retries=3, time_limit=300_000)
def resend_stuck_pushes() -> None:
    """Send again the deliveries whose batch message was lost; fail those a dead worker left mid-send."""
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=settings().push.stuck_after_s)
    # A batch still sending is past Dramatiq's time limit for it by then: its worker is gone.
    dead = now - dt.timedelta(seconds=max(settings().push.stuck_after_s, _POLICY["time_limit"] / 1000 + 60))
    lost = list(PushDelivery.select(PushDelivery.id, Device.provider).join(Device)
                .where((PushDelivery.status == "queued") & (PushDelivery.due_at < cutoff)).limit(10_000).tuples())
    with one_writer(), db.atomic():
        dropped = (PushDelivery.update(status="failed", claim=None,
                                       error="its worker stopped while sending; not sent again, so it is never "
                                             "shown twice")
                   .where((PushDelivery.status == "sending") & (PushDelivery.due_at < dead)).execute())
        if lost:  # due again now, so the next sweep does not send them a second time while they wait
            PushDelivery.update(due_at=now).where(PushDelivery.id.in_([d for d, _ in lost])).execute()
    _send(lost)
    if lost or dropped:
        logger.warning("Push sweep: %d queued notifications sent again, %d left mid-send marked failed.", len(lost),
                       dropped)
