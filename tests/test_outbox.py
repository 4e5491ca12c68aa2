"""The outbox: a worker that dies between a commit and sending its follow-ups loses nothing, and
each follow-up still runs once; without a crash the outbox is empty by the time the write answers."""

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.rosetta import PASSWORD, mails_to, new_email, wait_for_mail
from tests.stack import wait_for

# Left-behind follow-ups are resent after a second instead of half a minute. The sweep reads the
# setting on the worker that runs it, so the worker needs it as much as the scheduler does.
FAST_RESEND = {"SECTOR_WRITES_OUTBOX_RESEND_S": "1"}


def stays(predicate, seconds: float) -> bool:
    """Whether `predicate` holds all through the next `seconds`."""
    return not wait_for(lambda: not predicate(), timeout=seconds)


def kill(process: subprocess.Popen | None) -> None:
    """SIGKILL a process of the stack and its children (as a crash would; a clean stop of a worker
    takes seconds, and whatever it had taken is redelivered all the same)."""
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def terminate(process: subprocess.Popen | None) -> None:
    """Stop a process cleanly (a scheduler gives up its leader lock), or kill it if it lingers."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    kill(process)


class Crash:
    """The stack's worker swapped, for one test, for one that dies right after committing a batch
    with follow-ups, then for a recovering worker and a scheduler that resends the outbox."""

    def __init__(self, stack, log_dir):
        self.stack = stack
        self.log_dir = log_dir
        self.logs = []
        self.scheduler = None
        self.redis = redis.Redis.from_url(stack.settings.redis_url)
        self.unacked = []

    def start_crashing_worker(self) -> None:
        kill(self.stack.worker)
        self.stack.start_worker(stderr=self._log("crashing"), SECTOR_TEST_CRASH_AFTER_COMMIT="1",
                                SECTOR_LOGGING_LEVEL="INFO")
        # Dramatiq's parent waits for its child's "booted" event before it watches the child; a
        # child that takes a waiting message and dies before that event leaves the parent waiting
        # for --worker-fork-timeout (30 s). The child logs this line once the event is set: one
        # child a group of queues (`[workers] groups`).
        groups = len(self.stack.settings.workers.groups.split(";"))
        assert wait_for(lambda: len(self.log_lines("Worker process is ready for action.")) >= groups, timeout=30)

    def wait_for_crash(self, committed) -> None:
        """Wait until the crashing worker is gone, its commit (`committed()`) in the database.

        Dramatiq's parent process shuts down with the exit code of a child that died; one that
        restarted its child instead is killed here once the commit is visible."""
        worker = self.stack.worker
        exited = wait_for(lambda: worker.poll() is not None, timeout=15)
        if exited:
            assert worker.returncode == 70, f"the worker exited with {worker.returncode}, not the crash hook's 70"
        else:
            assert committed(), "the crashing worker neither exited nor committed"
            kill(worker)
        assert committed()
        # The batch was never acknowledged: it waits in the dead worker's set for redelivery.
        self.unacked = [key for key in self._ack_keys() if self.redis.scard(key)]
        assert self.unacked, "the crashed batch is not among the unacknowledged messages"

    def recover(self) -> None:
        """A worker with INFO logs again, and a scheduler resending the outbox every second."""
        self.stack.start_worker(stderr=self._log("recovering"), SECTOR_LOGGING_LEVEL="INFO", **FAST_RESEND)
        self.scheduler = self.stack._spawn("scheduler", env={**self.stack.env, **FAST_RESEND,
                                                             "SECTOR_SCHEDULER_LOCK_TTL_S": "3"})

    def wait_for_redelivery(self) -> None:
        """Until the dead worker's batch was handed to the live worker (once the dead one's
        heartbeat lapsed) and acknowledged, so anything it would have sent twice has been sent."""
        queued = f"{self.stack.settings.redis.namespace}:dramatiq:writes.msgs"
        assert wait_for(lambda: not any(self.redis.exists(key) for key in self.unacked)
                        and self.redis.hlen(queued) == 0, timeout=30), "the crashed batch was not redelivered"

    def log_lines(self, text: str) -> list[str]:
        """Lines of every worker's log so far that contain `text`."""
        return [line for log in self.logs
                for line in Path(log.name).read_text(encoding="utf-8", errors="replace").splitlines() if text in line]

    def restore(self) -> None:
        """The stack as every other test expects it: its plain worker, no scheduler."""
        terminate(self.scheduler)
        kill(self.stack.worker)
        restarted_ms = time.time() * 1000
        self.stack.start_worker()
        # Booted once each group's process has fetched from its queues (every fetch is a heartbeat), so the
        # next test's first write does not wait out its reply timeout on a machine busy booting it.
        beats = f"{self.stack.settings.redis.namespace}:dramatiq:__heartbeats__"
        groups = len(self.stack.settings.workers.groups.split(";"))
        assert wait_for(lambda: len(self.redis.zrangebyscore(beats, restarted_ms, "+inf")) >= groups, timeout=60)
        for log in self.logs:
            log.close()

    def _log(self, name: str):
        log = open(self.log_dir / f"{name}-worker.log", "w")
        self.logs.append(log)
        return log

    def _ack_keys(self) -> list[bytes]:
        return self.redis.keys(f"{self.stack.settings.redis.namespace}:dramatiq:__acks__.*.writes")


