"""Mail goes out through the `email` actor: to a real SMTP server, or into a Maildir by default."""

import email
import email.policy
import json
import ssl
import subprocess
import time
import uuid

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.stack import free_port, run_python, wait_for


class Inbox:
    """An SMTP server's mail handler that keeps what it accepts and can answer with scripted refusals."""

    def __init__(self):
        self.refusals: list[str] = []
        self.attempts = 0
        self.received: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.refusals:
            return self.refusals.pop(0)
        self.received.append(email.message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"


def accept_sector(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"sector", b"s3cret")
    return AuthResult(success=ok)


# The test server takes AUTH in the clear; aiosmtpd warns about that, rightly, in production.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A throwaway self-signed certificate for 127.0.0.1: (cert file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def inbox(request, certificate):
    """A real SMTP server that requires AUTH: in the clear, or as the test asks, behind STARTTLS or
    implicit TLS (`@pytest.mark.parametrize("inbox", [...], indirect=True)`)."""
    handler = Inbox()
    handler.security = getattr(request, "param", "none")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(*certificate)
    options = {"none": {"auth_require_tls": False},
               "starttls": {"tls_context": server_tls, "require_starttls": True},
               # aiosmtpd judges "TLS?" by STARTTLS alone; here the whole connection is TLS already.
               "tls": {"ssl_context": server_tls, "auth_require_tls": False}}[handler.security]
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), authenticator=accept_sector,
                            auth_required=True, **options)
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def mail_env(stack, inbox, certificate):
    """A worker for the `email` queue that sends through `inbox`, on a namespace of its own."""
    env = {**stack.env, "SECTOR_REDIS_NAMESPACE": f"mail-{uuid.uuid4().hex[:8]}",
           "SECTOR_MAIL_TRANSPORT": "smtp", "SECTOR_MAIL_SMTP_HOST": "127.0.0.1",
           "SECTOR_MAIL_SMTP_PORT": str(inbox.port), "SECTOR_MAIL_SMTP_SECURITY": inbox.security,
           "SECTOR_MAIL_SMTP_CA_FILE": certificate[0],
           "SECTOR_MAIL_SMTP_USERNAME": "sector", "SECTOR_MAIL_SMTP_PASSWORD": "s3cret",
           # Dramatiq logs a failure it was told to expect at INFO, with the message's arguments.
           "SECTOR_LOGGING_LEVEL": "INFO"}
    log = open(stack.data_dir / f"{env['SECTOR_REDIS_NAMESPACE']}.log", "w+")
    worker = stack._spawn("worker", "-Q", "email", env=env, stderr=log)
    env["log"] = log.name
    yield env
    worker.terminate()
    worker.wait(timeout=15)
    log.close()


def send_email(env: dict, **mail) -> None:
    script = "import json, sys\nfrom actors.email import queue_email\nqueue_email(**json.loads(sys.stdin.read()))"
    run_python(env, script, stdin=json.dumps(mail))


def parts(message) -> dict[str, str]:
    # SMTP carries CRLF line ends; the Maildir keeps LF.
    return {part.get_content_type(): part.get_payload(decode=True).decode().replace("\r\n", "\n")
            for part in message.walk() if not part.is_multipart()}


@pytest.mark.parametrize("inbox", ["none", "starttls", "tls"], indirect=True)
def test_mail_reaches_the_smtp_server_with_a_text_and_an_html_part(inbox, mail_env):
    send_email(mail_env, to="ada@example.org", subject="Your code", text="Code: 123456",
               html="<p>Code: <b>123456</b></p>")
    assert wait_for(lambda: inbox.received, timeout=20)
    message = inbox.received[0]
    assert (message["To"], message["Subject"]) == ("ada@example.org", "Your code")
    assert message["From"] == "Sector <no-reply@sector.localhost>"
    assert parts(message) == {"text/plain": "Code: 123456\n", "text/html": "<p>Code: <b>123456</b></p>\n"}


def test_a_server_that_says_try_later_gets_the_mail_on_a_retry(inbox, mail_env):
    inbox.refusals = ["451 4.3.0 Try again later"]
    send_email(mail_env, to="ada@example.org", subject="Second try", text="hello")
    assert wait_for(lambda: inbox.received, timeout=30)
    assert inbox.attempts == 2


def test_a_permanent_refusal_is_not_retried_and_the_log_shows_no_content(inbox, mail_env):
    inbox.refusals = ["550 5.1.1 No such user"]
    send_email(mail_env, to="nobody@example.org", subject="Bounce", text="one-time code 918273")
    assert wait_for(lambda: inbox.attempts == 1, timeout=20)
    time.sleep(4)  # a retry would come within ~2 s
    assert inbox.attempts == 1 and inbox.received == []
    log = open(mail_env["log"]).read()
    assert "send_email" in log and "MailRejected" in log  # the failure is logged...
    assert "918273" not in log and "nobody@example.org" not in log  # ...but not what the mail says


def test_by_default_mail_lands_in_a_maildir_under_the_data_dir(stack):
    subject = f"Maildir {uuid.uuid4().hex[:8]}"
    send_email(stack.env, to="ada@example.org", subject=subject, text="read me", html="<p>read me</p>")
    new = stack.data_dir / "maildir" / "new"

    def delivered():
        return [m for m in (new.iterdir() if new.exists() else []) if subject in m.read_text()]

    assert wait_for(delivered, timeout=20)
    message = email.message_from_bytes(delivered()[0].read_bytes())
    assert message["Subject"] == subject
    assert parts(message)["text/plain"] == "read me\n"


@pytest.mark.parametrize("inbox", ["starttls"], indirect=True)
def test_a_sign_in_code_travels_over_smtp_and_signs_in(stack, inbox, certificate):
    """End to end on a deployment of its own: HTTP asks for a code, the worker mails it over SMTP,
    and the code from the mail that arrived signs in."""
    import httpx

    from tests.rosetta import code_in, new_email

    overrides = {"SECTOR_REDIS_NAMESPACE": f"smtp-{uuid.uuid4().hex[:8]}", "SECTOR_MAIL_TRANSPORT": "smtp",
                 "SECTOR_MAIL_SMTP_HOST": "127.0.0.1", "SECTOR_MAIL_SMTP_PORT": str(inbox.port),
                 "SECTOR_MAIL_SMTP_SECURITY": "starttls", "SECTOR_MAIL_SMTP_CA_FILE": certificate[0],
                 "SECTOR_MAIL_SMTP_USERNAME": "sector", "SECTOR_MAIL_SMTP_PASSWORD": "s3cret"}
    worker = stack._spawn("worker", env={**stack.env, **overrides})
    try:
        api = f"http://127.0.0.1:{stack.start_server(**overrides)}/api/v1"
        address = new_email("smtp")
        assert httpx.post(f"{api}/auth/app/otp", json={"email": address}).status_code == 200
        assert wait_for(lambda: inbox.received, timeout=20)
        message = inbox.received[0]
        assert message["To"] == address
        assert set(parts(message)) == {"text/plain", "text/html"}
        code = code_in(email.message_from_bytes(message.as_bytes(), policy=email.policy.default))
        signed_in = httpx.post(f"{api}/auth/app/otp/verify", json={"email": address, "token": code})
        assert signed_in.status_code == 200 and signed_in.json()["user"]["email"] == address
    finally:
        worker.terminate()
        worker.wait(timeout=15)
