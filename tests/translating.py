"""A Sector deployment that translates, for the translation tests: its own stack (own Redis namespace,
data dir and workers) with `[translation]` pointed at a local engine server (tests/engines.py).

One per test module (`translating_stack` in a module's fixture): starting one costs a few seconds.
"""

from __future__ import annotations

import httpx

import config
from tests.rosetta import AppUser
from tests.stack import Stack, wait_for

#: Settings every translating stack starts with: short timeouts and backoffs so failures show fast.
FAST = {"SECTOR_TRANSLATION_TIMEOUT_S": "2", "SECTOR_TRANSLATION_MAX_RETRIES": "2"}


def engine_settings(kind: str, url: str) -> dict[str, str]:
    """The SECTOR_TRANSLATION_* variables that point Sector at a `kind` engine at `url`."""
    key = {"libretranslate": "LIBRETRANSLATE_URL", "deepl": "DEEPL_URL", "openai": "OPENAI_URL"}[kind]
    return {"SECTOR_TRANSLATION_PROVIDER": kind, f"SECTOR_TRANSLATION_{key}": url}


def translating_stack(kind: str, url: str, **overrides: str) -> Stack:
    """A started stack whose workers translate with the `kind` engine at `url`."""
    stack = Stack()
    stack.env.update({**FAST, **engine_settings(kind, url), **overrides})
    stack.settings = config.load(environ=stack.env)
    return stack.start()


def rosetta_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.port}/api/v1"


def reader(stack: Stack, language: str, name: str | None = None) -> AppUser:
    """A RosettaChat user who reads in `language`."""
    return AppUser(rosetta_url(stack), name=name or f"Reader {language}", preferred_language=language)


def settled(user: AppUser, path: str, timeout: float = 30) -> dict:
    """The message at `path` once its translation is no longer pending."""
    seen = {}

    def done() -> bool:
        seen["message"] = user.api.get(path).json()["data"]
        return seen["message"]["translation_status"] != "pending"

    assert wait_for(done, timeout=timeout, interval=0.05), f"still pending: {seen.get('message')}"
    return seen["message"]


def health(stack: Stack) -> dict:
    return httpx.get(f"http://127.0.0.1:{stack.port}/v1/api/health/details", timeout=10).json()
