"""The current user (/me), personal access tokens with abilities (endpoint and command line),
and rate limits."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.rosetta import PASSWORD, AppUser, Browser, new_email
from tests.stack import ROOT


def test_patch_me_changes_the_profile_and_validates(app_user):
    changed = app_user.api.patch("/me", json={"name": "Jane", "preferred_language": "zh-CN",
                                              "avatar_url": "https://example.com/jane.png"})
    assert changed.status_code == 200
    body = changed.json()
    assert (body["name"], body["preferred_language"], body["avatar_url"]) == ("Jane", "zh-CN",
                                                                              "https://example.com/jane.png")
    assert app_user.api.get("/me").json() == body
    cleared = app_user.api.patch("/me", json={"avatar_url": None})
    assert cleared.json()["avatar_url"] is None and cleared.json()["name"] == "Jane"
    bad = app_user.api.patch("/me", json={"name": "x" * 256, "preferred_language": "fr", "avatar_url": "not a url"})
    assert bad.status_code == 422
    assert bad.json()["errors"] == {
        "name": ["The name field must not be greater than 255 characters."],
        "preferred_language": ["The selected preferred language is invalid."],
        "avatar_url": ["The avatar url field must be a valid URL."],
    }


def test_minted_tokens_carry_only_their_abilities(app_user, rosetta_url, database):
    minted = app_user.api.post("/me/tokens", json={"name": "room bot", "abilities": ["temporary-rooms:create"],
                                                   "expires_at": "2099-01-01T00:00:00Z"})
    assert minted.status_code == 201
    data = minted.json()["data"]
    assert (data["name"], data["abilities"], data["expires_at"]) == ("room bot", ["temporary-rooms:create"],
                                                                      "2099-01-01T00:00:00.000000Z")
    assert data["token"].startswith(data["id"] + "|")
    secret = data["token"].split("|")[1]
    assert all(secret not in t.secret_hash for t in database.Token.select())
    narrow = app_user.with_token(data["token"])
    # A narrow token reaches no route that does not name its ability.
    for call in (lambda: narrow.get("/me"), lambda: narrow.post("/me/tokens", json={"name": "escalate"}),
                 lambda: narrow.post("/auth/app/change-password", json={})):
        refused = call()
        assert (refused.status_code, refused.json()) == (403, {"message": "Invalid ability provided."})

    listed = app_user.api.get("/me/tokens", params={"per_page": 1})
    assert listed.status_code == 200
    page = listed.json()
    assert page["meta"]["total"] == 2 and page["meta"]["per_page"] == 1 and page["meta"]["last_page"] == 2
    assert page["data"][0]["id"] == data["id"] and "token" not in page["data"][0]
    assert page["links"]["next"].endswith("page=2&per_page=1") and page["links"]["prev"] is None

    assert app_user.api.delete(f"/me/tokens/{data['id']}").status_code == 204
    assert narrow.get("/me").status_code == 401
    assert app_user.api.delete(f"/me/tokens/{data['id']}").status_code == 404
    assert app_user.api.get("/me/tokens").json()["meta"]["total"] == 1


def test_tokens_of_others_cannot_be_revoked_and_bad_mints_are_422(app_user, rosetta_url):
    other = AppUser(rosetta_url)
    theirs = other.api.get("/me/tokens").json()["data"][0]["id"]
    assert app_user.api.delete(f"/me/tokens/{theirs}").json() == {"message": "Token not found."}
    assert other.api.get("/me").status_code == 200
    bad = app_user.api.post("/me/tokens", json={"abilities": ["root"], "expires_at": "2001-01-01T00:00:00Z"})
    assert bad.json()["errors"] == {"name": ["The name field is required."],
                                    "abilities.0": ["The selected abilities.0 is invalid."]}
    past = app_user.api.post("/me/tokens", json={"name": "x", "expires_at": "2001-01-01T00:00:00Z"})
    assert past.json()["errors"] == {"expires_at": ["The expires at field must be a date after now."]}


def _cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), "tokens", *args], env=stack.env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_the_tokens_command_mints_lists_and_revokes(stack, app_user):
    made = _cli(stack, "create", "--email", app_user.email.upper(), "--name", "automation",
                "--ability", "automation:post", "--expires-days", "30")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert app_user.with_token(token).get("/me").status_code == 403  # automation only
    listed = _cli(stack, "list", "--email", app_user.email)
    assert token.split("|")[0] in listed.stdout and "automation:post" in listed.stdout
    assert _cli(stack, "revoke", token.split("|")[0]).returncode == 0
    assert app_user.with_token(token).get("/me").status_code == 401
    assert _cli(stack, "create", "--email", new_email(), "--name", "x").returncode != 0
    assert "Unknown abilities" in _cli(stack, "create", "--email", app_user.email, "--name", "x",
                                       "--ability", "root").stderr


@pytest.fixture(scope="module")
def strict_port(stack) -> int:
    """A server of its own with the configured per-IP limits low enough to reach."""
    return stack.start_server(SECTOR_THROTTLE_LOGIN_IP="8", SECTOR_THROTTLE_OTP_IP="4",
                              SECTOR_THROTTLE_FORGOT_IP="4", SECTOR_THROTTLE_OTP_VERIFY_IP="6")


@pytest.fixture
def strict_server(stack, strict_port) -> str:
    """The strict server, with the counters cleared: limits are per deployment, and every test
    client is 127.0.0.1, so earlier tests' requests count against the same IP."""
    import redis

    client = redis.Redis.from_url(stack.settings.redis_url)
    for key in client.scan_iter(f"{stack.settings.redis.namespace}:throttle:*"):
        client.delete(key)
    return f"http://127.0.0.1:{strict_port}/api/v1"


