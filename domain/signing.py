"""Signed values for links and round trips through clients: the keys derive from the deployment's
secret key (domain/sealing.py), one per purpose, so a signature for one use never passes for another.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

from itsdangerous import BadData, URLSafeTimedSerializer

from domain.sealing import derived_key


def keyed_digest(purpose: str, value: str) -> str:
    """An HMAC of `value`: how short secrets (6-digit codes) are stored, so a leaked store cannot be
    brute-forced offline without the key."""
    return hmac.new(derived_key(purpose), value.encode(), hashlib.sha256).hexdigest()


def signed_url(base: str, path: str, ttl_s: int) -> str:
    """`base + path` with `expires` and `signature` query parameters, as Laravel's temporary signed
    routes have them. The signature covers the path and the expiry, not the host."""
    expires = int(time.time()) + ttl_s
    return f"{base.rstrip('/')}{path}?{urlencode({'expires': expires, 'signature': _url_signature(path, expires)})}"


def _url_signature(path: str, expires: int) -> str:
    return hmac.new(derived_key("signed-url"), f"{path}?expires={expires}".encode(), hashlib.sha256).hexdigest()


def url_signature_valid(path: str, expires: str | None, signature: str | None) -> bool:
    if not expires or not signature or not (expires.isascii() and expires.isdigit()) or int(expires) < time.time():
        return False
    return hmac.compare_digest(_url_signature(path, int(expires)).encode(), signature.encode())


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(derived_key(purpose), salt=purpose)


def sign(purpose: str, value: dict) -> str:
    """`value` in a URL-safe string that only this deployment could have made, with a timestamp."""
    return _serializer(purpose).dumps(value)


def unsign(purpose: str, signed: str, max_age_s: int) -> dict | None:
    """The value `sign` put in, or None if it was altered, made for another purpose, or is too old."""
    try:
        return _serializer(purpose).loads(signed, max_age=max_age_s)
    except BadData:
        return None
