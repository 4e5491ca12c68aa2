"""The mails Sector sends for sign-in and account upkeep: subject, plain text and HTML of each."""

from __future__ import annotations

import hashlib
from html import escape
from urllib.parse import urlencode

from domain.signing import signed_url


def _html(*paragraphs: str, link: tuple[str, str] | None = None) -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    if link:
        body += f'<p><a href="{escape(link[1], quote=True)}">{escape(link[0])}</a></p>'
    return f"<!doctype html><html><body>{body}</body></html>"


def otp(code: str, ttl_s: int) -> dict:
    minutes = max(1, ttl_s // 60)
    lines = (f"Your RosettaChat sign-in code is {code}.",
             f"It expires in {minutes} minutes and works once. If you did not ask for it, ignore this mail.")
    return {"subject": f"Your sign-in code: {code}", "text": "\n\n".join(lines) + "\n", "html": _html(*lines)}


def password_reset(email: str, token: str, app_url: str, frontend_url: str, ttl_s: int) -> dict:
    query = urlencode({"token": token, "email": email})
    link = f"{(frontend_url or app_url).rstrip('/')}/reset-password?{query}"
    lines = ("Someone asked to reset the password of your RosettaChat account.",
             f"Reset token: {token}",
             f"It expires in {max(1, ttl_s // 60)} minutes and works once. If it was not you, ignore this mail.")
    return {"subject": "Reset your password", "text": "\n\n".join((*lines, link)) + "\n",
            "html": _html(*lines, link=("Reset your password", link))}


def email_hash(email: str) -> str:
    """What a verification link carries to name the address it verifies (Laravel's sha1 of it)."""
    return hashlib.sha1(email.encode()).hexdigest()


def verification_path(user_id: int, email: str) -> str:
    return f"/api/v1/auth/email/verify/{user_id}/{email_hash(email)}"


def verification(user_id: int, email: str, app_url: str, ttl_s: int) -> dict:
    link = signed_url(app_url, verification_path(user_id, email), ttl_s)
    lines = ("Please confirm that this is your email address by opening the link below.",
             f"The link expires in {max(1, ttl_s // 60)} minutes.")
    return {"subject": "Verify your email address", "text": "\n\n".join((*lines, link)) + "\n",
            "html": _html(*lines, link=("Verify email address", link))}
