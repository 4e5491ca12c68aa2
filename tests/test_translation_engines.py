"""The engine clients of providers/translation/ on the wire, against the local engines of
tests/engines.py: what each sends, how it spells languages, how it reads failures; then DeepL and an
OpenAI-compatible engine end to end through real workers (LibreTranslate's is tests/test_translation.py).

Clients are built as the workers build them (`providers.translation.build`) from the deployment's
`[translation]` with the engine's URL, a 1 s timeout and whatever else a test sets.
"""

from __future__ import annotations

import email.utils
import os
import signal
import time
from types import SimpleNamespace

import msgspec
import pytest

import config
from providers.translation import LANGUAGES_TTL_S, EngineError, build
from providers.translation.markup import Protected
from providers.translation.openai import _named
from tests import chat, translating
from tests.api import unique
from tests.engines import FakeDeepL, FakeLibreTranslate, FakeOpenAI, Reply, json_reply

URL_FIELD = {"libretranslate": "libretranslate_url", "deepl": "deepl_url", "openai": "openai_url"}
KEY_FIELD = {"libretranslate": "libretranslate_api_key", "deepl": "deepl_key", "openai": "openai_key"}
MARKUP = 'hi <x id="0"/>, R&amp;D &lt;3 you'


class Controls:
    """What the fakes here add: a count of language-list reads, a Retry-After given as an HTTP date on
    429s, and a 200 answer of a test's choosing for translate calls (`garbage`)."""

    def setup_controls(self):
        self.language_reads = 0
        self.retry_date: str | None = None
        self.garbage: Reply | None = None

    def route(self, request):
        if request.path.endswith("/languages"):
            self.language_reads += 1
        return super().route(request)

    def error(self, status, message=None, **kwargs):
        reply = super().error(status, message, **kwargs)
        if status == 429 and self.retry_date:
            reply.headers["Retry-After"] = self.retry_date
        return reply

    def translate(self, request):
        return self.garbage if self.garbage is not None else super().translate(request)


class Libre(Controls, FakeLibreTranslate):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.setup_controls()


class DeepL(Controls, FakeDeepL):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.setup_controls()


class OpenAI(Controls, FakeOpenAI):
    """Also answers 429 as an exhausted billing quota does, with `quota`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.setup_controls()
        self.quota = False

    def error(self, status, message=None, **kwargs):
        if status == 429 and self.quota:
            return json_reply(429, {"error": {
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}})
        return super().error(status, message, **kwargs)


FAKES = {"libretranslate": Libre, "deepl": DeepL, "openai": OpenAI}
#: (source, target) in each engine's own codes, for calls made straight to translate().
CODES = {"libretranslate": ("en", "ja"), "deepl": ("EN", "JA"), "openai": ("en", "ja")}
KINDS = list(FAKES)


def client(kind: str, fake, **fields):
    """The `kind` client, configured as the workers would be, for `fake` (or any URL)."""
    url = fake if isinstance(fake, str) else fake.url
    defaults = {"deepl_key": "k"} if kind == "deepl" else {}
    settings = msgspec.structs.replace(config.settings().translation, provider=kind, timeout_s=1,
                                       **{URL_FIELD[kind]: url, **defaults, **fields})
    return build(settings)


def failure(engine, texts=None, kind=None) -> EngineError:
    source, target = CODES[kind or engine.name]
    with pytest.raises(EngineError) as caught:
        engine.translate(texts or ["hello"], source, target)
    return caught.value


@pytest.fixture(scope="module")
def servers():
    """A started fake per engine, each wanting a key (`lk`, `k`, `ok`), for the module (a stop takes 0.5 s)."""
    started = {"libretranslate": Libre(api_key="lk").start(), "deepl": DeepL(api_key="k").start(),
               "openai": OpenAI(api_key="ok").start()}
    yield started
    for fake in started.values():
        fake.stop()


@pytest.fixture
def fakes(servers):
    """The module's fakes, with no calls, failures, stalls or garbage left from an earlier test."""
    for fake in servers.values():
        fake.reset()
        fake.setup_controls()
        fake.quota = False
    return servers


