"""LibreTranslate (github.com/LibreTranslate/LibreTranslate): `POST /translate` with a list of texts
in `q` and `format=html`, so protected spans pass as tags; `POST /detect`; `GET /languages`.
An `api_key` goes in the body when the server wants one."""

from __future__ import annotations

from domain.languages import chinese_script
from providers.translation import Engine


class LibreTranslate(Engine):
    name = "libretranslate"
    max_texts = 50
    answers_escaped = False  # it runs html.unescape over every answer (libretranslate/app.py)

    def _body(self, **fields) -> dict:
        key = self.config.libretranslate_api_key
        return fields | ({"api_key": key} if key else {})

    def _url(self, path: str) -> str:
        return self.config.libretranslate_url.rstrip("/") + path

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        answer = self.request("POST", self._url("/translate"),
                              json=self._body(q=texts, source=source, target=target, format="html"))
        translated = answer.get("translatedText") if isinstance(answer, dict) else None
        if not isinstance(translated, list) or len(translated) != len(texts) \
                or not all(isinstance(t, str) for t in translated):
            raise self.malformed(f"{len(texts)} translatedText")
        return translated

    def detect(self, texts: list[str]) -> list[str | None]:
        found = []
        for text in texts:  # /detect takes one text a call
            answer = self.request("POST", self._url("/detect"), json=self._body(q=text))
            best = answer[0] if isinstance(answer, list) and answer and isinstance(answer[0], dict) else {}
            found.append(best.get("language") if isinstance(best.get("language"), str) else None)
        return found

    def fetch_languages(self) -> set[str] | None:
        answer = self.request("GET", self._url("/languages"))
        if not isinstance(answer, list):
            raise self.malformed("a list of languages")
        codes = {entry["code"] for entry in answer if isinstance(entry, dict) and isinstance(entry.get("code"), str)}
        if not codes:
            raise self.malformed("any language code")
        return codes

    def target_candidates(self, tag: str) -> list[str]:
        primary = tag.split("-")[0].lower()
        if primary == "zh":
            # Argos models: `zh` (Simplified) and `zt` (Traditional); since 2025 LibreTranslate lists them as
            # zh-Hans and zh-Hant and takes either spelling.
            return ["zt", "zh-Hant"] if chinese_script(tag) == "Hant" else ["zh", "zh-Hans"]
        if tag.lower() == "pt-br":
            return ["pt-BR", "pb", "pt"]  # Brazilian: `pb` before 2025
        return [primary]
