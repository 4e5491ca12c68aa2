"""Languages: BCP 47 tags as readers choose them, which of them need a translation of one another,
and the language a message is written in, detected in-process.

Two tags need no translation between them when they are the same language in the same script:
`en`, `en-US` and `en-GB` are one; `zh-CN` (Simplified) and `zh-TW` (Traditional) are not.
Imports nothing of Sector's, so providers/ may use it too.
"""

from __future__ import annotations

import functools
import re

_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")


@functools.lru_cache(maxsize=1024)
def canonical(tag: str) -> str:
    """The tag in its usual case (`zh-cn` → `zh-CN`, `zh_hant` → `zh-Hant`, `EN` → `en`)."""
    primary, *rest = tag.strip().replace("_", "-").split("-")
    out = [primary.lower()]
    for part in rest:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())  # script
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())  # region
        else:
            out.append(part.lower())
    return "-".join(out)


def is_tag(value: str) -> bool:
    return bool(_TAG.match(value.strip()))


def chinese_script(tag: str) -> str:
    """`Hant` for Traditional Chinese tags (zh-TW, zh-HK, zh-MO, zh-Hant), else `Hans`."""
    subtags = {part.lower() for part in tag.replace("_", "-").split("-")[1:]}
    return "Hant" if subtags & {"hant", "tw", "hk", "mo"} else "Hans"


@functools.lru_cache(maxsize=1024)
def variant(tag: str) -> str:
    """What a reader of `tag` reads: its language, and for Chinese its script."""
    primary = _primary(tag)
    return f"zh-{chinese_script(tag)}" if primary == "zh" else primary


def same(a: str, b: str) -> bool:
    """Whether a reader of `a` reads text in `b` as it is."""
    return variant(a) == variant(b)


def accepted(header: str | None) -> list[str]:
    """The tags of an Accept-Language header (RFC 9110 §12.5.4), most wanted first; `*` and q=0 left out."""
    if not header:
        return []
    ranked = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag and tag != "*" and weight > 0 and is_tag(tag):
            ranked.append((-weight, position, canonical(tag)))
    return [tag for _, _, tag in sorted(ranked)]


# Detection, with py3langid (its model ships inside its wheel). Measured against lingua on short chat
# lines in en, zh-CN, ja, th and id (bench/detectors.py): restricted to ~20 languages it was the most
# accurate on short lines (91% alone, 96% with the author's language as a hint), ~20 us a text, +92 MB.

#: Short or ambiguous text takes the author's language when the detector gives it at least this share
#: of the top candidate's probability (1 - margin, margin 0.5: bench/detectors.py's tie-break table).
HINT_SHARE = 0.5
#: Text shorter than this, or of at most SHORT_UNITS word-ish units, is short.
SHORT_CHARS = 12
SHORT_UNITS = 3
#: Below this lead of the top candidate over the second, text is ambiguous.
LEAD = 0.1

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
_THAI = re.compile(r"[\u0e00-\u0e7f]")
_OTHER = re.compile(r"[^\W\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\u0e00-\u0e7f]")
_LETTER = re.compile(r"[^\W\d_]")


class Detector:
    """A language identifier built once per process (~0.6 s) for the given ISO 639-1 codes (all it knows
    when empty); `detect` is safe to call from many threads."""

    def __init__(self, codes: list[str]):
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        known = set(self._identifier.nb_classes)
        if codes:
            self._identifier.set_languages([code for code in codes if code in known])

    def detect(self, text: str, hint: str | None = None) -> str | None:
        """The tag `text` is written in, or None when it has no letters; `hint` (the author's language)
        wins on short or ambiguous text that it is a likely reading of."""
        if not _LETTER.search(text):
            return None
        ranked = self._identifier.rank(text)
        (top, p_top), p_second = ranked[0], ranked[1][1] if len(ranked) > 1 else 0.0
        found = _tag_of(top, text)
        if hint is None:
            return found
        if top == _primary(hint):
            return hint  # the author's own form of it: their region, their script of Chinese
        stripped = text.strip()
        ambiguous = len(stripped) < SHORT_CHARS or _units(stripped) <= SHORT_UNITS or p_top - p_second < LEAD
        p_hint = dict(ranked).get(_primary(hint), 0.0)
        return hint if ambiguous and p_hint >= HINT_SHARE * p_top else found


# Common characters written differently in the two scripts (the same 60 words in each, in order), to
# tell which one a Chinese text is in: py3langid knows only "zh".
_TRADITIONAL = set("們個這說時來對會後裡為還點愛國學開過東車長門問間關見現發經頭話電請讓謝應該體實際與從給"
                   "機樂歡網認識錢買賣區")
_SIMPLIFIED = set("们个这说时来对会后里为还点爱国学开过东车长门问间关见现发经头话电请让谢应该体实际与从给"
                  "机乐欢网认识钱买卖区")


def _tag_of(code: str, text: str) -> str:
    if code != "zh":
        return code
    traditional = sum(ch in _TRADITIONAL for ch in text)
    return "zh-TW" if traditional > sum(ch in _SIMPLIFIED for ch in text) else "zh-CN"


def _primary(tag: str) -> str:
    return tag.replace("_", "-").split("-")[0].lower()


def _units(text: str) -> int:
    """Word-ish units: a word, or two CJK characters, or four Thai ones (neither script has spaces)."""
    count = 0
    for token in text.split():
        cjk, thai, other = len(_CJK.findall(token)), len(_THAI.findall(token)), bool(_OTHER.search(token))
        count += (-(-cjk // 2) + other) if cjk else (-(-thai // 4) + other) if thai else 1
    return count
