"""The deployment's secret key, and sealing: authenticated encryption of small values that must
pass through queues and logs unread.

Dramatiq logs a failed message with its arguments, and Redis keeps queued messages in the clear,
so an actor that carries a one-time code or a reset link gets it sealed (XSalsa20-Poly1305, from
PyNaCl) under the deployment's secret key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from config import settings


class SealBroken(Exception):
    """The sealed value was altered, or sealed under another key."""


@functools.cache
def _box() -> SecretBox:
    return SecretBox(_key())


def _key() -> bytes:
    configured = settings().security.secret_key
    if configured:
        return bytes.fromhex(configured)
    path = settings().data_dir / "secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # first process to get here makes the key; the others read it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    key = os.urandom(SecretBox.KEY_SIZE)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    return key


@functools.cache
def derived_key(purpose: str) -> bytes:
    """A key for one purpose (signing links, hashing codes), derived from the secret key."""
    return hmac.new(_key(), f"sector:{purpose}".encode(), hashlib.sha256).digest()


def seal(value: dict) -> str:
    """`value` as an opaque string only this deployment can open."""
    return _box().encrypt(json.dumps(value).encode()).hex()


def unseal(sealed: str) -> dict:
    try:
        return json.loads(_box().decrypt(bytes.fromhex(sealed)))
    except (CryptoError, ValueError) as e:
        raise SealBroken("the sealed value does not open under this key") from e
