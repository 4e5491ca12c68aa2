"""Translation engines as clients: each speaks one engine's HTTP API and knows its `[translation]`
config, nothing of messages or readers (actors/translation.py drives them).

An engine translates a list of texts from one language into another in a call. The texts are
markup (see markup.py): protected spans are empty `<x id="N"/>` tags, the rest is escaped. Every
failure is an EngineError that says whether trying again can help: timeouts, unreachable engines,
5xx and 429 can (a 429's Retry-After says when); any other 4xx will not.

Languages are BCP 47 tags as readers choose them (`en`, `zh-CN`, `ja`, `th`, `id`); each engine
turns a tag into its own code, from the list of languages it serves when it publishes one.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from config import Translation as Config
from providers.retrying import retry_after
from telemetry import ProviderCall

logger = logging.getLogger(__name__)

#: How long an engine's list of languages is trusted before it is asked again.
LANGUAGES_TTL_S = 3600


class EngineError(Exception):
    """A call failed; `retryable` when the same call may succeed later (after `retry_after` seconds)."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class Engine:
    """What every engine does; subclasses speak the wire protocol."""

    #: Stored with each translation and part of its cache key.
    name = ""
    #: Texts one call carries at most.
    max_texts = 50
    #: Whether answers are markup (entities escaped), as sent; LibreTranslate unescapes them itself.
    answers_escaped = True

    def __init__(self, config: Config, client: httpx.Client):
        self.config = config
        self.client = client
        self._languages: tuple[float, set[str] | None] | None = None
        self._lock = threading.Lock()

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        """`texts` from `source` into `target` (engine codes), in order."""
        raise NotImplementedError

    def detect(self, texts: list[str]) -> list[str | None]:
        """The language code of each text, by the engine; engines without detection raise EngineError."""
        raise EngineError(f"{self.name} does not detect languages", retryable=False)

    def fetch_languages(self) -> set[str] | None:
        """The codes the engine translates into, as it spells them; None when it does not say."""
        return None

    def languages(self) -> set[str] | None:
        """fetch_languages(), kept for LANGUAGES_TTL_S; an engine that cannot say now is asked again later."""
        with self._lock:
            now = time.monotonic()
            if self._languages is None or now - self._languages[0] > LANGUAGES_TTL_S:
                try:
                    self._languages = (now, self.fetch_languages())
                except EngineError as e:
                    logger.warning("Could not read %s's languages (%s); assuming it knows every language.",
                                   self.name, e.reason)
                    self._languages = (now - LANGUAGES_TTL_S + 60, None)
            return self._languages[1]

    def target_code(self, tag: str) -> str | None:
        """The engine's code for translating into `tag`; None if it does not serve that language."""
        return self._pick(self.target_candidates(tag))

    def source_code(self, tag: str) -> str | None:
        return self._pick(self.source_candidates(tag))

    def target_candidates(self, tag: str) -> list[str]:
        """Codes that may stand for `tag` in the engine's list, the one to use when it has none first."""
        return [tag]

    def source_candidates(self, tag: str) -> list[str]:
        return self.target_candidates(tag)

    def _pick(self, candidates: list[str]) -> str | None:
        known = self.languages()
        if known is None:
            return candidates[0]
        by_case = {code.lower(): code for code in known}
        return next((by_case[c.lower()] for c in candidates if c.lower() in by_case), None)

    # The wire.

    def request(self, method: str, url: str, **kwargs):
        """The engine's JSON answer, or EngineError."""
        with ProviderCall(self.name, url.rpartition("/")[2]) as call:  # translate, detect, languages, completions
            try:
                response = self.client.request(method, url, **kwargs)
            except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as e:
                # The configuration is wrong (a URL without http://, a key a header cannot carry): no retry.
                raise EngineError(f"{self.name} cannot be called as configured ({e})", retryable=False) from None
            except httpx.TimeoutException:
                raise EngineError(f"{self.name} timed out after {self.config.timeout_s:g} s", retryable=True) from None
            except httpx.TransportError as e:
                raise EngineError(f"{self.name} is unreachable ({type(e).__name__})", retryable=True) from None
            call.status = response.status_code
        status = response.status_code
        if not response.is_success:
            retryable = self.retryable(response)
            raise EngineError(f"{self.name} answered {status}: {_detail(response)}", retryable=retryable,
                              retry_after=retry_after(response.headers.get("retry-after")) if retryable else None)
        try:
            return response.json()
        except ValueError:
            raise EngineError(f"{self.name} answered {status} with something not JSON", retryable=False) from None

    def retryable(self, response: httpx.Response) -> bool:
        """Whether a failed call may succeed if tried again: a 408 or 429, or a 5xx."""
        return response.status_code in (408, 429) or response.status_code >= 500

    def malformed(self, what: str) -> EngineError:
        return EngineError(f"{self.name} answered without {what}", retryable=False)


def _detail(response: httpx.Response) -> str:
    """The reason an engine gives: LibreTranslate's `error`, DeepL's `message`, OpenAI's `error.message`."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no reason given"
    if isinstance(body, dict):
        error = body.get("error", body.get("message"))
        if isinstance(error, dict):
            error = error.get("message")
        if isinstance(error, str):
            return error[:200]
    return response.reason_phrase or "no reason given"


def build(config: Config) -> Engine | None:
    """The configured engine, or None for provider "none"."""
    from providers.translation import deepl, libretranslate, openai

    kinds = {"libretranslate": libretranslate.LibreTranslate, "deepl": deepl.DeepL, "openai": openai.OpenAI}
    if config.provider == "none":
        return None
    client = httpx.Client(timeout=config.timeout_s,
                          limits=httpx.Limits(max_connections=max(4, config.concurrency * 2)))
    return kinds[config.provider](config, client)
