"""What an outside service's answer says about trying again: its Retry-After (RFC 9110 §10.2.3)."""

from __future__ import annotations

import email.utils
import time

#: The longest Retry-After honoured: a longer one would outlive the actor messages waiting on it.
RETRY_AFTER_MAX_S = 300.0


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped at RETRY_AFTER_MAX_S;
    None when it is absent or says nothing readable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN: no advice
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)
