"""What the ops tests share: a stack of their own (they pause queues), an operator with an `ops` token made
by the command line, a user who is not one, and jobs that really fail on a real worker.

The failing job is the real mail actor with real bad input: `send_email` of a payload that was never
sealed raises SealBroken, which the actor declares final (`throws=`), so Dramatiq dead-letters it at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import redis

import config
from tests.rosetta import AppUser
from tests.stack import ROOT, Stack, run_python, wait_for

#: How often the tests' workers sample the queues into the series ([ops] queue_sample_s; a minute in production),
#: so a test sees a sample within seconds.
SAMPLE_EVERY_S = 1


def sampling_stack() -> Stack:
    """A stack (not started) whose workers sample the queues' depth and latency every SAMPLE_EVERY_S."""
    stack = Stack()
    stack.env["SECTOR_OPS_QUEUE_SAMPLE_S"] = str(SAMPLE_EVERY_S)
    stack.settings = config.load(environ=stack.env)
    return stack


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    """`python app.py <args>` in the stack's environment."""
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], env=stack.env, capture_output=True,
                          text=True, timeout=60)


class OpsWorld:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.origin = f"http://127.0.0.1:{stack.port}"
        self.redis = redis.Redis.from_url(stack.settings.redis_url)
        self.namespace = f"{stack.settings.redis.namespace}:dramatiq"
        self.operator = AppUser(self.origin + "/api/v1", name="Olga Operator")
        granted = cli(stack, "operators", "grant", "--email", self.operator.email)
        assert granted.returncode == 0 and "Granted." in granted.stdout, granted.stderr
        minted = cli(stack, "operators", "token", "--email", self.operator.email, "--name", "tests")
        assert minted.returncode == 0, minted.stderr
        self.token = minted.stdout.strip().splitlines()[-1]
        self.ops = self.client(self.token)
        self.outsider = AppUser(self.origin + "/api/v1", name="Nils Nobody")

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.origin + "/ops/api", timeout=30, headers=headers)

    def send(self, script: str) -> list[str]:
        """Run `script` as a client of the stack's queues; it prints one message id a line."""
        return run_python(self.stack.env, script).split()

    def failing_mails(self, count: int = 1) -> list[str]:
        """Send mails whose payload was never sealed; returns their message ids."""
        return self.send(f"from actors.email import send_email\nfor _ in range({count}): "
                         f"print(send_email.send('not-sealed-{time.time_ns()}').message_id)")

    def dead_mails(self, count: int = 1) -> list[str]:
        """failing_mails() that have died: each is in the failed list when this returns."""
        ids = self.failing_mails(count)
        for message_id in ids:
            self.dead(message_id)
        return ids

    def dead(self, message_id: str, timeout: float = 20) -> dict:
        """The job's entry in the failed list once it is dead there."""
        found = {}

        def listed():
            page = self.ops.get("/failed", params={"queue": "email", "limit": 200}).json()
            found.update(next((f for f in page["items"] if f["message_id"] == message_id), {}))
            return bool(found)

        assert wait_for(listed, timeout=timeout), f"job {message_id} never died"
        return found

    def depth(self, queue: str) -> int:
        overview = self.ops.get("/overview").json()
        return next(q["depth"] for q in overview["queues"] if q["name"] == queue)

    def sampled(self, queue: str) -> dict | None:
        """The queue's latest minute in the served series that a worker sampled the gauges of, if any."""
        overview = self.ops.get("/overview").json()
        minutes = next(q["minutes"] for q in overview["queues"] if q["name"] == queue)
        return next((m for m in reversed(minutes) if m["depth"] is not None), None)

    def audit(self) -> list[dict]:
        return self.ops.get("/audit", params={"limit": 200}).json()["items"]

    def record(self, message_id: str) -> dict:
        raw = self.redis.hgetall(f"{self.namespace}:ops:failure:{message_id}")
        return {k.decode(): v.decode() for k, v in raw.items()}


def pretty(answer: httpx.Response) -> str:
    try:
        return json.dumps(answer.json(), indent=1)[:2000]
    except ValueError:
        return answer.text[:2000]
