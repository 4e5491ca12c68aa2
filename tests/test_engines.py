"""The local translation engines of tests/engines.py speak their engine's protocol and obey their controls."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.engines import FakeDeepL, FakeLibreTranslate, FakeOpenAI, fake_translation

MARKUP = 'hi <x id="0"/> there &amp; you'
PROMPT = "You are a translation engine. Translate the user's message from English (en) into Japanese (ja). " \
         'Keep every tag such as <x id="0"/> exactly as written.'


def libre(engine, **body) -> httpx.Response:
    return httpx.post(engine.url + "/translate", json=body, timeout=5)


def deepl(engine, key="k", **body) -> httpx.Response:
    return httpx.post(engine.url + "/v2/translate", json=body, headers={"Authorization": f"DeepL-Auth-Key {key}"},
                      timeout=5)


def chat(engine, text, key=None, prompt=PROMPT, model="llama3", timeout=5) -> httpx.Response:
    body = {"model": model, "temperature": 0,
            "messages": [{"role": "system", "content": prompt}, {"role": "user", "content": text}]}
    return httpx.post(engine.url + "/chat/completions", json=body, timeout=timeout,
                      headers={"Authorization": f"Bearer {key}"} if key else {})


def test_the_fake_translation_keeps_tags_and_entities_in_markup_mode():
    assert fake_translation(MARKUP, "ja", True) == '[ja] HI <x id="0"/> THERE &amp; YOU'
    assert fake_translation("a &lt;b&gt; <i>c</i>", "JA", True) == "[JA] A &lt;B&gt; <i>C</i>"
    assert fake_translation(MARKUP, "ja", False) == '[ja] HI <X ID="0"/> THERE &AMP; YOU'
    assert fake_translation("a <x>keep me</x> b", "JA", True, {"x"}) == "[JA] A <x>keep me</x> B"


def test_libretranslate_translates_a_text_a_list_and_html():
    with FakeLibreTranslate() as engine:
        assert libre(engine, q="hello", source="en", target="ja").json() == {"translatedText": "[ja] HELLO"}
        answer = libre(engine, q=["one", MARKUP], source="en", target="zh-Hans", format="html").json()
        assert answer == {"translatedText": ["[zh-Hans] ONE", '[zh-Hans] HI <x id="0"/> THERE &amp; YOU']}
        form = httpx.post(engine.url + "/translate", data={"q": "a\r\nb", "source": "en", "target": "th"})
        assert form.json() == {"translatedText": "[th] A\nB"}
        auto = libre(engine, q=["สวัสดี", "ครับ"], source="auto", target="en").json()
        assert auto["detectedLanguage"] == [{"confidence": 90.0, "language": "th"}] * 2
        assert libre(engine, q="こんにちは", source="auto", target="en").json()["detectedLanguage"]["language"] == "ja"
        assert libre(engine, q="😀", source="en", target="ja").json() == {"translatedText": "😀"}
        call = engine.calls[1]
        assert (call.path, call.texts, call.source, call.target, call.status) == \
               ("/translate", ["one", MARKUP], "en", "zh-Hans", 200)
        assert engine.translate_calls() == 6


def test_libretranslate_refuses_as_libretranslate_does():
    with FakeLibreTranslate(api_key="secret", max_chars=10) as engine:
        assert libre(engine, q="hi", source="en", target="ja", api_key="wrong").json() == {"error": "Invalid API key"}
        missing = libre(engine, q="hi", source="en", target="ja")
        assert missing.status_code == 400 and "API key" in missing.json()["error"]
        ok = {"source": "en", "api_key": "secret"}
        assert libre(engine, q="hi", target="xx", **ok).json() == {"error": "xx is not supported"}
        assert libre(engine, target="ja", **ok).json() == {"error": "Invalid request: missing q parameter"}
        long = libre(engine, q="x" * 11, target="ja", **ok)
        assert (long.status_code, long.json()) == \
               (400, {"error": "Invalid request: request (11) exceeds text limit (10)"})
        assert engine.translate_calls(status=403) == 1 and engine.translate_calls(status=400) == 4


def test_libretranslate_languages_and_detect():
    with FakeLibreTranslate(languages=["en", "zh", "zt", "ja"], unescape_output=True) as engine:
        languages = httpx.get(engine.url + "/languages").json()
        assert [(entry["code"], entry["name"]) for entry in languages] == \
               [("en", "English"), ("zh-Hans", "Chinese"), ("zh-Hant", "Chinese (traditional)"), ("ja", "Japanese")]
        assert languages[0]["targets"] == ["en", "zh-Hans", "zh-Hant", "ja"]
        detected = httpx.post(engine.url + "/detect", json={"q": "terima kasih"}).json()
        assert detected == [{"confidence": 90.0, "language": "id"}]
        assert libre(engine, q="a &amp; b", source="en", target="zt", format="html").json() == \
               {"translatedText": "[zt] A & B"}


def test_deepl_translates_json_and_forms_with_tag_handling():
    with FakeDeepL(api_key="k") as engine:
        answer = deepl(engine, text=["Hello", 'a <x id="0">keep</x> &amp; b'], target_lang="JA", source_lang="EN",
                       tag_handling="xml", ignore_tags=["x"]).json()
        assert answer == {"translations": [
            {"detected_source_language": "EN", "text": "[JA] HELLO"},
            {"detected_source_language": "EN", "text": '[JA] A <x id="0">keep</x> &amp; B'}]}
        form = httpx.post(engine.url + "/v2/translate", headers={"Authorization": "DeepL-Auth-Key k"},
                          data={"text": ["สวัสดี", "b <b>c</b>"], "target_lang": "zh-hans"}).json()
        assert [t["detected_source_language"] for t in form["translations"]] == ["TH", "EN"]
        assert form["translations"][1]["text"] == "[zh-hans] B <B>C</B>"
        targets = httpx.get(engine.url + "/v2/languages", params={"type": "target"},
                            headers={"Authorization": "DeepL-Auth-Key k"}).json()
        assert {"language": "JA", "name": "Japanese", "supports_formality": True} in targets
        assert {"TH", "ID", "ZH-HANS", "ZH-HANT", "EN-US"} <= {t["language"] for t in targets}
        assert engine.calls[1].texts == ["สวัสดี", "b <b>c</b>"] and engine.calls[1].target == "zh-hans"


def test_deepl_refuses_as_deepl_does():
    with FakeDeepL(api_key="k", max_chars=10) as engine:
        bad_key = deepl(engine, key="nope", text=["hi"], target_lang="JA")
        assert (bad_key.status_code, bad_key.content) == (403, b"")
        assert deepl(engine, text=["hi"], target_lang="XX").json() == \
               {"message": "Value for 'target_lang' not supported."}
        assert deepl(engine, text=["hi"], target_lang="JA", source_lang="EN-US").status_code == 400
        assert deepl(engine, text=["hi"], target_lang="EN").status_code == 200  # listed as EN-GB/EN-US only
        assert deepl(engine, text=["123456", "78901"], target_lang="JA").status_code == 413
        engine.fail_next(456)
        quota = deepl(engine, text=["hi"], target_lang="JA")
        assert (quota.status_code, quota.json()) == \
               (456, {"message": "Quota for this billing period has been exceeded."})


def test_openai_translates_markup_into_the_prompts_target():
    with FakeOpenAI(api_key="sk-test", models=["llama3"]) as engine:
        answer = chat(engine, MARKUP, key="sk-test").json()
        assert answer["object"] == "chat.completion" and answer["model"] == "llama3"
        assert answer["choices"][0]["message"] == \
               {"role": "assistant", "content": '[ja] HI <x id="0"/> THERE &amp; YOU', "refusal": None}
        assert answer["choices"][0]["finish_reason"] == "stop" and answer["usage"]["total_tokens"] > 0
        assert engine.calls[0].texts == [MARKUP] and engine.calls[0].target == "ja"
        unauthorized = chat(engine, "hi", key="sk-wrong")
        assert unauthorized.status_code == 401 and unauthorized.json()["error"]["code"] == "invalid_api_key"
        assert chat(engine, "hi").status_code == 401
        unknown = chat(engine, "hi", key="sk-test", model="gpt-9")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
        assert httpx.get(engine.url + "/models").json()["data"][0]["id"] == "llama3"


@pytest.mark.parametrize("make, send, shape", [
    (FakeLibreTranslate, lambda e: libre(e, q="hi", source="en", target="ja"), lambda body: body["error"]),
    (FakeDeepL, lambda e: deepl(e, text=["hi"], target_lang="JA"), lambda body: body["message"]),
    (FakeOpenAI, lambda e: chat(e, "hi"), lambda body: body["error"]["message"]),
])
def test_fail_next_answers_the_engines_error_with_retry_after(make, send, shape):
    with make() as engine:
        engine.fail_next(429, times=2, retry_after=3)
        engine.fail_next(503, retry_after=1.5)
        first, second, third, fourth = (send(engine) for _ in range(4))
        assert (first.status_code, first.headers["retry-after"]) == (429, "3")
        assert shape(first.json())
        assert second.status_code == 429
        assert (third.status_code, third.headers["retry-after"]) == (503, "1.5")
        assert fourth.status_code == 200 and "retry-after" not in fourth.headers
        assert [call.status for call in engine.calls] == [429, 429, 503, 200]
        engine.fail_next(500, times=5)
        engine.reset()
        assert engine.calls == [] and send(engine).status_code == 200


def test_a_stalled_call_outlives_the_clients_timeout_and_the_next_one_is_served():
    with FakeOpenAI() as engine:
        engine.stall_next(seconds=5)
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            chat(engine, "hi", timeout=0.3)
        assert time.monotonic() - started < 2
        assert chat(engine, "hi").json()["choices"][0]["message"]["content"] == "[ja] HI"


def test_concurrent_calls_are_served_at_once_and_counted():
    with FakeLibreTranslate(delay_s=0.3) as engine:
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(libre(engine, q="hi", source="en", target="ja")))
                   for _ in range(5)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert time.monotonic() - started < 1.2
        assert [a.status_code for a in answers] == [200] * 5
        assert engine.max_in_flight == 5 and engine.in_flight == 0


def test_stop_cuts_a_pooled_connection():
    engine = FakeDeepL().start()
    with httpx.Client(timeout=2) as client:
        assert client.post(engine.url + "/v2/translate", json={"text": ["hi"], "target_lang": "JA"}).status_code == 200
        engine.stop()
        with pytest.raises(httpx.TransportError):
            client.post(engine.url + "/v2/translate", json={"text": ["hi"], "target_lang": "JA"})
