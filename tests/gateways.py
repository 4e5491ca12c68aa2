"""Local push gateways for tests and benchmarks: the real wire protocols over TLS and HTTP/2, in a thread.

One server per gateway Sector's push workers speak (providers/push/):

- `FakeFCM`: Firebase Cloud Messaging HTTP v1 (firebase.google.com/docs/reference/fcm/rest/v1/
  projects.messages/send, errors as .../rest/v1/ErrorCode lists them, in Google's error shape), and
  Google's OAuth 2.0 token endpoint for service accounts (developers.google.com/identity/protocols/
  oauth2/service-account, "Making the access token request"): `POST /token`,
  `POST /v1/projects/<project>/messages:send`.
- `FakeAPNs`: Apple's provider API (developer.apple.com: "Sending notification requests to APNs",
  "Establishing a token-based connection to APNs", "Handling notification responses from APNs", whose
  table of reasons and statuses `APNS_REASONS` copies): `POST /3/device/<token>`, HTTP/2 only.
- `FakeExpo`: Expo's push API as docs.expo.dev/push/sending-notifications/ and the reference client
  (github.com/expo/expo-server-sdk-node, src/ExpoClient.ts) describe it: `POST /--/api/v2/push/send`
  (at most 100 messages), `POST /--/api/v2/push/getReceipts` (at most 1000 ids).

Each runs hypercorn on an asyncio loop of its own, in a thread, on 127.0.0.1 and a free port, with TLS
(ALPN: h2, http/1.1) from a throwaway `CertificateAuthority`: clients trust its ca.pem through
SSL_CERT_FILE (which `env()` sets) or `verify=ca.ssl_context()`. Request handling is small and its
waits never block the loop, so thousands of requests overlap on it. With `server="h2"` a fake runs on
a bare HTTP/2 server instead (h2 on an asyncio protocol, ALPN h2 only, `tls=False` for h2c), which can
be told to announce fewer streams (`max_streams`, either server), say GOAWAY or drop the connection
mid-burst, and costs less CPU: on the 2-core machine these were written on, bench/push_fanout.py's
gateways used ~1 ms of CPU a send request on hypercorn, ~0.7 ms on the bare server, and answered 16 of
a worker's 16 streams at any time where hypercorn's added latency left 15 (Expo's requests carry 100
notifications each).

Scripting, the same for all three:
- `behaviour[token] = name`: what a send to that device token answers; each fake lists its names, and
  tokens not in it succeed. "stall" answers only after `stall_s`.
- `fail_next(times, status, retry_after=None)`: the next `times` send requests answer `status` with the
  gateway's own error body for it (and `Retry-After`, if given); `answer_next(times, status, body)`
  makes them answer exactly that, malformed or not.
- `delay_s`: every send request answers this much later. A fake that stops answers the requests it
  still holds with its 503.
- `expire_tokens()` (FCM and APNs): the credentials the client holds now, FCM access tokens or APNs
  provider tokens, are refused from now on as expired, so it must get or make new ones.
- `goaway_after(n)`, `drop_after(n)` (server="h2"): after the next n requests, the connection they came
  on says GOAWAY (answering those it took) or is cut.
- Records: `received` (a `Received` per send request, oldest first: path, headers, parsed body, HTTP
  version, arrival time, device tokens, the connection's peer address, and the reply), `in_flight`,
  `max_in_flight`; `reset()` forgets them and the script.

Every fake: `start()`/`stop()` or `with`, `url` (the base URL Sector is configured with) and `env()`
(the SECTOR_PUSH_* variables and SSL_CERT_FILE that point a Sector worker at it). `Gateways` runs the
three with one CA and merges their env.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import re
import secrets
import shutil
import socket
import ssl
import string
import tempfile
import threading
import time
import traceback
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hyperframe.frame import GoAwayFrame
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config as HypercornConfig, Sockets
from hypercorn.utils import wrap_app

logger = logging.getLogger(__name__)


# TLS ----------------------------------------------------------------------------------------------

class CertificateAuthority:
    """A throwaway CA, and a server certificate it signed for 127.0.0.1 and localhost, in a temp dir."""

    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="sector-gateways-"))
        now = dt.datetime.now(dt.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sector test gateways CA")])
        ca_cert = (_certificate(ca_name, ca_name, ca_key.public_key(), now)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(_key_usage(cert_sign=True), critical=True)
                   .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        cert = (_certificate(name, ca_name, key.public_key(), now)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_key_usage(cert_sign=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_file = self._write("ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM))
        self.cert_file = self._write("server.pem", cert.public_bytes(serialization.Encoding.PEM))
        self.key_file = self._write("server-key.pem", _pkcs8(key))

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only."""
        return ssl.create_default_context(cafile=self.ca_file)

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _write(self, name: str, data: bytes) -> str:
        path = self.directory / name
        path.write_bytes(data)
        return str(path)


def _certificate(subject, issuer, public_key, now) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _pkcs8(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# What every fake shares -----------------------------------------------------------------------------

@dataclass
class Request:
    method: str
    path: str  # as sent, percent-escapes and all
    headers: dict[str, str]  # lower-cased names
    raw: bytes
    http_version: str  # "2" or "1.1"
    receive: Callable = field(repr=False)  # the ASGI receive: after the body, only http.disconnect comes
    peer: str = ""  # the client's host:port: which connection it came on

    def json(self):
        """The parsed body; None when it is not JSON."""
        try:
            return json.loads(self.raw)
        except ValueError:
            return None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, data, headers: dict | None = None) -> Reply:
    return Reply(status, json.dumps(data).encode(), {"content-type": "application/json", **(headers or {})})


