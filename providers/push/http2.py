"""A lean HTTP/2 client for the gateways' send requests (FCM, APNs): one connection, many streams, on h2
and an asyncio protocol, as aioapns and h2's own asyncio examples do.

Why not httpx: over HTTP/2 httpx/httpcore cost ~3 ms of CPU a request on a 2-CPU machine (request
models, anyio locks and cancel scopes around every frame), so a push worker's event loop stalled for
tens of milliseconds around each wave of answers. Here a request is one HEADERS and one DATA frame
written with the others of its loop turn, and its answer is read by the protocol's callback, with
no task or lock of its own.

What it does: TLS with ALPN "h2" and the trust store httpx uses (SSL_CERT_FILE, SSL_CERT_DIR, else
certifi), prior-knowledge h2c for http:// URLs; one connection made on first use and again when it
dies; at most `max_in_flight` streams and no more than the peer's SETTINGS_MAX_CONCURRENT_STREAMS
(a request waits for a free one); flow control both ways; GOAWAY (the streams the peer did not take
fail, the others may finish, new requests go on a new connection); an idle connection closed after
`idle_s`. A request that gets no answer raises a `TransportError` (the caller may send it again);
a cancelled one (the caller's `asyncio.timeout`) resets its own stream only. It logs nothing: paths
carry device tokens (APNs).
"""

from __future__ import annotations

import asyncio
import collections
import http
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import httpx

# Outbound headers are built here, lower-case and valid: h2 checking them again cost a tenth of a request.
_CONFIG = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False,
                                    normalize_outbound_headers=False)
#: What the connection's receive window grows by at once: answers never wait on our WINDOW_UPDATEs.
_RECEIVE_WINDOW = 2**24


class TransportError(Exception):
    """The request got no answer; whether the gateway acted on it is not known (or, for GoAway, it did not)."""


class ConnectError(TransportError):
    """No connection: refused, TLS failed, or the peer does not speak HTTP/2."""


class ConnectionLost(TransportError):
    """The connection closed or broke before the answer came."""


class StreamReset(TransportError):
    """The peer reset the request's stream."""


class GoAway(TransportError):
    """The peer's GOAWAY said it did not take this stream."""


class _Moved(Exception):
    """The connection stopped taking streams before this request had one: it goes on the next connection."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def reason_phrase(self) -> str:
        """The status's standard phrase (HTTP/2 carries none), as httpx gives it."""
        try:
            return http.HTTPStatus(self.status).phrase
        except ValueError:
            return ""


class Client:
    """Requests to one origin over one HTTP/2 connection at a time. Use it on one event loop."""

    def __init__(self, base_url: str, *, max_in_flight: int, idle_s: float, connect_timeout_s: float):
        url = urlsplit(base_url)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise ValueError(f"{base_url!r} is not an https:// or http:// URL")
        self.scheme, self.host = url.scheme, url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.authority = self.host if url.port is None else f"{self.host}:{url.port}"
        self.prefix = url.path.rstrip("/")
        self.max_in_flight, self.idle_s, self.connect_timeout_s = max_in_flight, idle_s, connect_timeout_s
        self.ssl = _ssl_context() if url.scheme == "https" else None
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task | None = None

    async def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> Response:
        """The answer to one request; `path` goes after the base URL's path. TransportError without one."""
        head = [(":method", method), (":scheme", self.scheme), (":authority", self.authority),
                (":path", self.prefix + path), *headers]
        while True:
            connection = self._connection
            if connection is None or not connection.taking:
                connection = await self._connect()
            try:
                return await connection.request(head, body)
            except _Moved:
                continue

    async def aclose(self) -> None:
        """Close the connection; requests still on it fail with ConnectionLost."""
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            await self._connection.close(ConnectionLost("the client was closed"))

    async def _connect(self) -> _Connection:
        """The connection being made, shared by every request that waits for it."""
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._open())
            self._connecting.add_done_callback(_retrieved)
        return await asyncio.shield(self._connecting)

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        connection = _Connection(self, loop)
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                await loop.create_connection(lambda: connection, self.host, self.port, ssl=self.ssl,
                                             server_hostname=self.host if self.ssl else None)
                await connection.ready  # the peer's SETTINGS: how many streams it takes
            self._connection = connection
            return connection
        except OSError as e:  # ssl.SSLError and refusals are OSErrors
            connection.abort()
            raise ConnectError(f"cannot connect to {self.authority}: {e.strerror or type(e).__name__}") from None
        except BaseException:
            connection.abort()
            raise
        finally:
            self._connecting = None

    def _forget(self, connection: _Connection) -> None:
        if self._connection is connection:
            self._connection = None


