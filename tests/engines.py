"""Local translation engines for tests and benchmarks: the real wire protocols over HTTP, in a thread.

One server per engine Sector's translation workers speak (providers/translation/):

- `FakeLibreTranslate`: LibreTranslate 1.9 as libretranslate/app.py and language.py serve it
  (github.com/LibreTranslate/LibreTranslate): `POST /translate`, `POST /detect`, `GET /languages`.
- `FakeDeepL`: DeepL API v2 (developers.deepl.com, with error bodies as DeepL's own mock server,
  github.com/DeepLcom/deepl-mock, sends them): `POST /v2/translate`, `GET /v2/languages`, `GET /v2/usage`.
- `FakeOpenAI`: OpenAI chat completions, as OpenAI, a local Ollama or vLLM serve them
  (platform.openai.com/docs/api-reference/chat): `POST /v1/chat/completions`, `GET /v1/models`.

The translation is the same everywhere so tests can predict it (`fake_translation`): the target as
the request spelled it, in brackets, then the text upper-cased. In markup mode (LibreTranslate
`format=html`, DeepL `tag_handling`, always for the OpenAI fake) every `<...>` tag is kept byte for
byte and only the text between tags is unescaped, upper-cased and escaped again, so `&amp;` and
`&lt;` survive (`&nbsp;` or `&#39;` come back as the characters they stand for). DeepL leaves the
inside of its `ignore_tags` alone.

Every server: `url` (the base URL Sector is configured with), `start()`/`stop()` or `with`, `calls`
(a `Call` per translate request), `fail_next`, `stall_next`, `delay_s`, `max_chars`, `in_flight` and
`max_in_flight`. Requests are served on threads of their own, so concurrent calls overlap.
"""

from __future__ import annotations

import html
import json
import re
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TAG = re.compile(r"<[^>]*>")
TAG_NAME = re.compile(r"<\s*(/?)\s*([A-Za-z_][\w:.-]*)")
# Sector's prompt names the target as "... into Japanese (ja) ..." (providers/translation/openai.py).
PROMPT_TARGET = re.compile(r"\binto\b[^(]*\(([A-Za-z]{2,3}(?:-[A-Za-z0-9]+)*)\)")
INDONESIAN = {"yang", "dan", "tidak", "saya", "anda", "apa", "ini", "itu", "dengan", "untuk", "terima",
              "kasih", "selamat", "pagi", "malam", "bagaimana", "kabar", "adalah", "akan", "sudah", "belum"}


def fake_translation(text: str, target: str, markup: bool, ignore_tags=frozenset()) -> str:
    """What every fake answers for `text` into `target`; inside `ignore_tags` elements nothing changes."""
    if not markup:
        return f"[{target}] {text.upper()}"
    ignore_tags = {name.lower() for name in ignore_tags}
    out, position, ignored = [], 0, 0
    for tag in TAG.finditer(text):
        out += [_text_node(text[position:tag.start()], ignored), tag.group()]
        position = tag.end()
        name = TAG_NAME.match(tag.group())
        if name and name.group(2).lower() in ignore_tags and not tag.group().endswith("/>"):
            ignored = max(0, ignored - 1) if name.group(1) else ignored + 1
    out.append(_text_node(text[position:], ignored))
    return f"[{target}] " + "".join(out)


def _text_node(text: str, ignored: int) -> str:
    return text if ignored else html.escape(html.unescape(text).upper(), quote=False)


def detect_language(text: str) -> str:
    """A script-based guess: Thai script th, kana ja, Han zh, a few Indonesian words id, else en."""
    if re.search("[\u0e00-\u0e7f]", text):
        return "th"
    if re.search("[\u3040-\u30ff]", text):
        return "ja"
    if re.search("[\u3400-\u9fff]", text):
        return "zh"
    return "id" if INDONESIAN & set(re.findall(r"[a-z]+", text.lower())) else "en"


@dataclass
class Call:
    """One translate request as the server saw it; `status` is what it answered."""

    path: str
    body: object  # the parsed JSON, or a form as {name: [values]}
    headers: object  # the request's headers (an email.message.Message: case-insensitive)
    texts: list[str]
    target: str | None
    source: str | None
    status: int | None = None


