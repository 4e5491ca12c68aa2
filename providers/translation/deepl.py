"""DeepL API v2 (developers.deepl.com): `POST /v2/translate` with a JSON list of texts,
`tag_handling=xml` and `ignore_tags=["x"]`, so protected spans pass as tags; `GET /v2/languages`.
The key goes in `Authorization: DeepL-Auth-Key`; a free key uses api-free.deepl.com."""

from __future__ import annotations

from domain.languages import chinese_script
from providers.translation import Engine, EngineError


class DeepL(Engine):
    name = "deepl"
    max_texts = 50  # DeepL's limit of texts a request

    def _url(self, path: str) -> str:
        return self.config.deepl_url.rstrip("/") + path

    def _headers(self) -> dict:
        if not self.config.deepl_key.strip():
            raise EngineError("[translation] deepl_key is not set", retryable=False)
        return {"Authorization": f"DeepL-Auth-Key {self.config.deepl_key.strip()}"}

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        body = {"text": texts, "source_lang": source, "target_lang": target, "tag_handling": "xml",
                "ignore_tags": ["x"]}
        answer = self.request("POST", self._url("/v2/translate"), json=body, headers=self._headers())
        translations = answer.get("translations") if isinstance(answer, dict) else None
        if not isinstance(translations, list) or len(translations) != len(texts):
            raise self.malformed(f"{len(texts)} translations")
        texts_out = [t.get("text") if isinstance(t, dict) else None for t in translations]
        if not all(isinstance(t, str) for t in texts_out):
            raise self.malformed("the text of each translation")
        return texts_out

    def fetch_languages(self) -> set[str] | None:
        answer = self.request("GET", self._url("/v2/languages"), params={"type": "target"}, headers=self._headers())
        if not isinstance(answer, list):
            raise self.malformed("a list of languages")
        codes = {e["language"] for e in answer if isinstance(e, dict) and isinstance(e.get("language"), str)}
        if not codes:
            raise self.malformed("any language code")
        # Source codes are the bare language of each target (EN of EN-US).
        return codes | {code.split("-")[0] for code in codes}

    def target_candidates(self, tag: str) -> list[str]:
        parts = tag.upper().split("-")
        primary = parts[0]
        if primary == "ZH":
            return ["ZH-HANT"] if chinese_script(tag) == "Hant" else ["ZH-HANS", "ZH"]
        if primary == "EN":
            return ["EN-GB", "EN"] if "GB" in parts else ["EN-US", "EN"]
        if primary == "PT":
            return ["PT-BR", "PT"] if "BR" in parts else ["PT-PT", "PT"]
        return [primary]

    def source_candidates(self, tag: str) -> list[str]:
        return [tag.split("-")[0].upper()]