@dataclass
class Received:
    """One send request as the gateway saw it, and what it answered."""

    path: str
    headers: dict[str, str]  # lower-cased names
    body: object  # the parsed JSON, None if it was not JSON
    http_version: str  # "2" or "1.1"
    time: float  # time.monotonic() when it came
    tokens: list[str]  # the device tokens it is for: one for FCM and APNs, up to 100 for Expo
    reply: Reply | None = None  # what the gateway answered, once it did
    peer: str = ""  # the client's host:port: which connection it came on
    answered: float | None = None  # time.monotonic() when it answered

    @property
    def status(self) -> int | None:
        return self.reply.status if self.reply else None

    def answer(self):
        """The parsed JSON of the reply's body; None when it had none."""
        return json.loads(self.reply.body) if self.reply and self.reply.body else None

    @property
    def token(self) -> str | None:
        return self.tokens[0] if self.tokens else None


class _Listener(socket.socket):
    """A listening socket that keeps what it accepts, so that stop() can cut connections a client left
    open: hypercorn would wait on their TLS goodbye for asyncio's 30 s."""

    def __init__(self):
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.accepted: weakref.WeakSet[socket.socket] = weakref.WeakSet()

    def accept(self):
        connection, address = super().accept()
        self.accepted.add(connection)
        return connection, address

    def cut(self) -> None:
        for connection in list(self.accepted):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # closed already
                pass


