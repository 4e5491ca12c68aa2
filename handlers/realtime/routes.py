"""The realtime routes of one dialect: the WebSocket, server-sent events, and tickets (docs/realtime.md)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import socket

from sanic import Blueprint
from sanic.response import HTTPResponse
from websockets.protocol import OPEN as WS_OPEN

from domain import realtime as rt
from domain.errors import DomainError, Forbidden, Invalid, Unauthenticated
from handlers.bodies import json as json_response
from handlers.realtime import callers, render
from handlers.realtime.connection import Connection
from handlers.realtime.hub import TooManyConnections
from handlers.realtime.streams import Resume, now_ms
from models import Channel

logger = logging.getLogger(__name__)

AUTH_FAILED, FORBIDDEN, RATE_LIMITED = 4001, 4003, 4029
_EPOCH = re.compile(r"[0-9A-Za-z_-]{1,64}")


def is_upgrade(request) -> bool:
    connection = {token.strip().lower() for token in request.headers.get("connection", "").split(",")}
    return request.headers.get("upgrade", "").lower() == "websocket" and "upgrade" in connection


def check_handshake(request) -> None:
    """A broken WebSocket handshake is a 400 before Sanic tries it (which would make a 500 of it)."""
    try:
        key_ok = len(base64.b64decode(request.headers.get("sec-websocket-key", ""), validate=True)) == 16
    except ValueError:
        key_ok = False
    if not key_ok or request.headers.get("sec-websocket-version") != "13":
        raise DomainError("The WebSocket handshake needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13.")


def check_query(request) -> None:
    """The realtime query values, as the OpenAPI documents describe them: 422 naming each bad one."""
    problems, args = {}, request.get_args(keep_blank_values=True)
    for name in ("last_seq", "last_ts"):
        value = args.get(name)
        if value is not None and not (value.isascii() and value.isdigit()):
            problems[name] = [f"The {name} must be a whole number of at least 0."]
    epoch = args.get("epoch")
    if epoch is not None and not _EPOCH.fullmatch(epoch):
        problems["epoch"] = ["The epoch must be 1 to 64 letters, digits, - or _."]
    for name in ("ticket", "last_event_id"):
        if len(args.get(name) or "") > 100:
            problems[name] = [f"The {name} may not be greater than 100 characters."]
    if problems:
        raise Invalid("The given data was invalid.", problems)


def resume_of(epoch, last_seq, last_ts) -> Resume | None:
    """Where a client says it stopped, from a frame or query values; None unless epoch and seq make sense."""
    try:
        seq = int(last_seq)
        ts = int(last_ts) if last_ts not in (None, "") else None
    except (TypeError, ValueError):
        return None
    if not isinstance(epoch, str) or not _EPOCH.fullmatch(epoch) or seq < 0:
        return None
    return Resume(epoch, seq, ts)


def _query_resume(request) -> Resume | None:
    args = request.args
    return resume_of(args.get("epoch"), args.get("last_seq"), args.get("last_ts"))


def _sse_resume(request) -> Resume | None:
    """Last-Event-ID (or ?last_event_id=) is `<epoch>:<seq>`, the id of the last event received."""
    last = request.headers.get("last-event-id") or request.args.get("last_event_id") or ""
    epoch, _, seq = last.partition(":")
    return resume_of(epoch, seq, request.args.get("last_ts"))


async def _upgrade_caller(request, hub, guests: bool) -> callers.Caller | None:
    if "ticket" in request.args:
        return await callers.by_ticket(hub.redis, hub.keys, request.args.get("ticket"))
    return callers.by_headers(request.headers, guests=guests)


def text_frame(payload: bytes) -> bytes:
    """An unfragmented, unmasked WebSocket text frame (RFC 6455 section 5.2), as a server sends one."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


class WebSocketSink:
    """Frames of a connection as WebSocket text messages."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, item) -> None:
        await self.ws.send(item.text)

    def send_now(self, text: str) -> bool:
        """Write a frame at once if that needs no wait: the connection open, no send of Sanic's own in
        progress (a ping, a close), the transport not pushing back, no extension (compression) that would
        change the frame. False: send it the usual way.

        This is what Sanic's `ws.send` does (sanic/server/websockets/impl.py, pinned in requirements.txt),
        without its lock and awaits and with the frame built here (a server's frames are not masked: a
        header, then the text), which cost a fan-out to thousands more than the writes themselves."""
        ws = self.ws
        io = ws.io_proto
        if (ws.conn_mutex.locked() or ws.ws_proto.state is not WS_OPEN or ws.ws_proto.extensions or io is None
                or io.transport is None or io.transport.is_closing() or not io._can_write.is_set()):
            return False
        io.transport.write(text_frame(text.encode()))
        return True

    async def close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code, reason), 2)
        except asyncio.TimeoutError:  # its sends are stuck behind a client that does not read
            self.ws.fail_connection(code, reason)


class EventStreamSink:
    """Frames of a connection as server-sent events: `id: <epoch>:<seq>` on stored events."""

    def __init__(self, response):
        self.response = response

    async def send(self, item) -> None:
        lines = f"id: {item.epoch}:{item.seq}\n" if item.seq is not None else ""
        await self.response.send(f"{lines}event: {item.kind}\ndata: {item.text}\n\n")

    def send_now(self, text: str) -> bool:
        return False  # a streaming response sends through its own protocol

    async def heartbeat(self) -> None:
        await self.response.send(": heartbeat\n\n")

    async def close(self, code: int, reason: str) -> None:
        """Nothing here: the handler, which the writer's end wakes, sends the `close` event."""


