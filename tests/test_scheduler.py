"""The scheduler: one leader at a time, and its sweeps run on the workers and delete what expired."""

import datetime as dt
import time
import uuid

import redis

import models
from scheduler.leader import LeaderLock
from tests.stack import wait_for


def test_one_scheduler_leads_and_another_takes_over_when_the_lock_lapses(stack):
    client = redis.Redis.from_url(stack.settings.redis_url)
    key = f"{stack.settings.redis.namespace}:test-leader:{uuid.uuid4().hex}"
    first, second = LeaderLock(client, key, ttl_s=1), LeaderLock(client, key, ttl_s=1)
    assert first.hold() and not second.hold()
    assert first.hold(), "the leader renews its own lock"
    time.sleep(1.3)
    assert second.hold(), "a lapsed lock passes to the standby"
    assert not first.hold()
    second.release()
    assert first.hold()


def test_the_scheduler_sweeps_old_command_ids_and_dead_tokens_through_a_worker(stack, alice):
    models.open_database(stack.settings.database_url)
    old, recent = f"old-{uuid.uuid4().hex}", f"recent-{uuid.uuid4().hex}"
    long_ago = models.utcnow() - dt.timedelta(hours=stack.settings.writes.applied_retention_h + 1)
    models.AppliedCommand.insert_many([{"id": old, "applied_at": long_ago},
                                       {"id": recent, "applied_at": models.utcnow()}]).execute()
    user = models.User.get(models.User.uid == uuid.UUID(alice.id))
    two_days_ago = models.utcnow() - dt.timedelta(days=2)
    tokens = {name: models.new_id() for name in ("expired", "revoked", "live")}
    for name, expires_at, revoked_at in [("expired", two_days_ago, None), ("revoked", None, two_days_ago),
                                         ("live", None, None)]:
        models.Token.insert(id=tokens[name], user=user.id, secret_hash=uuid.uuid4().hex, expires_at=expires_at,
                            revoked_at=revoked_at, created_at=two_days_ago).execute()
    token_exists = lambda name: models.Token.select().where(models.Token.id == tokens[name]).exists()  # noqa: E731
    scheduler = stack._spawn("scheduler", env={**stack.env, "SECTOR_SCHEDULER_SWEEP_INTERVAL_S": "1",
                                               "SECTOR_SCHEDULER_LOCK_TTL_S": "3"})
    try:
        exists = lambda cid: models.AppliedCommand.select().where(models.AppliedCommand.id == cid).exists()  # noqa: E731
        assert wait_for(lambda: not exists(old), timeout=30)
        assert exists(recent)
        assert wait_for(lambda: not token_exists("expired") and not token_exists("revoked"), timeout=30)
        assert token_exists("live")
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=15)
        models.db.close()