@dataclass
class Request:
    method: str
    path: str
    headers: object
    body: object  # the parsed JSON (is_json), or the query and form fields as {name: [values]}
    is_json: bool
    bad_json: str | None = None  # why the JSON body did not parse

    def field(self, name: str):
        """A field as Flask's `request.values` or `get_json()` gives it: a form's first value."""
        if self.is_json:
            return self.body.get(name) if isinstance(self.body, dict) else None
        values = self.body.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, data, headers: dict | None = None) -> Reply:
    return Reply(status, json.dumps(data).encode(), "application/json", dict(headers or {}))


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return {456: "Quota Exceeded", 529: "Too Many Requests"}.get(status, "Error")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once


class FakeEngine:
    """What the three servers share: the HTTP server in a thread, the record of calls, the controls."""

    #: Paths whose POSTs are translate calls: recorded, delayed, stalled and failed on demand.
    translate_paths: tuple[str, ...] = ()
    #: Appended to the origin to make `url`.
    url_path = ""
    default_languages: tuple[str, ...] = ()

    def __init__(self, *, api_key: str | None = None, delay_s: float = 0.0, languages=None,
                 max_chars: int | None = None):
        self.api_key = api_key
        self.delay_s = delay_s
        self.max_chars = max_chars
        self.languages = list(self.default_languages if languages is None else languages)
        self.in_flight = 0
        self.max_in_flight = 0
        self._calls: list[Call] = []
        self._failures: list[tuple[int, float | None, str | None]] = []
        self._stalls: list[float] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real engines and Sector's pooled client do
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait

            def setup(self):
                super().setup()
                with engine._lock:
                    engine._connections.add(self.connection)

            def finish(self):
                with engine._lock:
                    engine._connections.discard(self.connection)
                super().finish()

            def do_GET(self):
                engine._serve(self)

            do_POST = do_PUT = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        #: The base URL Sector is configured with.
        self.url = self.origin + self.url_path
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # Life.

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open connections (a pooled client sees the engine gone too, a stalled
        call gets no answer). A stopped engine does not start again: make a new one."""
        self._stopping.set()  # and stalled calls end now
        if self.thread.is_alive():  # shutdown() waits for a serve_forever that never ran
            self.server.shutdown()
        self.server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # What tests read and steer.

    @property
    def calls(self) -> list[Call]:
        """Every translate call so far, oldest first (a copy)."""
        with self._lock:
            return list(self._calls)

    def translate_calls(self, status: int | None = None) -> int:
        """How many translate calls came (answered with `status`, if given)."""
        return sum(1 for call in self.calls if status is None or call.status == status)

    def reset(self) -> None:
        """Forget the calls, and failures and stalls not used yet."""
        with self._lock:
            self._calls.clear()
            self._failures.clear()
            self._stalls.clear()
            self.max_in_flight = self.in_flight

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None,
                  message: str | None = None) -> None:
        """The next `times` translate calls answer `status` with the engine's error body (saying
        `message` instead of its usual reason, if given), and `Retry-After: retry_after` if given."""
        with self._lock:
            self._failures += [(status, retry_after, message)] * times

    def stall_next(self, times: int = 1, seconds: float = 10) -> None:
        """The next `times` translate calls wait `seconds` (instead of `delay_s`), then answer normally."""
        with self._lock:
            self._stalls += [seconds] * times

    # What each engine says, for subclasses.

    def extract(self, request: Request) -> tuple[list[str], str | None, str | None]:
        """The texts, target and source of a translate request, as far as they can be read."""
        raise NotImplementedError

    def translate(self, request: Request) -> Reply:
        """Answer a translate call: check the key and the parameters, then translate."""
        raise NotImplementedError

    def route(self, request: Request) -> Reply | None:
        """Answer any other request; None for a path the engine does not serve."""
        return None

    def error(self, status: int, message: str | None = None) -> Reply:
        """The engine's error answer with `status`."""
        raise NotImplementedError

    def not_found(self, request: Request) -> Reply:
        return self.error(404, f"Not found: {request.method} {request.path}")

    # The wire.

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        try:
            request = self._read(handler)
            try:
                if request.path in self.translate_paths and request.method == "POST":
                    reply = self._translate_call(request)
                else:
                    reply = self.route(request) or self.not_found(request)
            except Exception as e:  # a bug in the fake: say so on stderr, and answer as the engine would
                traceback.print_exc()
                reply = self.error(500, f"fake engine failed: {e!r}")
            if reply is None:  # stopped during the call: hang up without an answer
                handler.close_connection = True
                return
            handler.send_response(reply.status, reason(reply.status))
            if reply.content_type:
                handler.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
        except OSError:  # the client gave up (say on a stall), or stop() cut the connection
            handler.close_connection = True

    @staticmethod
    def _read(handler: BaseHTTPRequestHandler) -> Request:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        mimetype = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if mimetype == "application/json" or mimetype.endswith("+json"):
            try:
                return Request(handler.command, parts.path, handler.headers, json.loads(raw), True)
            except ValueError as e:
                return Request(handler.command, parts.path, handler.headers, None, True, bad_json=str(e))
        fields = parse_qs(parts.query, keep_blank_values=True)
        for name, values in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items():
            fields.setdefault(name, []).extend(values)
        return Request(handler.command, parts.path, handler.headers, fields, False)

    def _translate_call(self, request: Request) -> Reply | None:
        try:
            texts, target, source = self.extract(request)
        except (AttributeError, TypeError, KeyError, IndexError):
            texts, target, source = [], None, None
        call = Call(request.path, request.body, request.headers, texts, target, source)
        with self._lock:
            self._calls.append(call)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            failure = self._failures.pop(0) if self._failures else None
            stall = self._stalls.pop(0) if self._stalls else None
        try:
            wait = stall if stall is not None else self.delay_s
            if wait and self._stopping.wait(wait):
                return None
            if failure is None:
                reply = self.translate(request)
            else:
                status, retry_after, message = failure
                reply = self.error(status, message)
                if retry_after is not None:
                    reply.headers["Retry-After"] = str(int(retry_after)) if float(retry_after).is_integer() \
                        else str(retry_after)
            call.status = reply.status
            return reply
        finally:
            with self._lock:
                self.in_flight -= 1