class FakeGateway:
    """Hypercorn on a loop in a thread, the record of send requests, and the script."""

    def __init__(self, ca: CertificateAuthority | None = None, *, delay_s: float = 0.0, stall_s: float = 30.0,
                 server: str = "hypercorn", max_streams: int = 1000, tls: bool = True):
        self._own_ca = ca is None
        self.ca = ca or CertificateAuthority()
        self.delay_s, self.stall_s = delay_s, stall_s
        #: "hypercorn", or "h2": the bare server below (HTTP/2 only), which goaway_after, drop_after and
        #: tls=False (prior-knowledge h2c, as http:// URLs get) need.
        self.server, self.tls = server, tls
        #: SETTINGS_MAX_CONCURRENT_STREAMS it announces to connections made from now on; 1000 is what APNs
        #: allows a connection.
        self.max_streams = max_streams
        self._connection_script: list[tuple[int, str]] = []  # (requests to let in first, "goaway" or "drop")
        self._defaults = (delay_s, stall_s, max_streams)
        self.behaviour: dict[str, str] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self._received: list[Received] = []
        self._scripted: list[Callable[[], Reply]] = []  # the next send requests' answers
        self._lock = threading.Lock()
        # Listening before the loop runs: a client that comes early waits in the backlog. Hypercorn sets
        # no TCP_NODELAY on a socket it is handed; accepted ones inherit this one's.
        self._socket = _Listener()
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(1024)
        self.port = self._socket.getsockname()[1]
        self.origin = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.origin

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    # Life.

    def start(self):
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True,
                                        name=f"{type(self).__name__}:{self.port}")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def stop(self) -> None:
        """Stop serving: requests it holds answer 503, connections still open are cut. Forget the CA it made."""
        if self._thread is None:
            self._socket.close()
        elif self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(1)  # hypercorn's half second of grace, and its answers
            self._socket.cut()
            self._thread.join(10)
        if self._own_ca:
            self.ca.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _serve(self, ready: threading.Event) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._loop.set_exception_handler(self._unless_stopping)
        if self.server == "h2":
            await _serve_h2(self, ready)
            return
        config = HypercornConfig()
        config.certfile, config.keyfile = self.ca.cert_file, self.ca.key_file
        config.h2_max_concurrent_streams = self.max_streams
        config.graceful_timeout = 0.5
        # Gateways keep idle connections open for long (APNs: "leave a connection open"); hypercorn's 5 s
        # default would close them between two tests, and a send racing the close fails with it.
        config.keep_alive_timeout = 600
        config.keep_alive_max_requests = 2**62  # hypercorn says GOAWAY after 1000 requests; Apple and Google do not
        config.errorlog = logger
        ready.set()
        # hypercorn.asyncio.serve(), given our own socket (it would make one of its own from a bind).
        await worker_serve(wrap_app(self._app, config.wsgi_max_body_size, "asgi"), config,
                           sockets=Sockets([self._socket], [], []), shutdown_trigger=self._stopping.wait)

    def _unless_stopping(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """asyncio's report of an error in a callback, except while stopping: hypercorn's teardown of cut
        connections raises in them, and that is no news."""
        if not self._stopping.is_set():
            loop.default_exception_handler(context)

    # What tests read and steer.

    @property
    def received(self) -> list[Received]:
        """Every send request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._received)

    def reset(self) -> None:
        """Forget the requests, the behaviours and failures not used yet; delays back to their defaults."""
        with self._lock:
            self._received.clear()
            self._scripted.clear()
            self._connection_script.clear()
            self.behaviour.clear()
            self.max_in_flight = self.in_flight
        self.delay_s, self.stall_s, self.max_streams = self._defaults

    def fail_next(self, times: int, status: int, retry_after: float | None = None) -> None:
        """The next `times` send requests answer `status` with the gateway's error body for it."""
        with self._lock:
            self._scripted += [lambda: self._failure(status, retry_after)] * times

    def answer_next(self, times: int, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """The next `times` send requests answer exactly this, right or wrong."""
        with self._lock:
            self._scripted += [lambda: Reply(status, body, dict(headers or {}))] * times

    def goaway_after(self, requests: int) -> None:
        """(server="h2") Once `requests` more requests came on a connection, it says GOAWAY with the last of
        them as its last_stream_id, answers those as usual, leaves any later stream on it unanswered
        (RFC 9113 §6.8: not processed) and closes once the ones it took are answered."""
        with self._lock:
            self._connection_script.append((requests, "goaway"))

    def drop_after(self, requests: int) -> None:
        """(server="h2") Once `requests` more requests came, the connection they came on is cut, unanswered."""
        with self._lock:
            self._connection_script.append((requests, "drop"))

    def _on_request(self) -> str | None:
        """What the bare server does after this request came: "goaway", "drop" or nothing."""
        with self._lock:
            if not self._connection_script:
                return None
            left, action = self._connection_script[0]
            if left > 1:
                self._connection_script[0] = (left - 1, action)
                return None
            self._connection_script.pop(0)
            return action

    # For each fake.

    async def route(self, request: Request) -> Reply | None:
        """The answer to a request; None for a send request whose client left while it was held."""
        raise NotImplementedError

    def failure(self, status: int) -> Reply:
        """The gateway's error answer with `status`, for fail_next."""
        raise NotImplementedError

    # The wire.

    async def send_request(self, request: Request, tokens: list[str],
                           answer: Callable[[], Reply]) -> Reply | None:
        """Record a send request, hold it as the script says, then answer it (`answer()` unless it fails)."""
        received = Received(request.path, request.headers, request.json(), request.http_version, time.monotonic(),
                            tokens, peer=request.peer)
        with self._lock:
            self._received.append(received)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            scripted = self._scripted.pop(0) if self._scripted else None
        try:
            stalled = any(self.behaviour.get(token) == "stall" for token in tokens)
            held = await self._hold(request, self.stall_s if stalled else self.delay_s)
            if held == "gone":
                return None
            if held == "stopping":
                reply = self.failure(503)  # what a gateway going down answers the requests it holds
            else:
                reply = (scripted or answer)()
            received.reply, received.answered = reply, time.monotonic()
            return reply
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _hold(self, request: Request, seconds: float) -> str:
        """Hold a request `seconds`: "answer" then, or "stopping" as soon as the fake begins to stop (hypercorn
        left to cancel it would tear it down with a traceback), or "gone" as soon as its client leaves
        (hypercorn would hold up its shutdown trying to send the answer)."""
        if seconds <= 0:
            return "answer"
        stopping, leaving = asyncio.ensure_future(self._stopping.wait()), asyncio.ensure_future(request.receive())
        done, pending = await asyncio.wait((stopping, leaving), timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return "gone" if leaving in done else "stopping" if stopping in done else "answer"

    def _failure(self, status: int, retry_after: float | None) -> Reply:
        reply = self.failure(status)
        if retry_after is not None:
            reply.headers["retry-after"] = f"{retry_after:g}"
        return reply

    async def answer(self, request: Request) -> Reply | None:
        """route(), and a 500 for a bug in the fake (said on stderr), as a gateway in trouble would answer."""
        try:
            return await self.route(request)
        except Exception:
            traceback.print_exc()
            return self.failure(500)

    async def _app(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            name, value = name.decode("latin-1").lower(), value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        path = scope["raw_path"].decode("latin-1").partition("?")[0]
        peer = ":".join(map(str, scope.get("client") or ()))
        reply = await self.answer(Request(scope["method"], path, headers, b"".join(chunks), scope["http_version"],
                                          receive, peer))
        if reply is None:  # the client left while its request was held
            return
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": [(k.encode(), v.encode()) for k, v in reply.headers.items()]})
        await send({"type": "http.response.body", "body": reply.body})


# A bare HTTP/2 server ----------------------------------------------------------------------------------

class _ServedStream:
    __slots__ = ("headers", "body", "gone", "window")

    def __init__(self, headers: dict[str, str], gone: asyncio.Future):
        self.headers, self.body, self.gone = headers, [], gone
        self.window: asyncio.Future | None = None


class _H2Server(asyncio.Protocol):
    """One connection to a fake with server="h2": h2 on an asyncio protocol and nothing else, so that a
    benchmark's gateways cost little CPU beside the clients they stand in front of, and so that tests can
    make it say GOAWAY or drop mid-burst, which hypercorn does not do on cue."""

    def __init__(self, fake: FakeGateway, connections: set):
        self.fake, self.connections = fake, connections
        self.loop = asyncio.get_running_loop()
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        self.streams: dict[int, _ServedStream] = {}
        self.last_stream_id: int | None = None  # once it said GOAWAY
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = ":".join(map(str, transport.get_extra_info("peername")[:2]))
        self.connections.add(self)
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.fake.max_streams})
        self.h2.initiate_connection()
        self._flush()

    def connection_lost(self, exc) -> None:
        self.connections.discard(self)
        for stream in self.streams.values():
            _resolve(stream.gone)
            _resolve(stream.window)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:  # the client broke the protocol: h2 says GOAWAY, and that is all
            self._flush()
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                if not self._took(event):
                    return
            elif isinstance(event, h2.events.DataReceived):
                if event.stream_id in self.streams:
                    self.streams[event.stream_id].body.append(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in self.streams:
                self.loop.create_task(self._answer(event.stream_id, self.streams[event.stream_id]))
            elif isinstance(event, h2.events.StreamReset) and event.stream_id in self.streams:
                _resolve(self.streams.pop(event.stream_id).gone)
            elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                for stream in self.streams.values():
                    _resolve(stream.window)
        self._flush()

    def _took(self, event: h2.events.RequestReceived) -> bool:
        """Take a new stream, unless it came after GOAWAY; False when the connection is cut."""
        if self.last_stream_id is not None and event.stream_id > self.last_stream_id:
            return True  # not processed: left unanswered, as GOAWAY said
        headers: dict[str, str] = {}
        for name, value in event.headers:
            name, value = name.decode("latin-1").lower(), value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.streams[event.stream_id] = _ServedStream(headers, self.loop.create_future())
        action = self.fake._on_request()
        if action == "drop":
            self.transport.abort()
            return False
        if action == "goaway":  # written by hand: h2 would refuse to answer the streams it still holds
            self._flush()
            self.last_stream_id = event.stream_id
            self.transport.write(GoAwayFrame(0, last_stream_id=event.stream_id, error_code=0).serialize())
        return True

    async def _answer(self, stream_id: int, stream: _ServedStream) -> None:
        headers = stream.headers

        async def receive():  # as ASGI's: after the body, only the disconnect comes
            await asyncio.shield(stream.gone)  # the fake cancels its wait for it, not the stream
            return {"type": "http.disconnect"}

        request = Request(headers.pop(":method", ""), headers.pop(":path", "").partition("?")[0],
                          {k: v for k, v in headers.items() if not k.startswith(":")}, b"".join(stream.body), "2",
                          receive, self.peer)
        reply = await self.fake.answer(request)
        if reply is None or stream.gone.done() or self.transport.is_closing():
            return
        self.h2.send_headers(stream_id, [(":status", str(reply.status)), *reply.headers.items(),
                                         ("content-length", str(len(reply.body)))], end_stream=not reply.body)
        sent = 0
        while sent < len(reply.body) and not stream.gone.done():
            size = min(self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size,
                       len(reply.body) - sent)
            if size > 0:
                self.h2.send_data(stream_id, reply.body[sent:sent + size], end_stream=sent + size == len(reply.body))
                sent += size
                continue
            stream.window = self.loop.create_future()
            self._flush()
            await stream.window
        self._flush()
        self.streams.pop(stream_id, None)
        if self.last_stream_id is not None and not any(s <= self.last_stream_id for s in self.streams):
            self.transport.close()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)


def _resolve(future: asyncio.Future | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


async def _serve_h2(fake: FakeGateway, ready: threading.Event) -> None:
    """Serve `fake` with _H2Server on its socket until it stops, then cut what is still open."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(fake.ca.cert_file, fake.ca.key_file)
    context.set_alpn_protocols(["h2"])
    connections: set[_H2Server] = set()
    server = await asyncio.get_running_loop().create_server(lambda: _H2Server(fake, connections),
                                                            sock=fake._socket, ssl=context if fake.tls else None)
    ready.set()
    await fake._stopping.wait()
    await asyncio.sleep(0.2)  # the held requests' 503s go out
    server.close()
    for connection in list(connections):
        connection.transport.abort()


# FCM -----------------------------------------------------------------------------------------------

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
FCM_SEND = re.compile(r"/v1/projects/([^/]+)/messages:send")
#: behaviour name: (HTTP status, canonical status, message, FcmError errorCode, BadRequest field).
FCM_ANSWERS = {
    "unregistered": (404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED", None),
    "sender-id-mismatch": (403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH", None),
    # As FCM's error codes page shows an invalid token: an FcmError detail, no BadRequest.
    "invalid-token": (400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                      "INVALID_ARGUMENT", None),
    "invalid-token-field": (400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                            None, "message.token"),
    # A 404 without FCM's UNREGISTERED: what a wrong project or a front end's own answer looks like.
    "not-found": (404, "NOT_FOUND", "Requested entity was not found.", None, None),
    "invalid-argument": (400, "INVALID_ARGUMENT",
                         "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration)",
                         "INVALID_ARGUMENT", "message.android.ttl"),
    "third-party-auth-error": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service",
                               "THIRD_PARTY_AUTH_ERROR", None),
    "quota-exceeded": (429, "RESOURCE_EXHAUSTED",
                       "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute'.",
                       "QUOTA_EXCEEDED", None),
    "internal": (500, "INTERNAL", "Internal error encountered.", "INTERNAL", None),
    "unavailable": (503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE", None),
}
#: The v1 Message's fields, by where they sit, as the proto names them (JSON may spell them lowerCamel).
FCM_FIELDS = {
    "message": {"name", "data", "notification", "android", "webpush", "apns", "fcm_options", "token", "topic",
                "condition"},
    "message.notification": {"title", "body", "image"},
    "message.android": {"collapse_key", "priority", "ttl", "restricted_package_name", "data", "notification",
                        "fcm_options", "direct_boot_ok"},
    "message.android.notification": {
        "title", "body", "icon", "color", "sound", "tag", "click_action", "body_loc_key", "body_loc_args",
        "title_loc_key", "title_loc_args", "channel_id", "ticker", "sticky", "event_time", "local_only",
        "notification_priority", "default_sound", "default_vibrate_timings", "default_light_settings",
        "vibrate_timings", "visibility", "notification_count", "light_settings", "image"},
    "message.apns": {"headers", "payload", "fcm_options", "live_activity_token"},
    "message.webpush": {"headers", "data", "notification", "fcm_options"},
}
UNAUTHENTICATED = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                   "or other valid authentication credential.")
SHORT_LIVED = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
               "Check your iat and exp values in the JWT claim.")


def google_error(status: int, canonical: str, message: str, error_code: str | None = None,
                 field_name: str | None = None) -> Reply:
    """Google's error shape, with FCM's FcmError detail and a BadRequest field violation when given."""
    error = {"code": status, "message": message, "status": canonical}
    details = [{"@type": FCM_ERROR, "errorCode": error_code}] if error_code else []
    if field_name:
        details.append({"@type": BAD_REQUEST, "fieldViolations": [{"field": field_name, "description": message}]})
    return json_reply(status, {"error": error | ({"details": details} if details else {})})


@dataclass
class TokenRequest:
    """One access token request: the assertion's header and claims, and what the endpoint answered."""

    assertion: str
    header: dict
    claims: dict
    status: int
    access_token: str | None = None  # the one it issued


class FakeFCM(FakeGateway):
    """FCM HTTP v1 and Google's token endpoint, for a service account the fake makes.

    `POST /token` (form: grant_type jwt-bearer, assertion) checks the assertion as Google does: RS256
    signed with the account's key, `kid` its private_key_id, iss its client_email, aud the token URL,
    scope firebase.messaging, exp at most an hour after iat and not past. It answers `{"access_token",
    "expires_in": token_expires_in, "token_type": "Bearer"}`, or `{"error": "invalid_grant",
    "error_description"}` (400). `token_requests` records each; `fail_token_next` scripts failures,
    `answer_token_next` exact answers.

    `POST /v1/projects/<project>/messages:send` wants `Authorization: Bearer <a token it issued, not
    expired>` (else 401 UNAUTHENTICATED) and the account's project (else 403 PERMISSION_DENIED), checks
    the message's field names (400 "Unknown name") and that data values are strings, then answers `{"name":
    "projects/<p>/messages/0:..."}` or, per `behaviour`, one of `FCM_ANSWERS`: unregistered,
    sender-id-mismatch, invalid-token, invalid-token-field, not-found, invalid-argument,
    third-party-auth-error, quota-exceeded, internal, unavailable (or stall). Any other path answers a
    plain 404 page, as Google's front end does.
    """

    project_id = "sector-test"

    def __init__(self, ca: CertificateAuthority | None = None, *, token_expires_in: int = 3599, **kwargs):
        super().__init__(ca, **kwargs)
        self.token_expires_in = self._default_expires_in = token_expires_in
        self.token_url = self.origin + "/token"
        self.client_email = f"sector-push@{self.project_id}.iam.gserviceaccount.com"
        self.private_key_id = secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.service_account_file = str(self.ca.directory / f"fcm-service-account-{self.port}.json")
        Path(self.service_account_file).write_text(json.dumps(self.service_account()))
        self.token_requests: list[TokenRequest] = []
        self._issued: dict[str, float] = {}  # access token: when it expires (monotonic)
        self._token_failures: list[tuple[int, float | None]] = []
        self._token_answers: list[Reply] = []
        self._messages = 0

    def service_account(self) -> dict:
        """The JSON key, as the Firebase console downloads it."""
        return {"type": "service_account", "project_id": self.project_id, "private_key_id": self.private_key_id,
                "private_key": _pkcs8(self._key).decode(), "client_email": self.client_email,
                "client_id": "100000000000000000001", "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": self.token_url, "universe_domain": "googleapis.com"}

    def env(self) -> dict[str, str]:
        return {"SECTOR_PUSH_FCM_URL": self.url, "SECTOR_PUSH_FCM_SERVICE_ACCOUNT_FILE": self.service_account_file,
                "SECTOR_PUSH_FCM_TOKEN_URL": "", "SSL_CERT_FILE": self.ca.ca_file}

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.token_requests.clear()
            self._token_failures.clear()
            self._token_answers.clear()
        self.token_expires_in = self._default_expires_in

    def expire_tokens(self) -> None:
        with self._lock:
            self._issued.clear()

    def fail_token_next(self, times: int, status: int, retry_after: float | None = None) -> None:
        """The next `times` token requests answer `status` (400: invalid_grant; 429, 5xx: Google's own)."""
        with self._lock:
            self._token_failures += [(status, retry_after)] * times

    def answer_token_next(self, times: int, status: int, body: bytes) -> None:
        """The next `times` token requests answer exactly this (JSON or not), right or wrong."""
        with self._lock:
            self._token_answers += [Reply(status, body, {"content-type": "application/json"})] * times

    async def route(self, request: Request) -> Reply | None:
        if request.path == "/token" and request.method == "POST":
            return self._token(request)
        project = FCM_SEND.fullmatch(request.path)
        if project is None or request.method != "POST":
            return Reply(404, b"<html><title>Error 404 (Not Found)!!1</title></html>", {"content-type": "text/html"})
        body = request.json()
        message = body.get("message") if isinstance(body, dict) else None
        token = message.get("token") if isinstance(message, dict) else None
        return await self.send_request(request, [token] if isinstance(token, str) else [],
                                       lambda: self._send(request, project.group(1), body))

    def failure(self, status: int) -> Reply:
        for answer in FCM_ANSWERS.values():
            if answer[0] == status:
                return google_error(*answer)
        canonical = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}.get(status, "UNKNOWN")
        return google_error(status, canonical, f"Error {status}")

    # The token endpoint.

    def _token(self, request: Request) -> Reply:
        form = {name: values[0] for name, values in parse_qs(request.raw.decode()).items()}
        with self._lock:
            failure = self._token_failures.pop(0) if self._token_failures else None
            scripted = self._token_answers.pop(0) if self._token_answers else None
            if scripted is not None:
                self.token_requests.append(TokenRequest(form.get("assertion", ""), {}, {}, scripted.status))
                return scripted
        header, claims, refusal = self._check_assertion(form)
        if failure is not None:
            status, retry_after = failure
            error = {400: "invalid_grant", 429: "rate_limit_exceeded"}.get(status, "internal_failure")
            refusal = (status, error, f"Error {status}", {"retry-after": f"{retry_after:g}"} if retry_after else {})
        record = TokenRequest(form.get("assertion", ""), header, claims, refusal[0] if refusal else 200)
        with self._lock:
            self.token_requests.append(record)
        if refusal is not None:
            status, error, description, headers = refusal
            return json_reply(status, {"error": error, "error_description": description}, headers)
        record.access_token = f"ya29.fake-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._issued[record.access_token] = time.monotonic() + self.token_expires_in
        return json_reply(200, {"access_token": record.access_token, "expires_in": self.token_expires_in,
                                "token_type": "Bearer"})

    def _check_assertion(self, form: dict) -> tuple[dict, dict, tuple | None]:
        """The assertion's header and claims, and Google's refusal of it (None: it is good)."""
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return {}, {}, (400, "unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""), {})
        try:
            header = jwt.get_unverified_header(form.get("assertion", ""))
            claims = jwt.decode(form["assertion"], self._key.public_key(), algorithms=["RS256"],
                                audience=self.token_url, issuer=self.client_email,
                                options={"require": ["iss", "aud", "iat", "exp"]})
        except (jwt.InvalidSignatureError, jwt.DecodeError, KeyError):
            return {}, {}, (400, "invalid_grant", "Invalid JWT Signature.", {})
        except jwt.PyJWTError as e:
            return {}, {}, (400, "invalid_grant", f"Invalid JWT: {e}", {})
        if header.get("kid") != self.private_key_id:
            return header, claims, (400, "invalid_grant", "Invalid JWT Signature.", {})
        if claims["exp"] - claims["iat"] > 3600:
            return header, claims, (400, "invalid_grant", SHORT_LIVED, {})
        if FCM_SCOPE not in str(claims.get("scope", "")).split():
            return header, claims, (400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.", {})
        return header, claims, None

    # The send endpoint.

    def _send(self, request: Request, project: str, body) -> Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            expires = self._issued.get(token) if scheme.lower() == "bearer" else None
        if expires is None or expires < time.monotonic():
            return google_error(401, "UNAUTHENTICATED", UNAUTHENTICATED)
        if project != self.project_id:
            return google_error(403, "PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' denied on "
                                f"resource '//cloudresourcemanager.googleapis.com/projects/{project}'")
        if (invalid := _fcm_invalid(body)) is not None:
            path, description = invalid
            return google_error(400, "INVALID_ARGUMENT", description, None, path)
        device = body["message"].get("token")
        name = self.behaviour.get(device, "ok")
        if name in FCM_ANSWERS:
            return google_error(*FCM_ANSWERS[name])
        with self._lock:
            self._messages += 1
            number = self._messages
        return json_reply(200, {"name": f"projects/{project}/messages/0:{number}%{secrets.token_hex(8)}"})


def _fcm_invalid(body) -> tuple[str, str] | None:
    """Where a send body breaks the v1 Message, and how FCM says it; None when it does not."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        return "message", "Invalid JSON payload received. Expected an object with a message."
    for where, names in FCM_FIELDS.items():
        value = body
        for step in where.split("."):
            value = value.get(step) if isinstance(value, dict) else None
        for name in value if isinstance(value, dict) else ():
            if re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() not in names:
                return f"{where}.{name}", (f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                                           "Cannot find field.")
    message = body["message"]
    if sum(1 for key in ("token", "topic", "condition") if message.get(key)) != 1:
        return "message", "Exactly one of token, topic or condition must be specified."
    for key, value in (message.get("data") or {}).items():
        if not isinstance(value, str):
            return f"message.data[{key}]", f"Invalid value at 'message.data[{key}].value' (TYPE_STRING)"
    return None


# APNs ----------------------------------------------------------------------------------------------

#: Apple's reasons and the status each comes with ("Handling notification responses from APNs").
APNS_REASONS = {
    "BadCollapseId": 400, "BadDeviceToken": 400, "BadExpirationDate": 400, "BadMessageId": 400, "BadPriority": 400,
    "BadTopic": 400, "DeviceTokenNotForTopic": 400, "DuplicateHeaders": 400, "IdleTimeout": 400,
    "InvalidPushType": 400, "MissingDeviceToken": 400, "MissingTopic": 400, "PayloadEmpty": 400,
    "TopicDisallowed": 400, "BadCertificate": 403, "BadCertificateEnvironment": 403, "ExpiredProviderToken": 403,
    "Forbidden": 403, "InvalidProviderToken": 403, "MissingProviderToken": 403, "BadPath": 404,
    "MethodNotAllowed": 405, "ExpiredToken": 410, "Unregistered": 410, "PayloadTooLarge": 413,
    "TooManyProviderTokenUpdates": 429, "TooManyRequests": 429, "InternalServerError": 500,
    "ServiceUnavailable": 503, "Shutdown": 503,
}
#: The reason fail_next(status) answers with.
APNS_FAILURES = {400: "BadMessageId", 403: "Forbidden", 404: "BadPath", 405: "MethodNotAllowed", 410: "Unregistered",
                 413: "PayloadTooLarge", 429: "TooManyRequests", 500: "InternalServerError",
                 503: "ServiceUnavailable"}
APNS_PUSH_TYPES = {"alert", "background", "location", "voip", "complication", "fileprovider", "mdm", "liveactivity",
                   "pushtotalk", "controls", "widgets"}
APNS_PATH = re.compile(r"/3/device/([^/]*)")
HEX = re.compile(r"(?:[0-9a-fA-F]{2}){32,100}")


def apns_error(reason: str, apns_id: str | None = None) -> Reply:
    """Apple's error: `{"reason"}`, with the time the token stopped working for a 410."""
    status = APNS_REASONS[reason]
    body = {"reason": reason} | ({"timestamp": int(time.time() * 1000)} if status == 410 else {})
    return json_reply(status, body, {"apns-id": apns_id or str(uuid.uuid4())})


def _apple_id(length: int) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


class FakeAPNs(FakeGateway):
    """APNs's provider API for a team, a key and an app (topic) the fake makes.

    `POST /3/device/<token>`, over HTTP/2 only (an HTTP/1.1 request is answered 505; Apple would not
    talk at all). It checks, in Apple's order: the provider token (`authorization: bearer <JWT>`, ES256,
    `kid` the key id, iss the team id, signed with the key, iat within the last hour and not expired by
    `expire_tokens()`: else 403 MissingProviderToken / InvalidProviderToken / ExpiredProviderToken),
    `apns-topic` (MissingTopic; another app's is TopicDisallowed), `apns-push-type`, `apns-priority`,
    `apns-expiration`, `apns-collapse-id` (at most 64 bytes), `apns-id`, the token (hex, else
    BadDeviceToken) and the payload (PayloadEmpty; over 4096 bytes PayloadTooLarge). Then it answers 200
    with an `apns-id` header, or per `behaviour` the error of any reason in `APNS_REASONS` (or stall).
    `provider_tokens` lists the distinct provider tokens it saw, in order.
    """

    def __init__(self, ca: CertificateAuthority | None = None, *, topic: str = "app.sector.chat", **kwargs):
        super().__init__(ca, **kwargs)
        self.key_id, self.team_id, self.topic = _apple_id(10), _apple_id(10), topic
        key = ec.generate_private_key(ec.SECP256R1())
        self._public_key = key.public_key()
        self.key_file = str(self.ca.directory / f"AuthKey_{self.key_id}.p8")
        Path(self.key_file).write_bytes(_pkcs8(key))
        self.provider_tokens: list[str] = []
        self._verified: dict[str, int] = {}  # provider token: its iat
        self._expired: set[str] = set()

    def env(self) -> dict[str, str]:
        return {"SECTOR_PUSH_APNS_URL": self.url, "SECTOR_PUSH_APNS_KEY_FILE": self.key_file,
                "SECTOR_PUSH_APNS_KEY_ID": self.key_id, "SECTOR_PUSH_APNS_TEAM_ID": self.team_id,
                "SECTOR_PUSH_APNS_TOPIC": self.topic, "SSL_CERT_FILE": self.ca.ca_file}

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.provider_tokens.clear()
            self._verified.clear()

    def expire_tokens(self) -> None:
        with self._lock:
            self._expired |= set(self.provider_tokens)

    async def route(self, request: Request) -> Reply | None:
        device = APNS_PATH.fullmatch(request.path)
        if device is None:
            return apns_error("BadPath")
        if request.method != "POST":
            return apns_error("MethodNotAllowed")
        if request.http_version != "2":
            return json_reply(505, {"reason": "HTTP/2 required"})
        token = unquote(device.group(1))
        return await self.send_request(request, [token], lambda: self._send(request, token))

    def failure(self, status: int) -> Reply:
        return apns_error(APNS_FAILURES.get(status, "InternalServerError"))

    def _send(self, request: Request, token: str) -> Reply:
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4())
        reason = self._refusal(request, token)
        reason = reason or (self.behaviour.get(token) if self.behaviour.get(token) in APNS_REASONS else None)
        if reason is not None:
            return apns_error(reason, apns_id)
        return Reply(200, b"", {"apns-id": apns_id})

    def _refusal(self, request: Request, token: str) -> str | None:
        """Apple's reason to refuse the request; None when it is good."""
        headers = request.headers
        reason = self._provider_token_refusal(headers.get("authorization", ""))
        if reason is not None:
            return reason
        if not headers.get("apns-topic"):
            return "MissingTopic"
        if headers["apns-topic"] != self.topic:
            return "TopicDisallowed"
        if headers.get("apns-push-type", "alert") not in APNS_PUSH_TYPES:
            return "InvalidPushType"
        if headers.get("apns-priority", "10") not in ("1", "5", "10"):
            return "BadPriority"
        if not headers.get("apns-expiration", "0").isdigit():
            return "BadExpirationDate"
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return "BadCollapseId"
        if "apns-id" in headers and not _is_uuid(headers["apns-id"]):
            return "BadMessageId"
        if not token:
            return "MissingDeviceToken"
        if not HEX.fullmatch(token):
            return "BadDeviceToken"
        if not request.raw:
            return "PayloadEmpty"
        if len(request.raw) > 4096:
            return "PayloadTooLarge"
        return None

    def _provider_token_refusal(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "MissingProviderToken"
        with self._lock:
            issued_at = self._verified.get(token)
        if issued_at is None:  # checking a signature costs more than the rest of a request: once a token
            issued_at = self._issued_at(token)
            if issued_at is None:
                return "InvalidProviderToken"
            with self._lock:
                self._verified[token] = issued_at
                self.provider_tokens.append(token)
        with self._lock:
            expired = token in self._expired
        return "ExpiredProviderToken" if expired or issued_at < time.time() - 3600 else None

    def _issued_at(self, token: str) -> int | None:
        """The iat of a provider token made with the key, its id and the team id; None for any other."""
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self._public_key, algorithms=["ES256"], issuer=self.team_id,
                                options={"require": ["iss", "iat"]})
        except jwt.PyJWTError:
            return None
        return claims["iat"] if header.get("kid") == self.key_id and isinstance(claims["iat"], int) else None


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


# Expo ----------------------------------------------------------------------------------------------

EXPO_SEND = "/--/api/v2/push/send"
EXPO_RECEIPTS = "/--/api/v2/push/getReceipts"
#: Ticket and receipt errors, and the message Expo gives with each (`{token}`: the device's).
EXPO_ERRORS = {
    "DeviceNotRegistered": '"{token}" is not a registered push notification recipient',
    "MessageTooBig": "Message too big. The notification payload exceeds the maximum size of 4096 bytes.",
    "MessageRateExceeded": "The app is sending messages to this device too quickly.",
    "InvalidCredentials": "Unable to retrieve the FCM server key for the recipient's app. Make sure you have "
                          "provided a server key as directed by the Expo FCM documentation.",
    "MismatchSenderId": "The FCM sender id of this app does not match the one the device token was made for.",
}
#: A push message's fields: the reference client's ExpoPushMessage type (src/ExpoClient.ts). Expo's docs
#: do not say that it refuses other fields; the fake does, so one Expo does not document never goes out
#: unnoticed.
EXPO_MESSAGE_FIELDS = {"to", "data", "title", "subtitle", "body", "sound", "ttl", "expiration", "priority",
                       "interruptionLevel", "badge", "channelId", "icon", "richContent", "categoryId",
                       "mutableContent", "collapseId", "tag", "_contentAvailable"}
#: The whole-request error fail_next(status) answers with.
EXPO_FAILURES = {400: ("VALIDATION_ERROR", '"value" must be an array.'),
                 401: ("UNAUTHORIZED", "The bearer token is invalid."),
                 429: ("TOO_MANY_REQUESTS", "Rate limit exceeded: 600 requests per second."),
                 500: ("INTERNAL_SERVER_ERROR", "An unknown error occurred."),
                 503: ("SERVICE_UNAVAILABLE", "The service is unavailable.")}


def expo_errors(status: int, code: str, message: str) -> Reply:
    return json_reply(status, {"errors": [{"code": code, "message": message}]})


class FakeExpo(FakeGateway):
    """Expo's push API, with tickets and receipts.

    `POST /--/api/v2/push/send` takes a JSON array of at most 100 messages (more: 400
    PUSH_TOO_MANY_NOTIFICATIONS) of the fields in `EXPO_MESSAGE_FIELDS` (else 400 VALIDATION_ERROR), with
    `Authorization: Bearer <access_token>` when the fake has one (else 401 UNAUTHORIZED), and answers
    `{"data": [ticket, ...]}` in order: `{"status": "ok", "id"}`, or per `behaviour` the ticket error of
    any name in `EXPO_ERRORS` (or stall: the whole request waits). `missing_tickets` leaves that many
    tickets off the end of each answer, as a broken server would. Whole-request errors are `{"errors":
    [{"code", "message"}]}`.

    `POST /--/api/v2/push/getReceipts` takes `{"ids": [...]}` (at most 1000, else 400
    PUSH_TOO_MANY_RECEIPTS) and answers `{"data": {id: receipt}}` for the ready ones: `{"status": "ok"}`
    unless `receipt_behaviour[token]` says "pending" (not ready, left out) or an error name (its receipt
    is that error). `receipt_requests` records these calls; `fail_receipts_next` fails them.
    """

    def __init__(self, ca: CertificateAuthority | None = None, *, access_token: str | None = None, **kwargs):
        super().__init__(ca, **kwargs)
        self.access_token = access_token
        self.receipt_behaviour: dict[str, str] = {}
        self.missing_tickets = 0
        self.receipt_requests: list[Received] = []
        self._receipts: dict[str, dict] = {}
        self._receipt_failures: list[int] = []

    def env(self) -> dict[str, str]:
        return {"SECTOR_PUSH_EXPO_URL": self.url, "SECTOR_PUSH_EXPO_ACCESS_TOKEN": self.access_token or "",
                "SSL_CERT_FILE": self.ca.ca_file}

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.receipt_behaviour.clear()
            self.receipt_requests.clear()
            self._receipt_failures.clear()
        self.missing_tickets = 0

    def fail_receipts_next(self, times: int, status: int) -> None:
        with self._lock:
            self._receipt_failures += [status] * times

    async def route(self, request: Request) -> Reply | None:
        if request.method == "POST" and request.path == EXPO_SEND:
            body = request.json()
            messages = [body] if isinstance(body, dict) else body if isinstance(body, list) else []
            tokens = [m.get("to") for m in messages if isinstance(m, dict) and isinstance(m.get("to"), str)]
            return await self.send_request(request, tokens, lambda: self._send(request, body))
        if request.method == "POST" and request.path == EXPO_RECEIPTS:
            return self._receipts_call(request)
        return expo_errors(404, "NOT_FOUND", f"Not found: {request.method} {request.path}")

    def failure(self, status: int) -> Reply:
        return expo_errors(status, *EXPO_FAILURES.get(status, ("INTERNAL_SERVER_ERROR", f"Error {status}")))

    def _refusal(self, request: Request) -> Reply | None:
        if self.access_token and request.headers.get("authorization") != f"Bearer {self.access_token}":
            return expo_errors(401, "UNAUTHORIZED", "The bearer token is invalid.")
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return expo_errors(400, "VALIDATION_ERROR", "The request body must be JSON.")
        return None

    def _send(self, request: Request, body) -> Reply:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        messages = [body] if isinstance(body, dict) else body
        if not isinstance(messages, list) or not all(isinstance(m, dict) and isinstance(m.get("to"), str)
                                                     for m in messages):
            return expo_errors(400, "VALIDATION_ERROR", '"value" must be an array of messages with a "to".')
        if len(messages) > 100:
            return expo_errors(400, "PUSH_TOO_MANY_NOTIFICATIONS",
                               "You are trying to send more than 100 push notifications in one request.")
        unknown = [(i, name) for i, m in enumerate(messages) for name in m if name not in EXPO_MESSAGE_FIELDS]
        if unknown:
            return expo_errors(400, "VALIDATION_ERROR", '"[{}].{}" is not allowed'.format(*unknown[0]))
        if any("data" in m and not isinstance(m["data"], dict) for m in messages):
            return expo_errors(400, "VALIDATION_ERROR", '"data" must be of type object')
        tickets = [self._ticket(message["to"]) for message in messages]
        return json_reply(200, {"data": tickets[:len(tickets) - self.missing_tickets]})

    def _ticket(self, token: str) -> dict:
        name = self.behaviour.get(token)
        if name in EXPO_ERRORS:
            return _expo_error(name, token)
        ticket_id = str(uuid.uuid4())
        late = self.receipt_behaviour.get(token, "ok")
        if late != "pending":
            with self._lock:
                self._receipts[ticket_id] = _expo_error(late, token) if late in EXPO_ERRORS else {"status": "ok"}
        return {"status": "ok", "id": ticket_id}

    def _receipts_call(self, request: Request) -> Reply:
        body = request.json()
        ids = body.get("ids") if isinstance(body, dict) else None
        received = Received(request.path, request.headers, body, request.http_version, time.monotonic(), [])
        with self._lock:
            self.receipt_requests.append(received)
            failure = self._receipt_failures.pop(0) if self._receipt_failures else None
        if failure is not None:
            reply = self.failure(failure)
        elif (refusal := self._refusal(request)) is not None:
            reply = refusal
        elif not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            reply = expo_errors(400, "VALIDATION_ERROR", '"ids" must be an array of strings.')
        elif len(ids) > 1000:
            reply = expo_errors(400, "PUSH_TOO_MANY_RECEIPTS",
                                "You are trying to get more than 1000 push receipts in one request.")
        else:
            with self._lock:
                reply = json_reply(200, {"data": {i: self._receipts[i] for i in ids if i in self._receipts}})
        received.reply, received.answered = reply, time.monotonic()
        return reply


def _expo_error(name: str, token: str) -> dict:
    return {"status": "error", "message": EXPO_ERRORS[name].format(token=token),
            "details": {"error": name, "expoPushToken": token}}


# All three ---------------------------------------------------------------------------------------------

class Gateways:
    """FakeFCM, FakeAPNs and FakeExpo with one CA; `env()` points a Sector worker at all three."""

    def __init__(self, **kwargs):
        self.ca = CertificateAuthority()
        self.fcm = FakeFCM(self.ca, **kwargs)
        self.apns = FakeAPNs(self.ca, **kwargs)
        self.expo = FakeExpo(self.ca, **kwargs)
        self.all = (self.fcm, self.apns, self.expo)

    def start(self):
        for gateway in self.all:
            gateway.start()
        return self

    def stop(self) -> None:
        for gateway in self.all:
            gateway.stop()
        self.ca.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        return {name: value for gateway in self.all for name, value in gateway.env().items()}

    def reset(self) -> None:
        for gateway in self.all:
            gateway.reset()
