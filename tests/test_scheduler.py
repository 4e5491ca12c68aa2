"""The scheduler: one leader at a time, and its sweeps run on the workers and delete what expired."""

import datetime as dt
import os
import re
import signal
import subprocess
import threading
import time
import uuid

import redis

import models
from actors import expiry
from scheduler.leader import LeaderLock
from tests.stack import wait_for


def test_one_scheduler_leads_and_another_takes_over_when_the_lock_lapses(stack):
    client = redis.Redis.from_url(stack.settings.redis_url)
    key = f"{stack.settings.redis.namespace}:test-leader:{uuid.uuid4().hex}"
    first, second = LeaderLock(client, key, ttl_s=1), LeaderLock(client, key, ttl_s=1)
    assert first.hold() and not second.hold()
    assert first.hold(), "the leader renews its own lock"
    assert first.leads and not second.leads
    time.sleep(1.3)
    assert first.leading and not first.leads, "a leader that missed its renewal stops as its lock lapses"
    assert second.hold(), "a lapsed lock passes to the standby"
    assert not first.hold()
    first.release()  # a lock it no longer holds: the standby's stays
    assert second.hold() and not first.hold()
    second.release()
    assert first.hold()


def test_a_standby_takes_the_lead_as_the_leaders_lock_lapses(stack):
    client = redis.Redis.from_url(stack.settings.redis_url)
    key = f"{stack.settings.redis.namespace}:test-leader:{uuid.uuid4().hex}"
    leader, standby = LeaderLock(client, key, ttl_s=2), LeaderLock(client, key, ttl_s=2)
    stopping = threading.Event()
    assert leader.hold()
    held_at = time.monotonic()  # and never renewed again: the leader is as good as killed
    keeper = threading.Thread(target=standby.keep, args=(stopping,), daemon=True)
    keeper.start()
    try:
        assert wait_for(lambda: standby.leads, timeout=5, interval=0.005)
        took_after = time.monotonic() - held_at
        assert 1.9 <= took_after <= 2.3, f"took the lead {took_after:.2f} s after the leader's last renewal"
        assert not leader.hold() and standby.leads
    finally:
        stopping.set()
        keeper.join(timeout=5)
        standby.release()


def test_the_scheduler_sweeps_old_command_ids_dead_tokens_and_invites_through_a_worker(stack, alice):
    models.open_database(stack.settings.database_url)
    old, recent = f"old-{uuid.uuid4().hex}", f"recent-{uuid.uuid4().hex}"
    long_ago = models.utcnow() - dt.timedelta(hours=stack.settings.writes.applied_retention_h + 1)
    # More than two of the sweep's batches, so that it is seen to go on past the first.
    older = [f"older-{uuid.uuid4().hex}" for _ in range(2 * expiry.BATCH + 5)]
    models.AppliedCommand.insert_many([{"id": old, "applied_at": long_ago},
                                       {"id": recent, "applied_at": models.utcnow()},
                                       *({"id": cid, "applied_at": long_ago} for cid in older)]).execute()
    user = models.User.get(models.User.uid == uuid.UUID(alice.id))
    two_days_ago = models.utcnow() - dt.timedelta(days=2)
    workspace = models.Workspace.create(id=uuid.uuid4(), name="Invites", owner=user.id, created_at=two_days_ago,
                                        updated_at=two_days_ago)
    invites = {name: uuid.uuid4() for name in ("expired", "revoked", "live", "recent")}
    for name, expires_at, revoked_at in [("expired", two_days_ago, None), ("revoked", None, two_days_ago),
                                         ("live", None, None), ("recent", models.utcnow(), None)]:
        models.Invite.insert(id=invites[name], workspace=workspace.id, token_hash=uuid.uuid4().hex,
                             expires_at=expires_at, revoked_at=revoked_at, created_at=two_days_ago).execute()
    invite_exists = lambda name: models.Invite.select().where(models.Invite.id == invites[name]).exists()  # noqa: E731
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
        assert wait_for(lambda: not models.AppliedCommand.select().where(
            models.AppliedCommand.id.in_(older)).exists(), timeout=30), "the sweep stopped after a batch"
        assert exists(recent)
        assert wait_for(lambda: not token_exists("expired") and not token_exists("revoked"), timeout=30)
        assert token_exists("live")
        # An invite that expired or was revoked under a day ago stays, so that its link can say why it fails.
        assert wait_for(lambda: not invite_exists("expired") and not invite_exists("revoked"), timeout=30)
        assert invite_exists("live") and invite_exists("recent")
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=15)
        models.db.close()


