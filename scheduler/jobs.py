"""The schedule: each job is one line that enqueues an actor; the work lives in the actor."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading

import redis
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.schedulers.blocking import BlockingScheduler

from actors import broker, expiry, files, outbox, push, rooms, translation
from config import Settings
from domain.ops import schedule as ops_schedule
from domain.ops.keys import Keys
from scheduler.leader import LeaderLock

logger = logging.getLogger(__name__)


def run(settings: Settings) -> None:
    """Run the scheduler until SIGINT/SIGTERM; only the lock holder enqueues anything (`lock.leads`)."""
    lock = LeaderLock(broker.client, f"{settings.redis.namespace}:scheduler:leader", settings.scheduler.lock_ttl_s)
    scheduler = BlockingScheduler(timezone="UTC")

    def when_leading(actor):
        def job():
            if lock.leads:
                actor.send()
                logger.info("Scheduler %s sent %s.", lock.token[:8], actor.actor_name)
        job.__name__ = actor.actor_name
        return job

    every = settings.scheduler.sweep_interval_s
    scheduler.add_job(when_leading(expiry.expire_applied_commands), "interval", seconds=every)
    scheduler.add_job(when_leading(expiry.expire_tokens), "interval", seconds=every)
    scheduler.add_job(when_leading(expiry.expire_invites), "interval", seconds=every)
    # Rooms expire on time by their own delayed messages; these back them up, and purge what expired.
    scheduler.add_job(when_leading(rooms.expire_rooms), "interval", seconds=max(1, min(every, 60)))
    scheduler.add_job(when_leading(rooms.purge_rooms), "interval", seconds=every)
    scheduler.add_job(when_leading(outbox.resend_outbox), "interval", seconds=max(1, settings.writes.outbox_resend_s))
    scheduler.add_job(when_leading(files.expire_files), "interval",
                      seconds=max(1, min(every, settings.files.staged_ttl_s // 4)))
    scheduler.add_job(when_leading(translation.resend_stuck_translations), "interval",
                      seconds=max(1, settings.translation.stuck_after_s // 2))
    scheduler.add_job(when_leading(push.resend_stuck_pushes), "interval", seconds=max(1, settings.push.stuck_after_s // 2))
    scheduler.add_job(when_leading(push.check_receipts), "interval",
                      seconds=max(1, min(60, settings.push.expo_receipt_delay_s // 2)))

    scheduler.add_listener(_run_recorder(scheduler, lock), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    stopping = threading.Event()
    keeper = threading.Thread(target=lock.keep, args=(stopping,), name="scheduler-lock", daemon=True)

    def stop(signum, frame):
        logger.info("Scheduler stopping on signal %d.", signum)
        stopping.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("Scheduler started; sweeps every %d s.", every)
    keeper.start()
    try:
        scheduler.start()
    finally:
        stopping.set()
        keeper.join(timeout=5)
        lock.release()


def _run_recorder(scheduler, lock: LeaderLock):
    """A listener that notes each run the leader makes, for the dashboard (domain/ops/schedule.py)."""
    keys = Keys(broker.namespace)
    ran_by = f"{socket.gethostname()}:{os.getpid()} ({lock.token[:8]})"

    def record(event):
        job = scheduler.get_job(event.job_id)
        if job is None or not lock.leads:
            return
        outcome = "sent" if event.exception is None else f"error: {type(event.exception).__name__}: {event.exception}"
        interval = getattr(job.trigger, "interval", None)
        try:
            ops_schedule.record_run(broker.client, keys, job.func.__name__, outcome=outcome[:500], ran_by=ran_by,
                                    every_s=interval.total_seconds() if interval else None,
                                    next_run_at=job.next_run_time.timestamp() if job.next_run_time else None)
        except redis.RedisError as e:
            logger.warning("Could not record the run of %s for the dashboard: %s", job.func.__name__, e)

    return record
