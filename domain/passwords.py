"""Passwords, hashed with bcrypt as Laravel hashes them (`$2y$` hashes from Laravel check as they are).

Each hash or check costs 2^rounds rounds (about 250 ms at 12 here), so handlers call these from
a thread, never on the event loop. bcrypt reads at most 72 bytes; longer passwords are refused
at validation rather than silently cut.
"""

from __future__ import annotations

import base64
import functools
import hashlib

import bcrypt

MAX_BYTES = 72


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


@functools.cache
def _decoy(rounds: int) -> bytes:
    return bcrypt.hashpw(b"no password is set for this user", bcrypt.gensalt(rounds))


def check_password(password: str, hashed: str | None, rounds: int) -> bool:
    """Whether `password` matches `hashed`. Without a hash (an unknown email, a social-only user)
    it still spends a check's time, so the answer's timing does not tell which accounts exist."""
    candidate = password.encode()
    if hashed is None or len(candidate) > MAX_BYTES:
        bcrypt.checkpw(candidate[:MAX_BYTES], _decoy(rounds))
        return False
    try:
        return bcrypt.checkpw(candidate, hashed.encode())
    except ValueError:  # not a bcrypt hash
        return False


def _prehashed(password: str) -> str:
    # 44 characters of base64 SHA-256: within bcrypt's 72 bytes whatever the password's length.
    return base64.b64encode(hashlib.sha256(password.encode()).digest()).decode()


def hash_shared_password(password: str, rounds: int) -> str:
    """A workspace's or channel's password (up to 120 characters, past bcrypt's 72 bytes): bcrypt of
    its SHA-256, a scheme of our own since no Laravel hash has to check as it is."""
    return hash_password(_prehashed(password), rounds)


def check_shared_password(password: str, hashed: str | None, rounds: int) -> bool:
    return check_password(_prehashed(password), hashed, rounds)