def keyed(kind: str, fakes, **fields):
    key = {"libretranslate": "lk", "deepl": "k", "openai": "ok"}[kind]
    return client(kind, fakes[kind], **{KEY_FIELD[kind]: key, **fields})


# What each client sends ---------------------------------------------------------------------------------


def test_libretranslate_sends_the_texts_as_a_list_of_html_with_its_key(fakes):
    fake = fakes["libretranslate"]
    engine = keyed("libretranslate", fakes)
    assert engine.translate([MARKUP, "two"], "en", "ja") == ['[ja] HI <x id="0"/>, R&amp;D &lt;3 YOU', "[ja] TWO"]
    (call,) = fake.calls
    assert call.path == "/translate"
    assert call.headers["Content-Type"] == "application/json"
    assert call.body == {"q": [MARKUP, "two"], "source": "en", "target": "ja", "format": "html", "api_key": "lk"}
    assert engine.answers_escaped is False and engine.max_texts == 50


def test_libretranslate_sends_no_api_key_when_none_is_configured():
    with Libre() as fake:
        engine = client("libretranslate", fake)
        assert engine.translate(["hello"], "en", "th") == ["[th] HELLO"]
        assert "api_key" not in fake.calls[0].body


def test_deepl_sends_its_key_header_a_list_of_texts_and_xml_tag_handling(fakes):
    fake = fakes["deepl"]
    engine = keyed("deepl", fakes)
    source = engine.source_code("en-GB")
    assert source == "EN"  # DeepL takes a bare source language
    assert engine.translate([MARKUP, "two"], source, engine.target_code("ja")) == [
        '[JA] HI <x id="0"/>, R&amp;D &lt;3 YOU', "[JA] TWO"]
    (call,) = fake.calls
    assert call.path == "/v2/translate"
    assert call.headers["Authorization"] == "DeepL-Auth-Key k"
    assert call.body == {"text": [MARKUP, "two"], "source_lang": "EN", "target_lang": "JA", "tag_handling": "xml",
                         "ignore_tags": ["x"]}
    assert engine.answers_escaped is True and engine.max_texts == 50


def test_openai_sends_the_model_a_prompt_naming_the_target_and_its_bearer_key(fakes):
    fake = fakes["openai"]
    engine = keyed("openai", fakes, openai_model="gpt-4o-mini")
    assert engine.translate([MARKUP], "en", "ja") == ['[ja] HI <x id="0"/>, R&amp;D &lt;3 YOU']
    (call,) = fake.calls
    assert call.path == "/v1/chat/completions"
    assert call.headers["Authorization"] == "Bearer ok"
    body = call.body
    assert (body["model"], body["temperature"], body["stream"]) == ("gpt-4o-mini", 0, False)
    system, user = body["messages"]
    assert system["role"] == "system" and user == {"role": "user", "content": MARKUP}
    assert "from English (en) into Japanese (ja)" in system["content"]
    assert '<x id="0"/>' in system["content"]
    assert engine.max_texts == 1


def test_openai_sends_no_authorization_when_no_key_is_configured():
    with OpenAI(models=["llama3.1"]) as fake:
        engine = client("openai", fake, openai_model="llama3.1")
        assert engine.translate(["hello"], "en", "th") == ["[th] HELLO"]
        assert fake.calls[0].headers.get("Authorization") is None
        assert fake.calls[0].body["model"] == "llama3.1"


def test_openai_names_languages_in_its_prompt():
    assert _named("zh-CN") == "Simplified Chinese (zh-CN)"
    assert _named("zh-TW") == "Traditional Chinese (zh-TW)"
    assert _named("pt-BR") == "Portuguese (pt-BR)"
    assert _named("id") == "Indonesian (id)"
    assert _named("xx") == "the language with the BCP 47 tag (xx)"


