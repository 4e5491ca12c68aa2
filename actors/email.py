"""The `email` queue: one mail per message, retried while the mail server is away."""

from __future__ import annotations

import logging

import dramatiq

from config import settings
from domain import mails
from domain.sealing import SealBroken, seal, unseal
from models import User
from providers.mail import MailRejected, compose, deliver

logger = logging.getLogger(__name__)


def queue_email(*, to: str, subject: str, text: str, html: str | None = None) -> None:
    """Queue a mail with a plain-text part and an optional HTML part.

    Its content is sealed: mails carry one-time codes and reset links, and a queued or failed
    Dramatiq message is readable in Redis and in the worker's log.
    """
    send_email.send(seal({"to": to, "subject": subject, "text": text, "html": html}))


@dramatiq.actor(queue_name="email", max_retries=12, min_backoff=1_000, max_backoff=600_000, time_limit=120_000,
                throws=(MailRejected, SealBroken))
def send_email(sealed: str) -> None:
    """Send one sealed mail (see queue_email).

    A server that is down, slow or answers 4xx is tried again with backoff (up to about an hour
    in all); a 5xx refusal is final and not retried.
    """
    mail = unseal(sealed)
    config = settings()
    message = compose(sender=config.mail.from_address, to=mail["to"], subject=mail["subject"],
                      text=mail["text"], html=mail["html"])
    deliver(message, config.mail, config.data_dir)
    logger.info("Mail %s handed to %s.", message["Message-ID"], config.mail.transport)


@dramatiq.actor(queue_name="email", max_retries=5, min_backoff=1_000, max_backoff=60_000, time_limit=60_000)
def send_verification_email(user_id: int) -> None:
    """Mail a user a signed link that verifies their address, unless it is verified already."""
    user = User.get_or_none(User.id == user_id)
    if user is None or user.email is None or user.email_verified_at is not None:
        return
    config = settings().auth
    queue_email(to=user.email, **mails.verification(user.id, user.email, config.app_url, config.verify_ttl_s))