class _Stream:
    __slots__ = ("done", "status", "headers", "body", "window")

    def __init__(self, done: asyncio.Future):
        self.done = done  # the Response, or the TransportError
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.window: asyncio.Future | None = None  # set while the body waits for the peer's window


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection: its streams, the requests waiting for one, and the bytes both ways."""

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop):
        self.client, self.loop = client, loop
        self.h2 = h2.connection.H2Connection(_CONFIG)
        self.h2.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: 0, h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100})
        del self.h2.local_settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL]  # as httpcore: some balk at it
        self.transport: asyncio.Transport | None = None
        self.ready = loop.create_future()
        self.ready.add_done_callback(_retrieved)
        self.closed = loop.create_future()
        self.taking = True  # new streams may open on it
        self.streams: dict[int, _Stream] = {}
        self.reserved = 0  # streams open, and free ones handed to a waiting request
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self._flushing = False
        self._idle_since: float | None = None
        self._idle_timer: asyncio.TimerHandle | None = None

    # Requests.

    async def request(self, head: list[tuple[str, str]], body: bytes) -> Response:
        await self._stream_slot()
        if not self.taking:  # it went away while this request waited for its turn to run
            self._release()
            raise _Moved
        try:
            stream_id = self.h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:  # 2**30 streams in: the rest go on a new connection
            self.taking = False
            self.client._forget(self)
            self._release()
            raise _Moved from None
        stream = self.streams[stream_id] = _Stream(self.loop.create_future())
        try:
            self.h2.send_headers(stream_id, head, end_stream=not body)
        except h2.exceptions.H2Error as e:  # the peer lowered its stream limit meanwhile, say
            self._cancel(stream_id)
            raise StreamReset(f"the stream could not open ({type(e).__name__})") from None
        try:
            if body:
                await self._send_body(stream_id, stream, body)
            self._flush_soon()
            return await stream.done
        except asyncio.CancelledError:
            self._cancel(stream_id)
            raise
        except h2.exceptions.H2Error as e:  # h2 refused a DATA frame: the peer closed the stream or connection
            self._cancel(stream_id)
            raise StreamReset(f"the request could not be sent ({type(e).__name__})") from None

    async def _stream_slot(self) -> None:
        """Wait for a stream this connection may open; _Moved when it stops taking them meanwhile."""
        if not self.taking:
            raise _Moved
        if self.reserved < self._capacity() and not self.waiting:
            self._reserve()
            return
        waiter = self.loop.create_future()
        self.waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a stream as it was cancelled: pass it on
                self._release()
            else:
                self.waiting.remove(waiter)
            raise

    def _capacity(self) -> int:
        return min(self.client.max_in_flight, self.h2.remote_settings.max_concurrent_streams)

    def _reserve(self) -> None:
        self.reserved += 1
        if self._idle_timer is not None:
            self._idle_since = None

    def _release(self) -> None:
        self.reserved -= 1
        self._wake()
        if self.reserved == 0:
            if not self.taking:
                self._shut()
            elif self._idle_timer is None:
                self._idle_since = self.loop.time()
                self._idle_timer = self.loop.call_later(self.client.idle_s, self._close_if_idle)
            else:
                self._idle_since = self.loop.time()

    def _wake(self) -> None:
        """Hand the free streams to the requests waiting, oldest first; all move on if it takes no more."""
        while self.waiting and (not self.taking or self.reserved < self._capacity()):
            waiter = self.waiting.popleft()
            if waiter.done():
                continue
            if self.taking:
                self._reserve()
                waiter.set_result(None)
            else:
                waiter.set_exception(_Moved())

    async def _send_body(self, stream_id: int, stream: _Stream, body: bytes) -> None:
        """Send `body` as the peer's windows and frame size allow, waiting for WINDOW_UPDATEs between."""
        sent = 0
        while sent < len(body):
            if stream.done.done():  # answered or failed before the whole body went
                return
            size = min(self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size,
                       len(body) - sent)
            if size > 0:
                self.h2.send_data(stream_id, body[sent:sent + size], end_stream=sent + size == len(body))
                sent += size
                continue
            stream.window = self.loop.create_future()
            self._flush_soon()
            await stream.window
            stream.window = None

    def _cancel(self, stream_id: int) -> None:
        """The caller gave up: reset that stream only."""
        if self.streams.pop(stream_id, None) is None:
            return
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.H2Error:  # the peer closed it meanwhile
                pass
            self._flush_soon()
        self._release()

    def _finish(self, stream_id: int, outcome: Response | TransportError) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        if not stream.done.done():
            if isinstance(outcome, Response):
                stream.done.set_result(outcome)
            else:
                stream.done.set_exception(outcome)
        if stream.window is not None and not stream.window.done():
            stream.window.set_result(None)
        self._release()

    # What the peer sends.

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() != "h2":
            self.ready.set_exception(ConnectError(f"{self.client.authority} does not speak HTTP/2"))
            transport.abort()
            return
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(_RECEIVE_WINDOW)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self._flush()  # h2's GOAWAY saying why
            self._lose(ConnectionLost(f"the peer broke HTTP/2 ({type(e).__name__})"))
            return
        for event in events:
            handle = _HANDLERS.get(type(event))
            if handle is not None:
                handle(self, event)
        self._flush()

    def _on_response(self, event: h2.events.ResponseReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            for name, value in event.headers:
                if name == b":status":
                    stream.status = int(value)
                else:
                    stream.headers[name.decode("latin-1")] = value.decode("latin-1")

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.body.append(event.data)
        self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)

    def _on_end(self, event: h2.events.StreamEnded) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            self._finish(event.stream_id, Response(stream.status, stream.headers, b"".join(stream.body)))
            state = self.h2.streams.get(event.stream_id)
            if state is not None and not state.closed:  # answered before the whole body went: end our half
                self.h2.reset_stream(event.stream_id, h2.errors.ErrorCodes.NO_ERROR)

    def _on_reset(self, event: h2.events.StreamReset) -> None:
        code = event.error_code
        self._finish(event.stream_id, StreamReset(f"the peer reset the stream ({getattr(code, 'name', code)})"))

    def _on_window(self, event: h2.events.WindowUpdated) -> None:
        self._open_windows(self.streams.values() if event.stream_id == 0 else [self.streams.get(event.stream_id)])

    @staticmethod
    def _open_windows(streams) -> None:
        for stream in streams:
            if stream is not None and stream.window is not None and not stream.window.done():
                stream.window.set_result(None)

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        if not self.ready.done():
            self.ready.set_result(None)
        if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
            self._open_windows(self.streams.values())
        self._wake()

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        """RFC 9113 §6.8: streams above last_stream_id were not taken; the others may still finish."""
        self.taking = False
        self.client._forget(self)
        code = getattr(event.error_code, "name", event.error_code)
        for stream_id in [s for s in self.streams if s > event.last_stream_id]:
            self._finish(stream_id, GoAway(f"the peer went away ({code}) without taking the stream"))
        self._wake()
        if self.streams:
            # h2 closes its state machine on GOAWAY and would refuse those streams' answers
            # (python-hyper/h2#1181); it opens no new stream here, taking is off.
            self.h2.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        elif self.reserved == 0:
            self._shut()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(ConnectionLost(f"the connection was lost ({type(exc).__name__ if exc else 'closed'})"))
        if not self.closed.done():
            self.closed.set_result(None)

    # The connection's life.

    def _lose(self, error: TransportError) -> None:
        """Fail everything on the connection with `error`; the client makes a new one for what comes next."""
        self.taking = False
        self.client._forget(self)
        if not self.ready.done():
            self.ready.set_exception(ConnectError(str(error)))
        for stream_id in list(self.streams):
            self._finish(stream_id, error)
        self._wake()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self.transport is not None:
            self.transport.abort()

    def _close_if_idle(self) -> None:
        self._idle_timer = None
        if self.reserved or self._idle_since is None:
            return
        left = self._idle_since + self.client.idle_s - self.loop.time()
        if left > 0:
            self._idle_timer = self.loop.call_later(left, self._close_if_idle)
            return
        self.taking = False
        self.client._forget(self)
        self._shut()

    def _shut(self) -> None:
        """Say GOAWAY and close, once nothing is in flight."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.h2.close_connection()
            except h2.exceptions.ProtocolError:  # it is closed already
                pass
            self._flush()
            self.transport.close()

    async def close(self, error: TransportError) -> None:
        """Close now, failing what is in flight; wait briefly for TLS's goodbye."""
        self.taking = False
        self.client._forget(self)
        for stream_id in list(self.streams):
            self._finish(stream_id, error)
        self._wake()
        self._shut()
        if self.transport is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), 1)
            except TimeoutError:
                self.transport.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _flush_soon(self) -> None:
        """Write at the end of this loop turn: the requests a wave of answers lets go leave in one write."""
        if not self._flushing:
            self._flushing = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


_HANDLERS = {
    h2.events.ResponseReceived: _Connection._on_response,
    h2.events.DataReceived: _Connection._on_data,
    h2.events.StreamEnded: _Connection._on_end,
    h2.events.StreamReset: _Connection._on_reset,
    h2.events.WindowUpdated: _Connection._on_window,
    h2.events.RemoteSettingsChanged: _Connection._on_settings,
    h2.events.ConnectionTerminated: _Connection._on_goaway,
}


def _ssl_context() -> ssl.SSLContext:
    """What httpx would verify with (SSL_CERT_FILE, SSL_CERT_DIR, else certifi's bundle), offering h2 only."""
    context = httpx.create_ssl_context()
    context.set_alpn_protocols(["h2"])
    return context


def _retrieved(future: asyncio.Future) -> None:
    """Mark a connect's failure as seen: every request that waited for it has raised it already."""
    if not future.cancelled():
        future.exception()