def test_openai_strips_the_models_answer_and_the_spans_come_back():
    protected = Protected("ping @bob about https://example.com/a?b=1&c=2 now")
    with OpenAI() as fake:
        engine = client("openai", fake)
        (answer,) = engine.translate([protected.markup], "en", "zh-CN")
        assert protected.restore(answer) == "[zh-CN] PING @bob ABOUT https://example.com/a?b=1&c=2 NOW"
        assert "into Simplified Chinese (zh-CN)" in fake.calls[0].body["messages"][0]["content"]


# Language codes -----------------------------------------------------------------------------------------

TAGS = ["en", "zh-CN", "zh-TW", "ja", "th", "id", "pt-BR"]


def codes(engine, tags=TAGS) -> dict:
    return {tag: engine.target_code(tag) for tag in tags}


def test_libretranslate_codes_come_from_its_language_list():
    with Libre(languages=["en", "zh", "zt", "ja", "th", "id", "pt"]) as fake:
        engine = client("libretranslate", fake)
        assert engine.languages() == {"en", "zh-Hans", "zh-Hant", "ja", "th", "id", "pt"}
        assert codes(engine) == {"en": "en", "zh-CN": "zh-Hans", "zh-TW": "zh-Hant", "ja": "ja", "th": "th",
                                 "id": "id", "pt-BR": "pt"}
        assert engine.source_code("zh-TW") == "zh-Hant" and engine.source_code("en-GB") == "en"
    with Libre(languages=["en", "ja"]) as fake:
        assert codes(client("libretranslate", fake)) == {"en": "en", "zh-CN": None, "zh-TW": None, "ja": "ja",
                                                          "th": None, "id": None, "pt-BR": None}


def test_libretranslate_uses_its_brazilian_portuguese_model():
    with Libre(languages=["en", "pt", "pb"]) as fake:
        assert client("libretranslate", fake).target_code("pt-BR") == "pt-BR"
    with Libre(languages=["en", "pb"]) as fake:
        assert client("libretranslate", fake).target_code("pt-BR") == "pt-BR"


def test_deepl_codes_come_from_its_target_list():
    targets = ["EN-GB", "EN-US", "ID", "JA", "PT-BR", "PT-PT", "TH", "ZH", "ZH-HANS", "ZH-HANT"]
    with DeepL(api_key="k", languages=targets) as fake:
        engine = client("deepl", fake)
        assert codes(engine, TAGS + ["en-GB", "pt", "pt-PT"]) == {
            "en": "EN-US", "en-GB": "EN-GB", "zh-CN": "ZH-HANS", "zh-TW": "ZH-HANT", "ja": "JA", "th": "TH",
            "id": "ID", "pt-BR": "PT-BR", "pt": "PT-PT", "pt-PT": "PT-PT"}
        assert {tag: engine.source_code(tag) for tag in ["en-US", "zh-TW", "pt-BR", "ja"]} == {
            "en-US": "EN", "zh-TW": "ZH", "pt-BR": "PT", "ja": "JA"}
    with DeepL(api_key="k", languages=["EN-US", "JA", "ZH"]) as fake:  # before ZH-HANS and ZH-HANT
        assert codes(client("deepl", fake)) == {"en": "EN-US", "zh-CN": "ZH", "zh-TW": None, "ja": "JA",
                                                "th": None, "id": None, "pt-BR": None}


def test_deepl_reads_its_language_list_with_its_key(fakes):
    engine = keyed("deepl", fakes)
    assert engine.languages() >= {"JA", "ZH-HANS", "ZH-HANT", "EN-US", "EN", "ZH"}
    wrong = client("deepl", fakes["deepl"], deepl_key="wrong")
    assert wrong.languages() is None  # 403: it cannot say, so every language is tried


def test_openai_takes_every_tag_as_it_is():
    with OpenAI() as fake:
        engine = client("openai", fake)
        assert engine.languages() is None
        assert codes(engine) == {tag: tag for tag in TAGS}
        assert fake.language_reads == 0


def test_language_lists_are_read_once_and_again_when_stale():
    with Libre() as libre, DeepL(api_key="k") as deepl:
        for fake, engine in [(libre, client("libretranslate", libre)), (deepl, client("deepl", deepl))]:
            for tag in TAGS * 3:
                engine.target_code(tag)
                engine.source_code(tag)
            assert fake.language_reads == 1
            at, known = engine._languages
            engine._languages = (at - LANGUAGES_TTL_S - 1, known)  # an hour later
            engine.target_code("ja")
            assert fake.language_reads == 2


