"""The `writes` queue: commit batches of write commands, exactly once each."""

from __future__ import annotations

import logging

import dramatiq

from actors import replies
from domain.commands import from_wire
from domain.errors import DomainError
from domain.writes import apply
from models import AppliedCommand, db, utcnow

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="writes", max_retries=20, min_backoff=100, max_backoff=30_000, time_limit=60_000)
def commit_writes(commands: list[dict], reply_to: str | None = None) -> None:
    """Apply a batch of commands in one transaction, then tell the waiting handlers how each went.

    A command whose id is already recorded was committed before (Dramatiq redelivers after a
    crash, and clients retry): it is skipped and reported as done. A command the domain refuses
    (a name taken meanwhile, a channel deleted meanwhile) rolls back alone to its savepoint.
    Anything else (the database is down) fails the batch, and Dramatiq retries it with backoff.
    """
    batch = [from_wire(data) for data in commands]
    outcomes: dict[str, dict | None] = {}
    now = utcnow()
    with db.atomic():
        for cmd in batch:
            try:
                with db.atomic():  # a savepoint per command: a refused one rolls back alone
                    if _first_time(cmd.command_id, now):
                        apply(cmd)
            except DomainError as e:
                logger.info("Command %s (%s) refused: %s", cmd.command_id, type(cmd).__name__, e.message)
                outcomes[cmd.command_id] = e.to_reply()
            else:
                outcomes[cmd.command_id] = None
    logger.debug("Committed %d of %d commands.", sum(v is None for v in outcomes.values()), len(batch))
    if reply_to:
        replies.publish(commit_writes.broker.client, reply_to, outcomes)


def _first_time(command_id: str, now) -> bool:
    """Record the command as applied; False if it already was (a redelivery or a client retry)."""
    return AppliedCommand.insert(id=command_id, applied_at=now).on_conflict_ignore().as_rowcount().execute() == 1