# Lines of a scheduler's stderr, in app.py's format: "<asctime> <pid> <logger> INFO <message>".
SENT = re.compile(r"^(\S+ \S+) \d+ \S+ INFO Scheduler ([0-9a-f]{8}) sent (\w+)\.$", re.MULTILINE)
TOOK_LEAD = re.compile(r"^(\S+ \S+) \d+ \S+ INFO Scheduler ([0-9a-f]{8}) took the lead\.$", re.MULTILINE)


def _events(log, pattern) -> list[tuple]:
    """(unix time, token[, actor]) for each line of one scheduler's log that matches `pattern`."""
    return [(dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp(), *m.groups()[1:])
            for m in pattern.finditer(log.read_text(errors="replace"))]


def _sends_between(logs, start: float, end: float) -> list[tuple]:
    return [event for log in logs for event in _events(log, SENT) if start <= event[0] < end]


def _tails(logs) -> str:
    return "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}" for log in logs)


def _assert_once_per_interval(sends, window: float, every: int, logs) -> None:
    """Each one-interval sweep was sent about window/every times: generous for a loaded machine,
    but well below the 2x that two senders (or a job scheduled twice) would give."""
    expected = window / every
    for actor in ("expire_tokens", "expire_rooms"):
        count = sum(1 for _, _, name in sends if name == actor)
        assert expected / 2 <= count <= expected * 1.5 + 1, (actor, count, expected, _tails(logs))


def test_two_schedulers_send_each_sweep_once_and_the_standby_takes_over_when_the_leader_is_killed(stack,
                                                                                                 tmp_path):
    ttl, every, window = 3, 1, 5.0
    # A killed leader's lock lapses within its TTL, and the standby tries as it lapses; half a second for
    # a loaded machine (a standby polling every ttl/3 s instead would take up to a second more).
    takeover_within = ttl + 0.5
    env = {**stack.env, "SECTOR_LOGGING_LEVEL": "INFO", "SECTOR_SCHEDULER_SWEEP_INTERVAL_S": str(every),
           "SECTOR_SCHEDULER_LOCK_TTL_S": str(ttl)}
    logs = [tmp_path / "scheduler-a.log", tmp_path / "scheduler-b.log"]
    files = [log.open("wb") for log in logs]
    schedulers = []
    try:
        schedulers = [stack._spawn("scheduler", env=env, stderr=file) for file in files]
        started = lambda: all("Scheduler started" in log.read_text(errors="replace") for log in logs)  # noqa: E731
        leaders = lambda: [i for i, log in enumerate(logs) if _events(log, TOOK_LEAD)]  # noqa: E731
        assert wait_for(lambda: started() and leaders(), timeout=20), _tails(logs)
        assert len(leaders()) == 1, "both schedulers took the lead\n" + _tails(logs)
        [lead] = leaders()
        standby = 1 - lead
        token = _events(logs[lead], TOOK_LEAD)[0][1]
        assert wait_for(lambda: _events(logs[lead], SENT), timeout=5), _tails(logs)

        start = time.time()
        time.sleep(window)
        end = time.time()
        sends = _sends_between(logs, start, end)
        assert {t for _, t, _ in sends} == {token}, f"senders: {sorted({t for _, t, _ in sends})}\n" + _tails(logs)
        assert not _events(logs[standby], SENT) and not _events(logs[standby], TOOK_LEAD), \
            "the standby sent while the leader lived\n" + _tails(logs)
        _assert_once_per_interval(sends, window, every, logs)

        killed_at = time.time()
        os.killpg(schedulers[lead].pid, signal.SIGKILL)
        schedulers[lead].wait()
        assert wait_for(lambda: _events(logs[standby], TOOK_LEAD), timeout=takeover_within + 5), \
            "the standby never took over\n" + _tails(logs)
        took_at, new_token = _events(logs[standby], TOOK_LEAD)[0]
        assert new_token != token
        assert took_at - killed_at <= takeover_within, f"took over after {took_at - killed_at:.1f} s\n" + _tails(logs)
        assert wait_for(lambda: _sends_between(logs, took_at, time.time() + 1), timeout=every + 3), _tails(logs)

        start = time.time()
        time.sleep(window)
        end = time.time()
        sends = _sends_between(logs, start, end)
        assert {t for _, t, _ in sends} == {new_token}, f"senders: {sorted({t for _, t, _ in sends})}\n" + _tails(logs)
        assert not _sends_between(logs[lead:lead + 1], killed_at, end), "the killed leader still sent"
        _assert_once_per_interval(sends, window, every, logs)
    finally:
        for scheduler in schedulers:
            if scheduler.poll() is None:
                scheduler.terminate()  # SIGTERM: it stops and releases the lock if it holds it
        for scheduler in schedulers:
            try:
                scheduler.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(scheduler.pid, signal.SIGKILL)
                scheduler.wait()
        for file in files:
            file.close()
