"""The `writes` queue: commit batches of write commands, exactly once each."""

from __future__ import annotations

import logging
import os

import dramatiq
from peewee import DataError, IntegrityError

from actors import outbox, realtime, relay, replies
from actors.database import one_writer
from config import settings
from domain.commands import from_wire, to_wire
from domain.errors import DomainError, Invalid
from domain.writes import apply, apply_all, pending
from models import AppliedCommand, db, utcnow

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="writes", max_retries=20, min_backoff=100, max_backoff=30_000, time_limit=60_000)
def commit_writes(commands: list[dict], reply_to: str | None = None) -> None:
    """Apply a batch of commands in one transaction, tell the waiting handlers how each went, then hand
    the follow-ups the transaction stored in the outbox to this process's relay (actors/relay.py).

    A command whose id is already recorded was committed before (Dramatiq redelivers after a
    crash, and clients retry): it is skipped and reported as done. A command the domain refuses
    (a name taken meanwhile, a channel deleted meanwhile), or whose values the database refuses,
    fails alone; the rest commit.
    Anything else (the database is down) fails the batch, and Dramatiq retries it with backoff.
    """
    batch = [from_wire(data) for data in commands]
    followups = pending()
    followups.clear()
    with one_writer(), db.atomic():
        fresh = _record_applied([cmd.command_id for cmd in batch])
        todo = [cmd for cmd in batch if cmd.command_id in fresh]
        outcomes = {cmd.command_id: (replies.APPLIED if cmd.command_id in fresh else replies.REPEAT) for cmd in batch}
        try:
            with db.atomic():  # fast path: the whole batch at once
                apply_all(todo)
        except (DomainError, IntegrityError, *_REFUSED_VALUES):
            followups.clear()
            refused = _apply_one_by_one(todo, outcomes, followups)
            AppliedCommand.delete().where(AppliedCommand.id.in_(refused)).execute()
        stored = outbox.store(followups)
    followups.clear()
    if _CRASH_AFTER_COMMIT and stored:
        os._exit(70)  # tests only: die between the commit and the follow-ups (see _CRASH_AFTER_COMMIT)
    logger.debug("Committed %d of %d commands.", sum(v == replies.APPLIED for v in outcomes.values()), len(batch))
    # The waiting requests are answered first: their follow-ups are safe in the outbox already. Then the
    # realtime events, before the other follow-ups (so a client sees its message before its translation).
    if reply_to:
        replies.publish(commit_writes.broker.client, reply_to, outcomes)
    realtime.publish_committed(stored)
    relay.hand_over(stored)


def commit_and_wait(commands: list, timeout_s: float = 10) -> dict[str, str | dict]:
    """For command-line tools: send commands as a handler would, and wait for their outcomes
    (APPLIED, REPEAT or an error reply). Raises TimeoutError when no worker answers."""
    client = commit_writes.broker.client
    reply_to = replies.new_reply_key(settings().redis.namespace)
    commit_writes.send(commands=[to_wire(cmd) for cmd in commands], reply_to=reply_to)
    item = client.blpop([reply_to], timeout=timeout_s)
    if item is None:
        raise TimeoutError("no worker committed the command; is `app.py worker` running?")
    return replies.parse(item[1])


def _record_applied(command_ids: list[str]) -> set[str]:
    """Record the ids as applied; returns those that were not already (the rest are repeats)."""
    now = utcnow()
    rows = [{"id": cid, "applied_at": now} for cid in dict.fromkeys(command_ids)]
    inserted = AppliedCommand.insert_many(rows).on_conflict_ignore().returning(AppliedCommand.id).execute()
    return {row.id for row in inserted}


# The database (DataError: a number out of range) or its driver (ValueError: psycopg2 and a NUL
# in text) refusing a value: retrying can never succeed, so the command fails alone instead.
_REFUSED_VALUES = (DataError, ValueError)


# Set only by the tests: the worker process exits right after committing a batch that has follow-ups,
# to show that the outbox delivers them all the same.
_CRASH_AFTER_COMMIT = os.environ.get("SECTOR_TEST_CRASH_AFTER_COMMIT") == "1"


def _apply_one_by_one(commands, outcomes: dict, followups: list) -> list[str]:
    """Apply each command in its own savepoint; returns the ids of those refused."""
    refused = []
    for cmd in commands:
        asked = len(followups)
        try:
            with db.atomic():
                apply(cmd)
        except _REFUSED_VALUES as e:
            logger.warning("Command %s (%s) has data the database refuses: %s", cmd.command_id, type(cmd).__name__, e)
            outcomes[cmd.command_id] = Invalid("The database cannot store a value of this request.").to_reply()
            refused.append(cmd.command_id)
            del followups[asked:]
        except DomainError as e:
            logger.info("Command %s (%s) refused: %s", cmd.command_id, type(cmd).__name__, e.message)
            outcomes[cmd.command_id] = e.to_reply()
            refused.append(cmd.command_id)
            del followups[asked:]
    return refused
