"""What an engine is given to translate, and how its answer is put back together.

- Mentions, channel names, URLs, email addresses, code spans, emoji and :shortcodes: must come back
  exactly as written, so they never reach the engine: each becomes an empty tag `<x id="N"/>`, which
  every engine here keeps in place (LibreTranslate's `format=html`, DeepL's `tag_handling=xml`, and
  an instruction to an OpenAI-compatible model), and the text around them is escaped as markup.
- A text longer than an engine takes in one call is split at sentence boundaries (then at spaces,
  then anywhere), and the translated pieces are joined back with the whitespace that separated them.
"""

from __future__ import annotations

import html
import re

# What ends a URL: whitespace, ASCII quotes and brackets, and anything outside ASCII (the full-width
# punctuation and the words of Chinese and Japanese follow links without a space).
_URL_BODY = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*[A-Za-z0-9\-_~/#@$&*+=%]"
_PROTECTED = re.compile(
    r"```.*?```"                                            # fenced code
    r"|`[^`\n]+`"                                           # inline code
    r"|<\s*/?\s*x\b[^>]*>"                                   # what a user typed that looks like our tags
    rf"|(?<![A-Za-z0-9])(?:https?|ftp)://{_URL_BODY}"       # URLs, without the punctuation ending a sentence
    rf"|(?<![A-Za-z0-9.])www\.{_URL_BODY}"
    r"|(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"  # email addresses
    r"|(?<![A-Za-z0-9_@#])[@#]\w[\w.-]*(?<![.-])"              # @mentions and #channels
    r"|:[a-z0-9_+-]+:"                                      # :shortcodes:
    # Emoji: pictographs with their modifiers, joiners, keycaps and flags.
    r"|(?:[\U0001F000-\U0001FAFF\u2190-\u21FF\u2300-\u23FF\u2460-\u27BF\u2900-\u297F\u2B00-\u2BFF\u3030\u303D"
    r"\u3297\u3299][\uFE0F\u20E3\U0001F3FB-\U0001F3FF]*\u200D?)+"
    r"|[0-9#*]\uFE0F?\u20E3",
    re.DOTALL | re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"""<x\s+id\s*=\s*["']?(\d+)["']?\s*/?>(?:\s*</x>)?""", re.IGNORECASE)
_STRAY_TAG = re.compile(r"</?x\b[^>]*>", re.IGNORECASE)


class Protected:
    """A text made ready for an engine: `markup` to send, and what `restore` puts back into the answer."""

    def __init__(self, text: str):
        self.spans: list[str] = []
        parts, last = [], 0
        for match in _PROTECTED.finditer(text):
            parts.append(html.escape(text[last:match.start()], quote=False))
            parts.append(f'<x id="{len(self.spans)}"/>')
            self.spans.append(match.group())
            last = match.end()
        parts.append(html.escape(text[last:], quote=False))
        self.markup = "".join(parts)
        # What there is to translate (and to detect the language of): the text without its spans.
        self.words = _PROTECTED.sub(" ", text).strip()

    def restore(self, translated: str, escaped: bool = True) -> str:
        """The engine's answer as text, with every protected span back where the engine left its tag;
        a span whose tag the engine lost is put at the end rather than dropped. `escaped`: the engine
        answers in markup (LibreTranslate unescapes its answers itself)."""
        parts, seen, last = [], set(), 0
        for match in _PLACEHOLDER.finditer(translated):
            parts.append(_text(translated[last:match.start()], escaped))
            index = int(match.group(1))
            if index < len(self.spans) and index not in seen:
                seen.add(index)
                parts.append(self.spans[index])
            last = match.end()
        parts.append(_text(translated[last:], escaped))
        text = "".join(parts)
        missing = [span for index, span in enumerate(self.spans) if index not in seen]
        return " ".join([text.rstrip(), *missing]) if missing else text


def _text(markup: str, escaped: bool) -> str:
    text = _STRAY_TAG.sub("", markup)
    return html.unescape(text) if escaped else text


# Ends of sentences: after terminal punctuation and the space that follows it, after CJK and Thai
# terminal punctuation (no space follows it there), and at line breaks.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])|\n+|(?<=[ฯ๚๛])\s*")


def split(markup: str, limit: int) -> list[tuple[str, str]]:
    """Pieces of `markup` of at most `limit` characters, as (piece, the whitespace that followed it),
    cut between sentences where possible and never inside a tag or an entity."""
    if len(markup) <= limit:
        return [(markup, "")]
    sentences, last = [], 0
    for match in _SENTENCE_END.finditer(markup):
        if match.end() > last:
            sentences.append(markup[last:match.end()])
            last = match.end()
    sentences.append(markup[last:])
    pieces: list[str] = []
    current = ""
    for sentence in sentences:
        for part in _fit(sentence, limit):
            if current and len(current) + len(part) > limit:
                pieces.append(current)
                current = ""
            current += part
    if current:
        pieces.append(current)
    out: list[tuple[str, str]] = []
    for piece in pieces:
        body = piece.rstrip()
        if body or not out:
            out.append((body, piece[len(body):]))
        else:  # whitespace only (a paragraph break that fitted with neither neighbour): it stays a gap
            out[-1] = (out[-1][0], out[-1][1] + piece)
    return out


def _fit(sentence: str, limit: int) -> list[str]:
    """A sentence in parts of at most `limit` characters: at spaces, else anywhere outside a tag or entity."""
    parts = []
    while len(sentence) > limit:
        cut = sentence.rfind(" ", 0, limit) + 1 or limit
        cut = _safe_cut(sentence, cut)
        parts.append(sentence[:cut])
        sentence = sentence[cut:]
    return parts + [sentence] if sentence else parts


def _safe_cut(text: str, cut: int) -> int:
    """Move a cut out of a tag (`<...>`) or an entity (`&...;`) it would fall inside: before it, or after
    it when it starts the text."""
    for opener, closer in (("<", ">"), ("&", ";")):
        start = text.rfind(opener, 0, cut)
        end = text.find(closer, start) if start >= 0 else -1
        if start >= 0 and end >= cut:
            cut = start if start > 0 else end + 1
    return cut