def test_login_failures_are_limited_per_email_then_per_ip(rosetta_url, strict_server):
    user = AppUser(rosetta_url)
    for _ in range(5):
        assert httpx.post(f"{strict_server}/auth/app/login",
                          json={"email": user.email, "password": "wrong!!!"}).status_code == 422
    limited = httpx.post(f"{strict_server}/auth/app/login", json={"email": user.email, "password": PASSWORD})
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 60
    assert limited.json() == {"message": "Too Many Attempts."}
    for _ in range(3):  # other addresses from the same IP, until the IP's limit of 8 failures
        httpx.post(f"{strict_server}/auth/app/login", json={"email": new_email(), "password": "wrong!!!"})
    other = AppUser(rosetta_url)
    assert httpx.post(f"{strict_server}/auth/app/login",
                      json={"email": other.email, "password": PASSWORD}).status_code == 429


def test_otp_and_forgot_password_requests_are_limited(rosetta_url, strict_server, origin_url):
    address = new_email("limited")
    statuses = [httpx.post(f"{strict_server}/auth/app/otp", json={"email": address}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # three a minute per email
    user = AppUser(rosetta_url)
    statuses = [httpx.post(f"{strict_server}/auth/app/forgot-password", json={"email": user.email}).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    for _ in range(3):
        httpx.post(f"{strict_server}/auth/app/forgot-password", json={"email": new_email()})
    per_ip = httpx.post(f"{strict_server}/auth/app/forgot-password", json={"email": AppUser(rosetta_url).email})
    assert per_ip.status_code == 429 and "Retry-After" in per_ip.headers


def test_otp_verification_failures_are_limited(rosetta_url, strict_server):
    address = new_email("verify-limit")
    statuses = [httpx.post(f"{strict_server}/auth/app/otp/verify", json={"email": address, "token": "123456"})
                .status_code for _ in range(21)]
    assert statuses == [422] * 6 + [429] * 15  # the IP's six failures a minute


def test_the_csrf_cookie_endpoint_answers_204_with_a_readable_cookie(origin_url):
    answer = httpx.get(f"{origin_url}/sanctum/csrf-cookie")
    assert answer.status_code == 204
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("XSRF-TOKEN=") and "HttpOnly" not in cookie and "SameSite=Lax" in cookie
    assert Browser(origin_url).xsrf
