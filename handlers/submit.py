"""Sending write commands from HTTP handlers and awaiting their commit (group commit).

Commands that arrive while a batch is on its way to Redis ride together in the next batch,
so under load one Dramatiq message and one transaction carry many requests, and an idle
request is sent at once. Each HTTP process reads the actor's replies from one Redis list.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import redis
import redis.asyncio as aioredis

import telemetry
from actors import replies
from actors.writes import commit_writes
from domain.commands import Command, to_wire
from domain.errors import DomainError, Unavailable

logger = logging.getLogger(__name__)


class Submitter:
    """Batches commands onto the `writes` queue and resolves each request when its reply comes."""

    def __init__(self, client: aioredis.Redis, *, namespace: str, reply_timeout_ms: int, batch_max: int):
        self.client = client
        self.reply_to = replies.new_reply_key(namespace)
        self.reply_timeout = reply_timeout_ms / 1000
        self.batch_max = batch_max
        self._pending: list[tuple[dict, asyncio.Future]] = []  # commands' wire forms, and when each is sent
        self._waiting: dict[str, list[asyncio.Future]] = {}
        self._wakeup = asyncio.Event()
        # Dramatiq's send is blocking; one thread keeps it off the event loop and in order.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sector-send")
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._send_loop()), asyncio.create_task(self._reply_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._executor.shutdown(wait=False)

    async def submit(self, command: Command, *, wait: bool = True) -> bool:
        """Queue `command`; unless `wait` is false, return once it is committed.

        Waiting, returns True if this command made the change, False if it had been applied before
        (a retry); not waiting, returns True once the command is queued. Raises the DomainError the actor reported, or Unavailable when Redis cannot be
        reached or no worker answered in time (the command then stays queued and applies later).
        """
        loop = asyncio.get_running_loop()
        sent = loop.create_future()
        outcome = loop.create_future()
        if wait:
            self._waiting.setdefault(command.command_id, []).append(outcome)
        self._pending.append((_wire(command), sent))
        self._wakeup.set()
        try:
            await sent
            if not wait:
                return True
            result = await asyncio.wait_for(outcome, self.reply_timeout)
        except TimeoutError:
            logger.warning("No worker committed command %s within %.1f s.", command.command_id, self.reply_timeout)
            raise Unavailable("The write is queued but no worker has committed it yet; retry later.", 2) from None
        finally:
            self._forget(command.command_id, outcome)
        if isinstance(result, dict):
            raise DomainError.from_reply(result)
        return result == replies.APPLIED

    def _forget(self, command_id: str, outcome: asyncio.Future) -> None:
        waiters = self._waiting.get(command_id)
        if waiters and outcome in waiters:
            waiters.remove(outcome)
            if not waiters:
                del self._waiting[command_id]

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[: self.batch_max], self._pending[self.batch_max :]
                wire = [data for data, _ in batch]
                try:
                    await loop.run_in_executor(self._executor, self._send, wire)
                except redis.RedisError as e:
                    logger.error("Could not enqueue %d commands: %s", len(batch), e)
                    for _, sent in batch:
                        if not sent.done():
                            sent.set_exception(Unavailable("The message queue is unreachable; retry later.", 5))
                else:
                    for _, sent in batch:
                        if not sent.done():
                            sent.set_result(None)

    def _send(self, wire: list[dict]) -> None:
        # The message names the requests of its commands, for the log lines of the jobs it causes.
        options = {"request_id": rid} if (rid := telemetry.joined(data.get("request_id") for data in wire)) else {}
        commit_writes.send_with_options(kwargs={"commands": wire, "reply_to": self.reply_to}, **options)

    async def _reply_loop(self) -> None:
        backoff = 0.1
        while True:
            try:
                item = await self.client.blpop([self.reply_to], timeout=1)
                backoff = 0.1
                if item is None:
                    continue
            except (redis.RedisError, OSError) as e:
                logger.warning("Reply listener lost Redis (%s); retrying in %.1f s.", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)
                continue
            for command_id, result in replies.parse(item[1]).items():
                for outcome in self._waiting.get(command_id, ()):
                    if not outcome.done():
                        outcome.set_result(result)


def _wire(command: Command) -> dict:
    """The command's wire form, with the id of the request that sends it (the write actor ignores it)."""
    data = to_wire(command)
    if (rid := telemetry.request_id.get()) is not None:
        data["request_id"] = rid
    return data
