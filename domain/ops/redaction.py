"""What of a job's arguments the dashboard may show: secrets and sealed payloads are replaced.

The rule, applied to the actor's arguments by name (positional ones named from the actor's signature)
and to every key of the dicts and lists inside them:

- a name one of whose `_`/`-` separated words is a secret word (`password`, `secret`, `token`,
  `sealed`, `signature`, `key`, `otp`, `credentials`, ...) has its value replaced: `sealed` (a mail's
  sealed content), `push_token`, `password_hash`, `secret_hash`, `email_key`, `api_key`;
- any string of 40 or more characters drawn only from the base64(url) alphabet (no space) is replaced
  wherever it is, whatever its name: sealed payloads, digests, keys and tokens look like that. UUIDs
  (36 characters of that alphabet, with dashes) are let through by their exact shape: ids are what an
  operator searches by.

A false positive hides a harmless value; a false negative would show a secret, so the words are broad.
"""

from __future__ import annotations

import inspect
import re

REDACTED = "[redacted]"

SECRET_WORDS = frozenset({
    "password", "passwd", "secret", "token", "tokens", "sealed", "signature", "key", "otp", "credential",
    "credentials", "apikey", "auth", "authorization", "cookie", "hash",
})

_WORD_SPLIT = re.compile(r"[_\-\s.]+")
_OPAQUE = re.compile(r"^[A-Za-z0-9+/=_\-]{40,}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Nested containers deeper than this are cut: a job's arguments are small by convention.
_MAX_DEPTH = 8


def is_secret_name(name: str) -> bool:
    """Whether an argument or key of this name holds a secret (see the module's rule)."""
    words = _WORD_SPLIT.split(name.lower())
    return any(word in SECRET_WORDS for word in words) or name.lower().endswith(("token", "password", "secret"))


def looks_opaque(value: str) -> bool:
    """Whether a string looks like a key, digest or sealed payload rather than text or an id."""
    return bool(_OPAQUE.match(value)) and not _UUID.match(value)


def redact_value(value, depth: int = 0):
    """`value` with every secret inside it replaced (keys by name, strings by shape)."""
    if depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, str):
        return REDACTED if looks_opaque(value) else value
    if isinstance(value, dict):
        return {key: REDACTED if isinstance(key, str) and is_secret_name(key) else redact_value(item, depth + 1)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item, depth + 1) for item in value]
    return value


def named_arguments(fn, args: list | tuple, kwargs: dict) -> dict:
    """The arguments of a call of `fn` by parameter name (`args[i]` for what the signature does not name)."""
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    named = {(names[i] if i < len(names) else f"args[{i}]"): value for i, value in enumerate(args)}
    return {**named, **kwargs}


def redact_arguments(arguments: dict) -> dict:
    """Named arguments with secrets replaced: by name at the top level and within, and by shape."""
    return redact_value(arguments)