def test_a_language_list_that_cannot_be_read_is_asked_for_again_a_minute_later():
    with DeepL(api_key="k") as fake:
        engine = client("deepl", fake, deepl_key="wrong")
        assert engine.target_code("zh-TW") == "ZH-HANT"  # without a list: the first candidate
        assert engine.target_code("ja") == "JA"
        assert fake.language_reads == 1
        at, known = engine._languages
        engine._languages = (at - 61, known)
        engine.target_code("ja")
        assert fake.language_reads == 2


# Failures -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_429_is_retryable_after_its_retry_after_seconds(kind, fakes):
    fakes[kind].fail_next(429, retry_after=7)
    error = failure(keyed(kind, fakes))
    assert (error.retryable, error.retry_after) == (True, 7.0)
    assert "429" in error.reason


@pytest.mark.parametrize("kind", KINDS)
def test_a_429_is_retryable_after_its_retry_after_date(kind, fakes):
    fakes[kind].retry_date = email.utils.formatdate(time.time() + 30, usegmt=True)
    fakes[kind].fail_next(429)
    error = failure(keyed(kind, fakes))
    assert error.retryable
    assert 27 <= error.retry_after <= 31, error.retry_after
    fakes[kind].retry_date = email.utils.formatdate(time.time() - 30, usegmt=True)  # already past
    fakes[kind].fail_next(429)
    assert failure(keyed(kind, fakes)).retry_after == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_429_without_retry_after_is_retryable_at_once(kind, fakes):
    fakes[kind].fail_next(429)
    error = failure(keyed(kind, fakes))
    assert (error.retryable, error.retry_after) == (True, None)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_is_retryable(kind, status, fakes):
    fakes[kind].fail_next(status)
    error = failure(keyed(kind, fakes))
    assert error.retryable and error.retry_after is None
    assert f"answered {status}" in error.reason


def test_deepls_529_is_retryable(fakes):
    fakes["deepl"].fail_next(529)
    assert failure(keyed("deepl", fakes)).retryable


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 456])
def test_other_4xx_are_not_retryable(kind, status, fakes):
    fakes[kind].fail_next(status, retry_after=5)
    error = failure(keyed(kind, fakes))
    assert (error.retryable, error.retry_after) == (False, None)
    assert f"answered {status}" in error.reason


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_key_is_not_retryable(kind, fakes):
    engine = client(kind, fakes[kind], **{KEY_FIELD[kind]: "wrong"})
    error = failure(engine)
    assert not error.retryable and ("403" in error.reason or "401" in error.reason)


def test_the_engines_reason_is_in_the_error(fakes):
    fakes["deepl"].fail_next(456)
    assert failure(keyed("deepl", fakes)).reason == \
        "deepl answered 456: Quota for this billing period has been exceeded."
    fakes["libretranslate"].fail_next(400, message="xx is not supported")
    assert failure(keyed("libretranslate", fakes)).reason == "libretranslate answered 400: xx is not supported"
    fakes["openai"].fail_next(404)
    assert failure(keyed("openai", fakes)).reason == \
        "openai answered 404: The model does not exist or you do not have access to it."


def test_openai_out_of_quota_is_not_retryable_but_its_rate_limit_is(fakes):
    fake, engine = fakes["openai"], keyed("openai", fakes)
    fake.fail_next(429, retry_after=20)
    assert failure(engine).retryable
    fake.quota = True
    fake.fail_next(429, retry_after=20)
    error = failure(engine)
    assert (error.retryable, error.retry_after) == (False, None)
    assert "exceeded your current quota" in error.reason


@pytest.mark.parametrize("kind", KINDS)
def test_a_stalled_engine_times_out_retryably(kind, fakes):
    fakes[kind].stall_next(seconds=5)
    started = time.monotonic()
    error = failure(keyed(kind, fakes))
    assert 0.9 <= time.monotonic() - started < 2
    assert error.retryable and "timed out after 1 s" in error.reason
    assert keyed(kind, fakes).translate(["again"], *CODES[kind])  # and the next call goes through