@pytest.fixture
def crash(stack, tmp_path):
    crash = Crash(stack, tmp_path)
    yield crash
    crash.restore()


@pytest.fixture(scope="module")
def impatient_rosetta_url(stack) -> str:
    """A server that gives up waiting for a commit after a second (sign-up has no respond-async)."""
    port = stack.start_server(SECTOR_WRITES_REPLY_TIMEOUT_MS="1000")
    return f"http://127.0.0.1:{port}/api/v1"


def outbox_rows(database, kind: str, **arguments) -> list:
    """The outbox rows of `kind` whose arguments include these."""
    rows = database.Outbox.select().where(database.Outbox.kind == kind)
    return [row for row in rows if any(call.items() >= arguments.items() for call in json.loads(row.arguments))]


def test_a_verification_mail_whose_worker_died_after_the_commit_is_sent_once(stack, crash, database,
                                                                              impatient_rosetta_url):
    address = new_email("crash")
    user = lambda: database.User.get_or_none(database.User.email == address)  # noqa: E731
    crash.start_crashing_worker()
    answer = httpx.post(f"{impatient_rosetta_url}/auth/app/register", timeout=30, json={
        "name": "Crash Test", "email": address, "password": PASSWORD, "password_confirmation": PASSWORD})
    assert answer.status_code == 503, answer.text  # the worker died before it could answer
    crash.wait_for_crash(committed=lambda: user() is not None)
    assert len(outbox_rows(database, "verification_email", user_id=user().id)) == 1
    assert mails_to(stack, address) == []

    crash.recover()
    wait_for_mail(stack, address, "verify", timeout=30)
    crash.wait_for_redelivery()
    assert stays(lambda: len(mails_to(stack, address)) == 1, seconds=1.5)
    assert outbox_rows(database, "verification_email", user_id=user().id) == []


def test_a_message_posted_whose_worker_died_after_the_commit_is_followed_up_once(stack, crash, database,
                                                                                  alice, base_url):
    channel = alice.channel(alice.group())
    crash.start_crashing_worker()
    text = f"crash {uuid.uuid4().hex}"
    answer = alice.api.post(f"/group/{channel['group']}/channel/{channel['id']}/message", json={"body": text},
                            headers={"Prefer": "respond-async"})
    assert answer.status_code == 202, answer.text
    message_id = answer.headers["location"].rsplit("/", 1)[1]
    message = database.Message.select().where(database.Message.id == uuid.UUID(message_id))
    crash.wait_for_crash(committed=message.exists)
    assert len(outbox_rows(database, "message_posted", message_id=message_id)) == 1
    posted = f"Message {message_id} posted in channel"
    assert crash.log_lines(posted) == []

    crash.recover()
    assert wait_for(lambda: crash.log_lines(posted), timeout=30), "message_posted never ran"
    crash.wait_for_redelivery()
    assert stays(lambda: len(crash.log_lines(posted)) == 1, seconds=1.5), crash.log_lines(posted)
    assert outbox_rows(database, "message_posted", message_id=message_id) == []
    assert alice.api.get(base_url.removesuffix("/v1/api") + answer.headers["location"]).status_code == 200


def test_without_a_crash_the_outbox_is_empty_once_the_write_has_answered(alice, database):
    channel = alice.channel(alice.group())
    answer = alice.post(channel, "no crash")
    assert answer.status_code == 201, answer.text
    message_id = answer.json()["id"]
    assert wait_for(lambda: outbox_rows(database, "message_posted", message_id=message_id) == [], timeout=2)
