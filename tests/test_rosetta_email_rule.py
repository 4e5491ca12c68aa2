"""Email addresses pass as Laravel's `email` rule passes them: special-use and single-label domains and IP
literals sign up and log in; `[auth] strict_email_domains` keeps to globally deliverable domain names."""

from __future__ import annotations

import httpx
import pytest

from tests.api import unique
from tests.rosetta import PASSWORD, AppUser, new_email

NOT_AN_EMAIL = {"email": ["The email field must be a valid email address."]}


def _register(base_url: str, address: str) -> httpx.Response:
    return httpx.post(f"{base_url}/auth/app/register", json={
        "name": "Ada", "email": address, "password": PASSWORD, "password_confirmation": PASSWORD})


@pytest.fixture(scope="module")
def strict_url(stack) -> str:
    return f"http://127.0.0.1:{stack.start_server(SECTOR_AUTH_STRICT_EMAIL_DOMAINS='true')}/api/v1"


@pytest.mark.parametrize("domain", ["example.test", "printer.local", "site.invalid", "localhost", "[127.0.0.1]"])
def test_an_address_on_a_special_use_domain_or_ip_literal_signs_up_and_logs_in(rosetta_url, domain):
    address = f"{unique('ada')}@{domain}"
    user = AppUser(rosetta_url, address)
    assert user.api.get("/me").json()["email"] == address
    token = user.login()
    assert user.with_token(token).get("/me").json()["id"] == user.id


@pytest.mark.parametrize("address", ["ada.example.test", "ada lovelace@example.test", "ada@exa mple.test",
                                     "ada@", "@example.test", "ada..lovelace@example.test"])
def test_an_address_that_is_no_address_is_still_refused(rosetta_url, address):
    answer = _register(rosetta_url, address)
    assert (answer.status_code, answer.json()["errors"]) == (422, NOT_AN_EMAIL)


def test_strict_email_domains_refuses_special_use_domains_again(strict_url):
    for domain in ("example.test", "localhost", "[127.0.0.1]"):
        answer = _register(strict_url, f"{unique('x')}@{domain}")
        assert (answer.status_code, answer.json()["errors"]) == (422, NOT_AN_EMAIL), domain
    login = httpx.post(f"{strict_url}/auth/app/login", json={"email": "x@example.test", "password": PASSWORD})
    assert (login.status_code, login.json()["errors"]) == (422, NOT_AN_EMAIL)
    assert _register(strict_url, new_email("strict")).status_code == 200
