"""Outbound mail: SMTP (STARTTLS, implicit TLS or plain; optional auth) or a Maildir for one machine."""

from __future__ import annotations

import logging
import mailbox
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from config import Mail
from telemetry import ProviderCall

logger = logging.getLogger(__name__)


class MailRejected(Exception):
    """The server refused the mail for good (a 5xx reply): sending it again cannot help."""


def compose(*, sender: str, to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    """A mail with a plain-text part and, when given, an HTML alternative."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">") or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def _maildir(path: Path) -> mailbox.Maildir:
    """The maildir at `path`, made first if need be. Not Maildir(create=True): it makes the folder, then
    its tmp/new/cur, so a second thread that finds the folder made adds to a tmp/ not there yet."""
    for folder in ("tmp", "new", "cur"):
        (path / folder).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, create=False)


def deliver(message: EmailMessage, settings: Mail, data_dir: Path) -> None:
    """Hand the mail to the configured transport; MailRejected if refused for good, else it raises
    what a retry may cure (connection refused, timeout, a 4xx)."""
    with ProviderCall(settings.transport, "send") as call:
        if settings.transport == "maildir":
            _maildir(data_dir / "maildir").add(message)
            return
        try:
            with _connect(settings) as smtp:
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _ in e.recipients.values()]
            call.status = min(codes, default=0)
            if all(code >= 500 for code in codes):
                raise MailRejected(f"every recipient refused: {codes}") from e
            raise
        except smtplib.SMTPResponseException as e:
            call.status = e.smtp_code
            if e.smtp_code >= 500:
                raise MailRejected(f"{e.smtp_code} {e.smtp_error!r}") from e
            raise


def _connect(settings: Mail) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=settings.smtp_ca_file or None)
    if settings.smtp_security == "tls":
        smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s,
                                context=context)
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s)
        if settings.smtp_security == "starttls":
            smtp.starttls(context=context)
    if settings.smtp_username:
        smtp.login(settings.smtp_username, settings.smtp_password)
    return smtp