@pytest.mark.parametrize("kind", KINDS)
def test_an_engine_that_is_down_is_retryable(kind):
    fake = FAKES[kind]()
    fake.stop()  # never started: nothing listens on its port
    error = failure(client(kind, fake))
    assert error.retryable and "unreachable (ConnectError)" in error.reason


def test_an_engine_that_stops_between_calls_is_retryable():
    fake = DeepL(api_key="k").start()
    engine = client("deepl", fake)
    assert engine.translate(["one"], "EN", "JA") == ["[JA] ONE"]
    fake.stop()  # the pooled connection is cut and nobody listens any more
    error = failure(engine)
    assert error.retryable and "unreachable" in error.reason


MALFORMED = {
    "libretranslate": [{"translatedText": "one string"}, {"translatedText": ["one"]}, {"translatedText": [1, 2]},
                       {"translation": ["a", "b"]}, {"translatedText": None}],
    "deepl": [{"translations": [{"text": "a"}]}, {"translations": [{"txt": "a"}, {"txt": "b"}]},
              {"translations": ["a", "b"]}, {"translations": [{"text": 1}, {"text": "b"}]}, {"translations": {}}],
    "openai": [{"choices": []}, {"choices": [{"message": None}]}, {"choices": [{"message": {"content": None}}]},
               {"choices": [{"text": "completion style"}]}, {"choices": "x"},
               {"choices": [{"message": {"content": 5}}]}],
}
EVERYWHERE = [None, [], {}, "a string", 42, [{"text": "a"}]]


@pytest.mark.parametrize("kind", KINDS)
def test_a_malformed_answer_is_a_non_retryable_engine_error(kind):
    texts = ["hello"] if kind == "openai" else ["hello", "world"]
    with FAKES[kind]() as fake:
        engine = client(kind, fake)
        replies = [json_reply(200, body) for body in MALFORMED[kind] + EVERYWHERE]
        replies += [Reply(200, b"<html><body>Welcome to nginx!</body></html>", "text/html"),
                    Reply(200, b"", "application/json"), Reply(200, b'{"translations": [', "application/json"),
                    Reply(200, b"\xff\xfe not utf-8", "application/json")]
        for reply in replies:
            fake.garbage = reply
            error = failure(engine, texts)  # an EngineError: nothing else escapes
            assert not error.retryable, (reply.body, error.reason)
            assert error.reason.startswith(f"{kind} answered"), error.reason


def test_a_client_pointed_at_another_engine_gets_a_non_retryable_error():
    with Libre() as libre, OpenAI() as openai:
        deepl_at_libre = client("deepl", libre)
        error = failure(deepl_at_libre, kind="deepl")
        assert not error.retryable and "answered 404" in error.reason
        assert deepl_at_libre.languages() is None
        error = failure(client("libretranslate", openai.url), kind="libretranslate")
        assert not error.retryable and "answered 404" in error.reason


def test_a_non_json_error_page_is_read_by_its_status(fakes):
    fake = fakes["deepl"]
    fake.garbage = Reply(502, b"<html>502 Bad Gateway</html>", "text/html")
    error = failure(keyed("deepl", fakes))
    assert error.retryable and error.reason == "deepl answered 502: Bad Gateway"
    fake.garbage = Reply(400, b"<html>no</html>", "text/html")
    assert not failure(keyed("deepl", fakes)).retryable


def test_deepl_without_a_key_fails_as_not_retryable():
    with DeepL() as fake:
        engine = client("deepl", fake, deepl_key="")
        error = failure(engine)
        assert not error.retryable, error.reason


def test_a_url_without_a_scheme_is_not_retryable():
    with DeepL(api_key="k") as fake:
        error = failure(client("deepl", fake.url.removeprefix("http://")))
        assert not error.retryable, error.reason


# End to end: DeepL, then the same deployment switched to an OpenAI-compatible engine ---------------------


