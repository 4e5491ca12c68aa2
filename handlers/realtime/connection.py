"""One client's connection: a bounded queue of frames and the one task that writes them, for WebSocket and
SSE alike (a `sink` sends one frame its own way).

The hub's fan-out only offers frames (`offer`, never awaiting a send). A live event for a connection with
nothing queued and nothing being sent is written at once when the sink can without waiting (`send_now`);
any other goes through the queue. The writer task starts each session (hello, the replay, then what
arrived meanwhile) and then sends the queue in order. A client whose queue fills, or whose one send takes
longer than send_timeout_s, is closed 4008 and resumes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import uuid

from handlers.realtime import render
from handlers.realtime.streams import Resume, Streams, channels_changed

logger = logging.getLogger(__name__)

SLOW_CONSUMER = (4008, "slow_consumer")
SHUTDOWN = (1012, "service_restart")
_CATCH_UP = object()  # a queue marker: re-read the stream from the last seq sent (a gap, a lost epoch)


class Item:
    """A frame to send: `seq` None for control frames and typing; `kind` names it for SSE."""

    __slots__ = ("seq", "kind", "text", "epoch")

    def __init__(self, seq: int | None, kind: str, text: str, epoch: str | None = None):
        self.seq, self.kind, self.text, self.epoch = seq, kind, text, epoch


class Connection:
    """A user's connection in one dialect, its queue and its writer task."""

    def __init__(self, *, user_id: int, dialect: str, sink, streams: Streams, config, resume: Resume | None,
                 token_id: uuid.UUID | None = None, guest_id: uuid.UUID | None = None, idle_send=None):
        self.user_id, self.dialect, self.sink, self.streams = user_id, dialect, sink, streams
        self.config, self.resume = config, resume
        self.token_id, self.guest_id = token_id, guest_id
        self.idle_send = idle_send  # SSE: a coroutine function sending a heartbeat comment when idle
        self.session_id = secrets.token_hex(8)
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=config.send_queue_max)
        self.pending: list | None = []  # live frames that arrive while a session starts
        self.epoch: str | None = None
        self.last_seq = 0
        self.last_ts: int | None = resume.last_ts if resume else None
        self.closed: tuple[int, str] | None = None
        self.closing: asyncio.Task | None = None  # sending the close frame
        self.writer: asyncio.Task | None = None
        self.writing = False  # the writer task is in a send
        self.typing_at = 0.0

    # The fan-out side: never awaits.

    def offer(self, seq: int | None, kind: str, tail: str, ts: int | None = None) -> None:
        """A live event from the hub, encoded once for this dialect without seq and epoch (render.event_tail)."""
        if self.closed:
            return
        if self.pending is not None:
            self.pending.append((seq, kind, tail, ts))
            if len(self.pending) > self.config.replay_max_events + self.config.send_queue_max:
                self.close(*SLOW_CONSUMER)
            return
        if seq is not None:
            if seq != self.last_seq + 1:  # a gap (a notification lost) or a new epoch: read the stream again
                self.pending = [(seq, kind, tail, ts)]
                self._put(_CATCH_UP)
                return
            self.last_seq = seq
            self.last_ts = ts or self.last_ts
        elif self.queue.qsize() * 2 >= self.queue.maxsize:
            return  # typing is the first thing a client that falls behind goes without
        text = render.event_frame(tail, seq, self.epoch)
        # The fast path: nothing waits to go before it, so the sink may write it now, without a trip
        # through the writer task (most of a big fan-out's time was those trips).
        if self.writing or not self.queue.empty() or not self.sink.send_now(text):
            self._put(Item(seq, kind, text, self.epoch))

    def send_control(self, kind: str, frame: dict) -> None:
        self._put(Item(None, kind, render.encode({"type": kind, **frame})))

    def catch_up(self) -> None:
        """Re-read the stream from the last seq sent (after the hub lost notifications, or an epoch ended)."""
        if not self.closed and self.pending is None:
            self.pending = []
            self._put(_CATCH_UP)

    def restart(self, resume: Resume) -> None:
        """A resume frame: start the session again from where the client says it stopped."""
        if not self.closed and self.pending is None:
            self.pending, self.resume = [], resume
            self._put(resume)

    def _put(self, item) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.close(*SLOW_CONSUMER)

    def close(self, code: int, reason: str) -> None:
        """Stop writing and close the client with this code (in a task: its sends may be stuck)."""
        if self.closed:
            return
        self.closed = (code, reason)
        logger.info("Closing realtime session %s of user %d: %d %s.", self.session_id, self.user_id, code, reason)
        if self.writer is not None and self.writer is not asyncio.current_task():
            self.writer.cancel()
        self.closing = asyncio.get_running_loop().create_task(self.sink.close(code, reason))

    async def closed_down(self) -> None:
        """Wait for the close frame to go out (the handler's end would otherwise close with 1000 first)."""
        if self.closing is not None:
            await asyncio.shield(self.closing)

    # The writer task.

    async def run(self) -> None:
        try:
            await self._start(self.resume)
            while True:
                item = await self._next()
                if item is _CATCH_UP:
                    await self._catch_up()
                elif isinstance(item, Resume):
                    await self._start(item)
                else:
                    await self._send(item)
        except asyncio.TimeoutError:
            self.close(*SLOW_CONSUMER)
        except asyncio.CancelledError:
            pass

    async def start_only(self) -> None:
        """The session's opening frames only (for a one-off answer): hello, then the replay or resync."""
        self.pending = []
        await self._start(self.resume)

    async def _next(self):
        if self.idle_send is None:
            return await self.queue.get()
        while True:
            try:
                return await asyncio.wait_for(self.queue.get(), self.config.sse_heartbeat_s)
            except asyncio.TimeoutError:
                await asyncio.wait_for(self.idle_send(), self.config.send_timeout_s)

    async def _send(self, item: Item) -> None:
        # asyncio.timeout, not wait_for: wait_for runs the send in a task of its own, a second trip through
        # the event loop for each frame of each connection, which was a third of a fan-out's time.
        self.writing = True
        try:
            async with asyncio.timeout(self.config.send_timeout_s):
                await self.sink.send(item)
        finally:
            self.writing = False

    async def _start(self, resume: Resume | None) -> None:
        """hello, then (resuming) the events missed, or resync_required; then what arrived meanwhile."""
        opened = await self.streams.open(self.user_id)
        self.epoch = opened.epoch
        if resume is not None:
            self.last_ts = resume.last_ts
        problem = self.streams.problem(opened, resume) if resume else None
        replay: list[tuple[int, bytes]] = []
        if resume and problem is None and resume.last_seq < opened.top:
            replay = await self.streams.after(self.user_id, resume.last_seq)
            if not replay or replay[0][0] != resume.last_seq + 1:
                problem, replay = "window_exceeded", []
        resumed = resume is not None and problem is None
        self.last_seq = (replay[-1][0] if replay else resume.last_seq) if resumed else opened.top
        await self._send(self._hello(opened.top, resumed, len(replay)))
        if problem:
            await self._resync(problem, opened.top)
        for seq, raw in replay:
            await self._send(self._replayed(seq, raw))
        await self._drain()

    async def _catch_up(self) -> None:
        opened = await self.streams.open(self.user_id)
        if opened.epoch != self.epoch or opened.top < self.last_seq:
            self.epoch, self.last_seq = opened.epoch, opened.top
            await self._send(self._hello(opened.top, False, 0))
            await self._resync("unknown_user_stream" if opened.created else "epoch_changed", opened.top)
        elif opened.top > self.last_seq:
            replay = await self.streams.after(self.user_id, self.last_seq)
            if not replay or replay[0][0] != self.last_seq + 1:
                self.last_seq = opened.top
                await self._send(self._hello(opened.top, False, 0))
                await self._resync("window_exceeded", opened.top)
            else:
                for seq, raw in replay:
                    await self._send(self._replayed(seq, raw))
                self.last_seq = replay[-1][0]
        await self._drain()

    async def _drain(self) -> None:
        """Send the live frames buffered while the session started, skipping those already sent; then go live.
        No await between the last check and going live, so no frame slips between the two."""
        while self.pending:
            seq, kind, tail, ts = self.pending.pop(0)
            if seq is not None:
                if seq <= self.last_seq:
                    continue
                if seq != self.last_seq + 1:  # missed while starting: read the stream again
                    self.pending.insert(0, (seq, kind, tail, ts))
                    await self._catch_up()
                    return
                self.last_seq, self.last_ts = seq, ts or self.last_ts
            await self._send(Item(seq, kind, render.event_frame(tail, seq, self.epoch), self.epoch))
        self.pending = None

    def _hello(self, top: int, resumed: bool, replayed: int) -> Item:
        return Item(None, "hello", render.encode({
            "type": "hello", "session_id": self.session_id, "epoch": self.epoch, "seq": top, "resumed": resumed,
            "replayed": replayed, "replay_window_s": self.config.replay_window_s,
            "heartbeat_s": self.config.sse_heartbeat_s if self.idle_send else self.config.heartbeat_s}))

    def _replayed(self, seq: int, raw: bytes) -> Item:
        event = json.loads(raw)
        self.last_ts = event.get("ts") or self.last_ts
        return Item(seq, event["type"], render.event_frame(render.event_tail(event, self.dialect), seq, self.epoch),
                    self.epoch)

    async def _resync(self, reason: str, top: int) -> None:
        changed = [render.channel_ref(self.dialect, *row) for row in channels_changed(self.user_id, self.last_ts)]
        await self._send(Item(None, "resync_required", render.encode({
            "type": "resync_required", "reason": reason, "top_seq": top, "channels_changed": changed})))