class CollectingSink(EventStreamSink):
    """Server-sent events kept for one finite answer."""

    def __init__(self):
        self.chunks: list[str] = []
        super().__init__(self._Chunks(self.chunks))

    class _Chunks:
        def __init__(self, chunks: list[str]):
            self.chunks = chunks

        async def send(self, text: str) -> None:  # as a streaming response's
            self.chunks.append(text)


def _close_code(error: DomainError) -> int:
    return FORBIDDEN if isinstance(error, Forbidden) else AUTH_FAILED


def _connection(hub, caller: callers.Caller, dialect: str, sink, resume, idle_send=None) -> Connection:
    return Connection(user_id=caller.user.id, dialect=dialect, sink=sink, streams=hub.streams, config=hub.config,
                      resume=resume, token_id=caller.token_id, guest_id=caller.guest_id, idle_send=idle_send)


def blueprint(dialect: str, prefix: str) -> Blueprint:
    """The dialect's realtime routes under `prefix` (its API prefix)."""
    bp = Blueprint(f"realtime_{dialect}", url_prefix=prefix + "/realtime")
    guests = dialect == render.ROSETTA

    @bp.on_request
    async def plain_get(request):
        """A GET on the WebSocket route that is no upgrade answers as a snapshot does (see `snapshot`)."""
        if getattr(request.route.extra, "websocket", False):
            check_query(request)
            if not is_upgrade(request):
                return await snapshot(request)
            check_handshake(request)

    async def snapshot(request):
        """For a client that neither upgrades nor streams (curl, a poller): the opening frames of a session
        (hello, then the replay or resync_required) as a finite text/event-stream; live events need a stream."""
        hub = request.app.ctx.realtime
        caller = await _upgrade_caller(request, hub, guests)
        if caller is None:
            raise Unauthenticated("A bearer token, a guest token or a ticket is required.")
        sink = CollectingSink()
        conn = _connection(hub, caller, dialect, sink, _sse_resume(request) or _query_resume(request))
        await conn.start_only()
        return HTTPResponse("".join(sink.chunks), content_type="text/event-stream; charset=utf-8",
                            headers={"Cache-Control": "no-store"})

    async def websocket(request, ws):
        hub = request.app.ctx.realtime
        resume = _query_resume(request)
        try:
            caller = await _upgrade_caller(request, hub, guests)
            if caller is None:
                frame = _frame(await ws.recv(timeout=hub.config.auth_timeout_s))
                if frame is None or frame.get("type") != "auth":
                    raise Unauthenticated("No auth frame in time.")
                caller = callers.by_token(frame.get("token"), guests=guests)
                resume = resume_of(frame.get("epoch"), frame.get("last_seq"), frame.get("last_ts")) or resume
        except DomainError as e:
            await ws.close(_close_code(e), "auth_failed" if _close_code(e) == AUTH_FAILED else "forbidden")
            return
        conn = _connection(hub, caller, dialect, WebSocketSink(ws), resume)
        _limit_send_buffer(request, hub.config.socket_send_buffer_bytes)
        try:
            hub.add(conn)
        except TooManyConnections:
            await ws.close(RATE_LIMITED, "rate_limited")
            return
        conn.writer = asyncio.create_task(conn.run())
        try:
            await _read_frames(ws, conn, caller, hub)
            await conn.closed_down()
        finally:
            hub.remove(conn)
            conn.writer.cancel()

    async def events(request):
        hub = request.app.ctx.realtime
        check_query(request)
        caller = await _upgrade_caller(request, hub, guests)
        if caller is None:
            raise Unauthenticated("A bearer token, a guest token or a ticket is required.")
        if "text/event-stream" not in request.headers.get("accept", ""):
            return await snapshot(request)  # not an EventSource: a stream would never end for it
        response = await request.respond(headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                                         content_type="text/event-stream; charset=utf-8")
        sink = EventStreamSink(response)
        conn = _connection(hub, caller, dialect, sink, _sse_resume(request), idle_send=sink.heartbeat)
        _limit_send_buffer(request, hub.config.socket_send_buffer_bytes)
        try:
            hub.add(conn)
        except TooManyConnections:
            await response.send(_close_event(RATE_LIMITED, "rate_limited"))
            return
        conn.writer = asyncio.create_task(conn.run())
        try:
            await conn.writer
            if conn.closed:
                await asyncio.wait_for(response.send(_close_event(*conn.closed)), 1)
        except asyncio.TimeoutError:
            pass
        finally:
            hub.remove(conn)
            conn.writer.cancel()

    async def tickets(request):
        hub = request.app.ctx.realtime
        caller = callers.Caller(request.ctx.user, token_id=request.ctx.token.id if request.ctx.token else None,
                                guest_id=getattr(request.ctx, "guest", None) and request.ctx.guest.id)
        ticket = await callers.issue_ticket(hub.redis, hub.keys, caller, hub.config.ticket_ttl_s)
        body = {"ticket": ticket, "expires_in": hub.config.ticket_ttl_s}
        return json_response({"data": body} if guests else body, status=201)

    if guests:
        from handlers.rosetta.guard import signed_in
        tickets = signed_in(tickets, guest=True)
    else:
        from handlers.auth import authenticated
        tickets = authenticated(tickets)
    bp.add_websocket_route(websocket, "", name="websocket")
    bp.add_route(events, "/events", methods=["GET"], name="events")
    bp.add_route(tickets, "/tickets", methods=["POST"], name="tickets")
    return bp