@pytest.fixture(scope="module")
def deepl_fake():
    fake = FakeDeepL(api_key="k").start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def openai_fake():
    fake = FakeOpenAI(models=["llama3.1"]).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def tstack(deepl_fake):
    stack = translating.translating_stack("deepl", deepl_fake.url, SECTOR_TRANSLATION_DEEPL_KEY="k")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def team(tstack):
    """A public workspace of an English owner and readers of ja and zh-CN, with a channel."""
    owner = translating.reader(tstack, "en", "Owner")
    readers = {tag: translating.reader(tstack, tag) for tag in ("ja", "zh-CN")}
    ws = chat.workspace(owner, unique("Babel"), visibility="public")
    for user in readers.values():
        chat.join(user, ws, by=owner)
    return SimpleNamespace(stack=tstack, owner=owner, readers=readers, ws=ws, ch=chat.channel(owner, ws, "general"))


def read(user, team, message: dict) -> dict:
    answer = user.api.get(f"{chat.messages_path(team.ws, team.ch)}/{message['id']}")
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def kill(process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


TEXT = "Please review the plan with @bob before Friday: https://example.com/plan?v=2&lang=en, R&D says a < b 👍🏽"


def test_deepl_translates_for_each_reader_through_the_workers(team, deepl_fake):
    deepl_fake.reset()
    message = chat.post(team.owner, team.ws, team.ch, TEXT)
    mine = translating.settled(team.owner, f"{chat.messages_path(team.ws, team.ch)}/{message['id']}")
    assert (mine["translation_status"], mine["language"], mine["display_source"], mine["display_content"]) == \
        ("completed", "en", "original", TEXT)
    upper = ("PLEASE REVIEW THE PLAN WITH @bob BEFORE FRIDAY: https://example.com/plan?v=2&lang=en, R&D SAYS A < B 👍🏽")
    for tag, code in [("ja", "JA"), ("zh-CN", "ZH-HANS")]:
        seen = read(team.readers[tag], team, message)
        assert (seen["translation_status"], seen["display_source"], seen["display_content"]) == \
            ("completed", "translated", f"[{code}] {upper}"), tag
        assert seen["original_content"] == TEXT
    calls = deepl_fake.calls
    assert sorted(call.target for call in calls) == ["JA", "ZH-HANS"]  # one call per language, not per reader
    for call in calls:
        assert call.status == 200 and call.headers["Authorization"] == "DeepL-Auth-Key k"
        assert call.body["source_lang"] == "EN" and call.body["tag_handling"] == "xml"
        assert call.texts == [Protected(TEXT).markup]


def test_the_same_deployment_switched_to_an_openai_engine_translates_with_it(team, deepl_fake, openai_fake):
    deepl_fake.reset()
    openai_fake.reset()
    kill(team.stack.worker)
    team.stack.start_worker(**translating.engine_settings("openai", openai_fake.url),
                            SECTOR_TRANSLATION_OPENAI_MODEL="llama3.1")
    text = "The release notes are ready, @maria: see `CHANGELOG.md` and https://example.com/notes 🎉"
    message = chat.post(team.owner, team.ws, team.ch, text)
    translating.settled(team.owner, f"{chat.messages_path(team.ws, team.ch)}/{message['id']}", timeout=45)
    upper = "THE RELEASE NOTES ARE READY, @maria: SEE `CHANGELOG.md` AND https://example.com/notes 🎉"
    for tag in ("ja", "zh-CN"):
        seen = read(team.readers[tag], team, message)
        assert (seen["translation_status"], seen["language"], seen["display_source"], seen["display_content"]) == \
            ("completed", "en", "translated", f"[{tag}] {upper}"), tag
    calls = openai_fake.calls
    assert len(calls) == 2  # one text a call, one call per language
    assert sorted(call.target for call in calls) == ["ja", "zh-CN"]
    assert all(call.status == 200 and call.body["model"] == "llama3.1" for call in calls)
    assert all(call.texts == [Protected(text).markup] for call in calls)
    assert deepl_fake.calls == []