# LibreTranslate -----------------------------------------------------------------------------------

LIBRE_NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French", "hi": "Hindi",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "ms": "Malay", "nl": "Dutch",
    "pb": "Portuguese (Brazil)", "pt": "Portuguese", "ru": "Russian", "th": "Thai", "tl": "Tagalog",
    "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese", "zt": "Chinese (traditional)",
}
# language.py's `aliases`: how LibreTranslate spells the Argos model codes zh, zt and pb on the wire.
LIBRE_ALIASES = {"zh": "zh-Hans", "zt": "zh-Hant", "pb": "pt-BR"}
LIBRE_MODELS = {wire.lower(): model for model, wire in LIBRE_ALIASES.items()}
# app.py's `emojis`: a request with nothing but these (and spaces) comes back untranslated.
EMOJI_RANGES = ((0x1F600, 0x1F64F), (0x1F300, 0x1F5FF), (0x1F680, 0x1F6FF), (0x2600, 0x26FF),
                (0x2700, 0x27BF), (0xFE00, 0xFE0F), (0x1F900, 0x1F9FF), (0x1F1E6, 0x1F1FF), (0x20D0, 0x20FF))


def libre_model(code: str) -> str:
    """language.py's iso2model: lower case, zh-Hans -> zh, zh-Hant -> zt, pt-BR -> pb."""
    return LIBRE_MODELS.get(code.lower(), code.lower())


def libre_wire(model: str) -> str:
    """language.py's model2iso: how answers spell a language."""
    return LIBRE_ALIASES.get(model, model)


def _translatable(text: str) -> bool:
    return any(ch != " " and not any(lo <= ord(ch) < hi for lo, hi in EMOJI_RANGES) for ch in text)


