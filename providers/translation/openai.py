"""Any OpenAI-compatible chat-completions endpoint (OpenAI, or a local Ollama or vLLM):
`POST {openai_url}/chat/completions`, one text a call, with a system prompt that asks for the
translation only and for the `<x id="N"/>` tags of protected spans to stay where they are."""

from __future__ import annotations

import re

from domain.languages import chinese_script
from providers.translation import Engine

# Names the prompt gives the model beside the tag; a tag not here is named by the tag alone.
NAMES = {
    "ar": "Arabic", "bn": "Bengali", "de": "German", "en": "English", "es": "Spanish", "fa": "Persian",
    "fil": "Filipino", "fr": "French", "hi": "Hindi", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "km": "Khmer", "ko": "Korean", "lo": "Lao", "ms": "Malay", "my": "Burmese", "nl": "Dutch", "pl": "Polish",
    "pt": "Portuguese", "ru": "Russian", "sv": "Swedish", "th": "Thai", "tl": "Tagalog", "tr": "Turkish",
    "uk": "Ukrainian", "vi": "Vietnamese", "zh-Hans": "Simplified Chinese", "zh-Hant": "Traditional Chinese",
}

PROMPT = (
    "You are a translation engine. Translate the user's message from {source} into {target}. "
    "Reply with the translation only: no explanations, notes or quotation marks. "
    'Keep every tag such as <x id="0"/> exactly as written, at the place in the sentence it belongs. '
    "Keep character entities such as &amp; and &lt; as they are."
)


# What a reasoning model (served by Ollama, say) thinks before it answers.
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)


def _named(tag: str) -> str:
    key = f"zh-{chinese_script(tag)}" if tag.lower().startswith("zh") else tag.split("-")[0].lower()
    name = NAMES.get(key)
    return f"{name} ({tag})" if name else f"the language with the BCP 47 tag ({tag})"


class OpenAI(Engine):
    name = "openai"
    max_texts = 1

    def retryable(self, response) -> bool:
        # OpenAI answers an exhausted billing quota with 429 too; waiting does not refill it.
        if response.status_code == 429:
            try:
                return response.json()["error"]["code"] != "insufficient_quota"
            except (ValueError, KeyError, TypeError):
                return True
        return super().retryable(response)

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        (text,) = texts
        body = {"model": self.config.openai_model, "temperature": 0, "stream": False,
                "messages": [{"role": "system", "content": PROMPT.format(source=_named(source), target=_named(target))},
                             {"role": "user", "content": text}]}
        headers = {"Authorization": f"Bearer {self.config.openai_key}"} if self.config.openai_key else {}
        answer = self.request("POST", self.config.openai_url.rstrip("/") + "/chat/completions", json=body,
                              headers=headers)
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise self.malformed("choices[0].message.content") from None
        if not isinstance(content, str):
            raise self.malformed("choices[0].message.content")
        return [_THINKING.sub("", content).strip()]
