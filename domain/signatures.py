"""Ed25519 challenge login: keys and signatures come as base64 (standard alphabet) or hex."""

from __future__ import annotations

import base64
import binascii
import secrets

from nacl.exceptions import BadSignatureError, ValueError as NaclValueError
from nacl.signing import VerifyKey


def new_challenge() -> str:
    return secrets.token_urlsafe(32)


def decode(text: str, length: int) -> bytes | None:
    """The `length` bytes spelled by `text` in hex or base64, or None if it spells no such thing."""
    text = text.strip()
    if len(text) == 2 * length:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == length else None


def is_public_key(text: str) -> bool:
    return decode(text, 32) is not None


def verify(pubkey: str, challenge: str, signature: str) -> bool:
    """Whether `signature` signs the challenge's UTF-8 bytes under `pubkey`."""
    key, sig = decode(pubkey, 32), decode(signature, 64)
    if key is None or sig is None:
        return False
    try:
        VerifyKey(key).verify(challenge.encode(), sig)
    except (BadSignatureError, NaclValueError):
        return False
    return True