def _limit_send_buffer(request, size: int) -> None:
    """Cap the kernel's send buffer of this connection (realtime.socket_send_buffer_bytes), so a client
    that stops reading holds up its sends, and is closed 4008, before megabytes pile up for it."""
    sock = request.transport.get_extra_info("socket") if size > 0 else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        except OSError as e:
            logger.debug("Could not set SO_SNDBUF of a realtime connection: %s", e)


def _close_event(code: int, reason: str) -> str:
    return f"event: close\ndata: {json.dumps({'type': 'close', 'code': code, 'reason': reason})}\n\n"


def _frame(raw) -> dict | None:
    if raw is None:
        return None
    try:
        frame = json.loads(raw)
    except ValueError:
        return None
    return frame if isinstance(frame, dict) else None


async def _read_frames(ws, conn: Connection, caller: callers.Caller, hub) -> None:
    """The client's frames until it goes: ping, typing, resume; more than client_frames_max within
    client_frames_window_s closes it 4029."""
    loop, config = asyncio.get_running_loop(), hub.config
    window_start, count = loop.time(), 0
    while not conn.closed:
        raw = await ws.recv()
        if raw is None:
            return
        now = loop.time()
        if now - window_start > config.client_frames_window_s:
            window_start, count = now, 0
        count += 1
        if count > config.client_frames_max:
            conn.close(RATE_LIMITED, "rate_limited")
            return
        frame = _frame(raw) or {}
        kind = frame.get("type")
        if kind == "ping":
            conn.send_control("pong", {})
        elif kind == "typing":
            await _typing(frame, conn, caller, hub, now)
        elif kind == "resume":
            resume = resume_of(frame.get("epoch"), frame.get("last_seq"), frame.get("last_ts"))
            if resume is None:
                conn.send_control("error", {"message": "resume needs epoch and last_seq."})
            else:
                conn.restart(resume)
        elif kind != "auth":
            conn.send_control("error", {"message": "Unknown frame; send ping, typing or resume."})


async def _typing(frame: dict, conn: Connection, caller: callers.Caller, hub, now: float) -> None:
    """typing.started to the channel's other readers, at most one a typing_min_interval_s; never stored."""
    if now - conn.typing_at < hub.config.typing_min_interval_s:
        return
    channel_id = render.parse_id(frame.get("channel_id"))
    channel = Channel.get_or_none(Channel.id == channel_id) if channel_id else None
    readers = rt.readers(channel) if channel else {}
    if caller.user.id not in readers:
        conn.send_control("error", {"message": "No such channel among those you read."})
        return
    conn.typing_at = now
    thread_id = render.parse_id(frame.get("thread_id"))
    at = now_ms()
    event = {"id": f"{rt.TYPING_STARTED}:{channel.id.hex}:{caller.user.id}:{at}", "type": rt.TYPING_STARTED,
             "ts": at, "data": {"channel_id": channel.id.hex, "workspace_id": channel.workspace_id.hex
                                if channel.workspace_id else None, "direct": channel.kind == "direct",
                                "thread_id": thread_id.hex if thread_id else None,
                                "user": rt.user_of(caller.user, "guest" if caller.guest_id else "user"),
                                "expires_at": at + int(hub.config.typing_ttl_s * 1000)}}
    await hub.publish_typing(event, [user_id for user_id in readers if user_id != caller.user.id])