class FakeLibreTranslate(FakeEngine):
    """LibreTranslate's API as libretranslate/app.py serves it.

    `POST /translate` takes JSON or a form (fields may also come in the query): `q` (a string, or in
    JSON a list of them), `source` (a code or "auto"), `target`, `format` ("text", the default, or
    "html"), `alternatives`, `api_key`. It answers `{"translatedText": str | [str]}`, with
    `detectedLanguage` `{"confidence", "language"}` when `source` is "auto" (for a list, one per
    text, all the same: LibreTranslate detects the texts together). Codes match case-insensitively,
    zh-Hans is zh and zh-Hant is zt; answers spell Chinese zh-Hans/zh-Hant, as LibreTranslate has
    since 1.6.5 (2025; older servers said zh/zt). A text of emoji only comes back as sent.

    Errors are `{"error": "..."}`: 400 for a missing parameter ("Invalid request: missing q
    parameter"), a language it lacks ("xx is not supported") or a text over `max_chars`; with
    `api_key`, 403 "Invalid API key" for a wrong key and 400 "Please contact the server operator to
    get an API key" for none (what a server that requires keys says). Real rate limits answer 429
    "Slowdown: <limit>" and, after repeated ones, 403 "Too many request limits violations" (a ban).

    LibreTranslate runs html.unescape over every result, text and html alike, so `&amp;` comes back
    as `&`: `unescape_output=True` does that too, instead of the entity-keeping default.
    """

    translate_paths = ("/translate",)
    default_languages = ("en", "zh", "zt", "ja", "th", "id", "es", "fr", "de")

    def __init__(self, *, unescape_output: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.unescape_output = unescape_output

    def _models(self) -> list[str]:
        return [libre_model(code) for code in self.languages]

    def extract(self, request):
        q = request.field("q")
        texts = q if isinstance(q, list) else [] if q is None else [q]
        return [t for t in texts if isinstance(t, str)], request.field("target"), request.field("source")

    def _refusal(self, request: Request) -> Reply | None:
        """What LibreTranslate says before it reads a request's fields: a body or key it refuses."""
        if request.bad_json is not None:
            return self.error(400, f"Failed to decode JSON object: {request.bad_json}")
        if request.is_json and not isinstance(request.body, dict):
            return self.error(400, "Invalid JSON format")
        if self.api_key is not None:
            given = request.field("api_key")
            if not given:
                return self.error(400, "Please contact the server operator to get an API key")
            if given != self.api_key:
                return self.error(403, "Invalid API key")
        return None

    def translate(self, request):
        if refusal := self._refusal(request):
            return refusal
        q, source, target = request.field("q"), request.field("source"), request.field("target")
        for name, value in (("q", q), ("source", source), ("target", target)):
            if not value:
                return self.error(400, f"Invalid request: missing {name} parameter")
        try:
            alternatives = max(0, int(request.field("alternatives") or 0))
        except (TypeError, ValueError):
            return self.error(400, "Invalid request: alternatives parameter is not a number")
        if not request.is_json:
            q = "\n".join(q.splitlines())  # LibreTranslate counts form text with LF line ends
        batch = isinstance(q, list)
        texts = q if batch else [q]
        if not all(isinstance(t, str) for t in texts) or not isinstance(source, str) or not isinstance(target, str):
            return self.error(400, "Invalid request: q, source and target must be strings")
        for text in texts if self.max_chars is not None else ():
            if len(text) > self.max_chars:
                return self.error(400, f"Invalid request: request ({len(text)}) exceeds text limit ({self.max_chars})")
        models = self._models()
        translatable = any(_translatable(t) for t in texts)
        if not translatable:
            detected, source_model = {"confidence": 0.0, "language": "en"}, "en"
        elif source.lower() == "auto":
            guess = detect_language(" ".join(texts))
            detected = {"confidence": 90.0, "language": libre_wire(guess)}
            source_model = guess if guess in models or guess != "zh" else "zt"  # its zh/zt fallback
        else:
            source_model = libre_model(source)
            detected = {"confidence": 100.0, "language": libre_wire(source_model)}
        if source_model not in models:
            return self.error(400, f"{libre_model(source)} is not supported")
        if libre_model(target) not in models:
            return self.error(400, f"{libre_model(target)} is not supported")
        text_format = request.field("format") or "text"
        if text_format not in ("text", "html"):
            return self.error(400, f"{text_format} format is not supported")
        results = [fake_translation(t, target, text_format == "html") if translatable else t for t in texts]
        if self.unescape_output:
            results = [html.unescape(r) for r in results]
        answer = {"translatedText": results if batch else results[0]}
        if source.lower() == "auto":
            answer["detectedLanguage"] = [detected] * len(texts) if batch else detected
        if alternatives > 0:
            answer["alternatives"] = [[] for _ in texts] if batch else []
        return json_reply(200, answer)

    def route(self, request):
        if request.path == "/languages" and request.method == "GET":
            codes = [libre_wire(m) for m in self._models()]
            # Argos lets every language translate into itself too, so each lists every code.
            return json_reply(200, [{"code": libre_wire(m), "name": LIBRE_NAMES.get(m, m), "targets": codes}
                                    for m in self._models()])
        if request.path == "/detect" and request.method == "POST":
            if refusal := self._refusal(request):
                return refusal
            q = request.field("q")
            if not q:
                return self.error(400, "Invalid request: missing q parameter")
            text = " ".join(map(str, q)) if isinstance(q, list) else str(q)
            return json_reply(200, [{"confidence": 90.0, "language": libre_wire(detect_language(text))}])
        if request.path == "/health" and request.method == "GET":
            return json_reply(200, {"status": "ok"})
        return None

    def error(self, status, message=None):
        default = {
            400: "Invalid request", 403: "Invalid API key", 429: "Slowdown: 20 per 1 minute",
            # Flask's InternalServerError description, which LibreTranslate's 500 handler passes on.
            500: "The server encountered an internal error and was unable to complete your request. "
                 "Either the server is overloaded or there is an error in the application.",
        }
        return json_reply(status, {"error": message or default.get(status) or reason(status)})


# DeepL --------------------------------------------------------------------------------------------

DEEPL_NAMES = {
    "AR": "Arabic", "BG": "Bulgarian", "CS": "Czech", "DA": "Danish", "DE": "German", "EL": "Greek",
    "EN": "English", "EN-GB": "English (British)", "EN-US": "English (American)", "ES": "Spanish",
    "ES-419": "Spanish (Latin American)", "FR": "French", "HE": "Hebrew", "ID": "Indonesian", "IT": "Italian",
    "JA": "Japanese", "KO": "Korean", "NL": "Dutch", "PL": "Polish", "PT": "Portuguese",
    "PT-BR": "Portuguese (Brazilian)", "PT-PT": "Portuguese (European)", "RU": "Russian", "TH": "Thai",
    "TR": "Turkish", "UK": "Ukrainian", "VI": "Vietnamese", "ZH": "Chinese",
    "ZH-HANS": "Chinese (simplified)", "ZH-HANT": "Chinese (traditional)",
}
# Targets with a formality setting (deepl-mock's product-translate-text.json).
DEEPL_FORMALITY = {"DE", "ES", "ES-419", "FR", "IT", "JA", "NL", "PL", "PT", "PT-BR", "PT-PT", "RU"}


class FakeDeepL(FakeEngine):
    """DeepL API v2 text translation (developers.deepl.com/api-reference/translate).

    `POST /v2/translate` with `Authorization: DeepL-Auth-Key <key>` and JSON (`text` a list of
    strings) or a form (`text=` repeated, `ignore_tags` comma-separated): `target_lang` (any case),
    optional `source_lang` (a bare language: EN, not EN-US, and never "auto"), `tag_handling`
    ("xml" or "html"), `ignore_tags`. It answers `{"translations": [{"detected_source_language":
    "EN", "text": "..."}]}`. `languages` are the target codes `GET /v2/languages?type=target` lists;
    the bare EN and PT of their variants are accepted as targets without being listed, as DeepL does.

    Errors: 400 `{"message": "Value for 'target_lang' not supported."}` and the like; 403 with an
    empty body for a missing or wrong key (DeepL says `{"message": "Wrong endpoint. Use ..."}` only
    when a free key goes to the pro host or back); 413 over `max_chars` (summed over the texts; the
    real limit is 128 KiB of request); 429, 456 (quota), 500, 503 and 529 when a test asks for them.
    """

    translate_paths = ("/v2/translate",)
    default_languages = ("DE", "EN-GB", "EN-US", "ES", "FR", "ID", "JA", "TH", "ZH", "ZH-HANS", "ZH-HANT")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.character_count = 0

    def _targets(self) -> list[str]:
        return [code.upper() for code in self.languages]

    def _sources(self) -> list[str]:
        return list(dict.fromkeys(code.split("-")[0] for code in self._targets()))

    def _list(self, request: Request, name: str) -> list:
        if request.is_json:
            value = request.body.get(name) if isinstance(request.body, dict) else None
            return value if isinstance(value, list) else [] if value is None else [value]
        return list(request.body.get(name, []))

    def extract(self, request):
        texts = [t for t in self._list(request, "text") if isinstance(t, str)]
        return texts, request.field("target_lang"), request.field("source_lang")

    def _refusal(self, request: Request) -> Reply | None:
        if self.api_key is not None and request.headers.get("Authorization") != f"DeepL-Auth-Key {self.api_key}":
            return self.error(403)
        if request.bad_json is not None or (request.is_json and not isinstance(request.body, dict)):
            return self.error(400, "Invalid request body: the body is not a JSON object.")
        return None

    def translate(self, request):
        if refusal := self._refusal(request):
            return refusal
        target, source = request.field("target_lang"), request.field("source_lang")
        tag_handling = request.field("tag_handling")
        texts = self._list(request, "text")
        if request.is_json and isinstance(request.body.get("text"), str):
            return self.error(400, "Value for 'text' not supported.")
        if not texts:
            return self.error(400, "Parameter 'text' not specified.")
        if not all(isinstance(t, str) for t in texts):
            return self.error(400, "Value for 'text' not supported.")
        accepted = set(self._targets()) | set(self._sources())
        if not isinstance(target, str) or target.upper() not in accepted:
            return self.error(400, "Value for 'target_lang' not supported.")
        if source is not None and (not isinstance(source, str) or source.upper() not in self._sources()):
            return self.error(400, "Value for 'source_lang' not supported.")
        if tag_handling is not None and tag_handling not in ("xml", "html"):
            return self.error(400, "Value for 'tag_handling' not supported.")
        ignore_tags = set()
        for value in self._list(request, "ignore_tags"):
            ignore_tags |= {name.strip() for name in str(value).split(",") if name.strip()}
        size = sum(len(t) for t in texts)
        if self.max_chars is not None and size > self.max_chars:
            return self.error(413)
        with self._lock:
            self.character_count += size
        billed = str(request.field("show_billed_characters")).lower() in ("1", "true")
        translations = []
        for text in texts:
            entry = {"detected_source_language": (source or detect_language(text)).upper(),
                     "text": fake_translation(text, target, tag_handling is not None, ignore_tags)}
            translations.append(entry | ({"billed_characters": len(text)} if billed else {}))
        return json_reply(200, {"translations": translations})

    def route(self, request):
        if request.path not in ("/v2/languages", "/v2/usage") or request.method not in ("GET", "POST"):
            return None
        if refusal := self._refusal(request):
            return refusal
        if request.path == "/v2/usage":
            return json_reply(200, {"character_count": self.character_count, "character_limit": 500000})
        kind = request.field("type") or "source"
        if kind == "target":
            return json_reply(200, [{"language": code, "name": DEEPL_NAMES.get(code, code),
                                     "supports_formality": code in DEEPL_FORMALITY} for code in self._targets()])
        if kind == "source":
            return json_reply(200, [{"language": code, "name": DEEPL_NAMES.get(code, code)}
                                    for code in self._sources()])
        return self.error(400, "Parameter 'type' is invalid. 'source' and 'target' are valid values.")

    def error(self, status, message=None):
        if status == 403 and message is None:
            return Reply(403, b"", None)
        default = {413: "The request size exceeds the limit.", 429: "Too many requests",
                   456: "Quota for this billing period has been exceeded.", 500: "Internal server error",
                   503: "Service unavailable", 529: "Too many requests"}
        return json_reply(status, {"message": message or default.get(status) or reason(status)})


# OpenAI-compatible chat completions ---------------------------------------------------------------

OPENAI_ERRORS = {  # status: (type, code, message) as api.openai.com answers them
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key",
          "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


class FakeOpenAI(FakeEngine):
    """OpenAI chat completions, what a local Ollama or vLLM serves under /v1 too.

    `POST /v1/chat/completions` with `Authorization: Bearer <key>` (checked only with `api_key`, as a
    local server checks none): `model`, `messages` (a system message that names the target "into
    Japanese (ja)", then the user's text; the last user message is the one translated), and `stream`.
    It answers a `chat.completion` (or, with `stream`, its `chat.completion.chunk` events and
    `data: [DONE]`). `models` are the ones `GET /v1/models` lists; None serves any model asked for.
    A prompt that names no target gets `[?]`.

    Errors are `{"error": {"message", "type", "param", "code"}}`: 400 for a bad body or a text over
    `max_chars` (context_length_exceeded), 401 for a missing or wrong key, 404 for an unknown model
    (model_not_found), 429, 500 and 503 when a test asks for them.
    """

    translate_paths = ("/v1/chat/completions",)
    url_path = "/v1"

    def __init__(self, *, models: list[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.models = models

    @staticmethod
    def _content(message) -> str:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return content if isinstance(content, str) else ""

    def _messages(self, request: Request) -> list:
        messages = request.body.get("messages") if request.is_json and isinstance(request.body, dict) else None
        return messages if isinstance(messages, list) else []

    def extract(self, request):
        messages = self._messages(request)
        system = " ".join(self._content(m) for m in messages if m.get("role") in ("system", "developer"))
        users = [self._content(m) for m in messages if m.get("role") == "user"]
        target = PROMPT_TARGET.search(system)
        return users[-1:], target.group(1) if target else None, None

    def translate(self, request):
        body = request.body
        if request.bad_json is not None or not isinstance(body, dict):
            return self.error(400, "We could not parse the JSON body of your request. "
                                   "The OpenAI API expects a JSON payload.")
        if self.api_key is not None:
            scheme, _, key = (request.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or not key:
                return self.error(401, "You didn't provide an API key. You need to provide your API key in an "
                                       "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                                  code=None)
            if key != self.api_key:
                return self.error(401, f"Incorrect API key provided: {key[:3]}***{key[-4:]}. You can find your "
                                       "API key at https://platform.openai.com/account/api-keys.")
        model = body.get("model")
        if not model:
            return self.error(400, "you must provide a model parameter", code=None)
        if self.models is not None and model not in self.models:
            return self.error(404, f"The model `{model}` does not exist or you do not have access to it.")
        messages = self._messages(request)
        if not messages:
            return self.error(400, "Missing required parameter: 'messages'.", param="messages",
                              code="missing_required_parameter")
        if not all(isinstance(m, dict) for m in messages):
            return self.error(400, "Invalid type for 'messages': expected an array of objects.", param="messages",
                              code="invalid_type")
        texts, target, _ = self.extract(request)
        text = texts[0] if texts else ""
        if self.max_chars is not None and len(text) > self.max_chars:
            return self.error(400, f"This model's maximum context length is {self.max_chars} tokens. However, "
                                   f"your messages resulted in {len(text)} tokens. "
                                   "Please reduce the length of the messages.",
                              param="messages", code="context_length_exceeded")
        content = fake_translation(text, target or "?", True)
        prompt_tokens = sum(len(self._content(m)) for m in messages) // 4 + 1
        completion_tokens = len(content) // 4 + 1
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": model,
                "system_fingerprint": "fp_fake"}
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        if body.get("stream"):
            chunk = head | {"object": "chat.completion.chunk"}
            deltas = [({"role": "assistant", "content": ""}, None), ({"content": content}, None), ({}, "stop")]
            events = [chunk | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                      for delta, finish in deltas]
            stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            return Reply(200, stream.encode(), "text/event-stream")
        return json_reply(200, head | {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage})

    def route(self, request):
        if request.path == "/v1/models" and request.method == "GET":
            models = self.models if self.models is not None else ["fake-translator"]
            return json_reply(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "library"} for m in models]})
        return None

    def not_found(self, request):
        return self.error(404, f"Invalid URL ({request.method} {request.path})", code=None)

    def error(self, status, message=None, *, param=None, code="default"):
        kind, default_code, default_message = OPENAI_ERRORS.get(status, ("server_error" if status >= 500 else
                                                                         "invalid_request_error", None, reason(status)))
        return json_reply(status, {"error": {"message": message or default_message, "type": kind, "param": param,
                                             "code": default_code if code == "default" else code}})
