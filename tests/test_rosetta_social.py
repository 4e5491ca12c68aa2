"""RosettaChat social login: redirect, callback, linking and unlinking, for apps and the web app,
against a local OAuth2 provider (Google- and GitHub-shaped) that a server of their own points at."""

from __future__ import annotations

import textwrap
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from domain.writes import ALREADY_LINKED_ELSEWHERE, ALREADY_LINKED_HERE, LAST_LOGIN_METHOD
from tests.oauth_provider import CLIENTS, REDIRECT_URI, FakeProvider, Person
from tests.rosetta import AppUser, Browser, new_email
from tests.stack import run_python

INVALID = "The given data was invalid."
BAD_STATE = {"message": INVALID, "errors": {"state": ["The state is invalid or has expired."]}}
BAD_CODE = {"message": INVALID, "errors": {"code": ["The authorization code could not be exchanged."]}}
BAD_PROVIDER = {"message": INVALID, "errors": {"provider": ["The selected provider is invalid."]}}
UNAUTHENTICATED = {"message": "Unauthenticated."}
INACTIVE = "Account is inactive."


@pytest.fixture(scope="module")
def origin(stack, provider) -> str:
    """A server whose Google and GitHub are the local provider."""
    return f"http://127.0.0.1:{stack.start_server(**provider.env())}"


@pytest.fixture
def api(origin) -> httpx.Client:
    return httpx.Client(base_url=f"{origin}/api/v1", timeout=30)


def answer(response: httpx.Response) -> tuple[int, dict]:
    return response.status_code, response.json()


def authorized(client, provider: FakeProvider, person: Person, name: str = "google", mode: str = "app",
               purpose: str = "redirect", **kwargs) -> tuple[str, str]:
    """Ask for the redirect URL, and let `person` sign in at the provider: the code and state."""
    started = client.post(f"/auth/{mode}/social/{name}/{purpose}", **kwargs)
    assert started.status_code == 200, started.text
    return provider.authorize(started.json()["redirect_url"], person)


def app_sign_in(api, provider, person: Person, name: str = "google", **fields) -> httpx.Response:
    code, state = authorized(api, provider, person, name)
    return api.post(f"/auth/app/social/{name}/callback", json={"code": code, "state": state, **fields})


def app_link(client, provider, person: Person, name: str = "google") -> httpx.Response:
    code, state = authorized(client, provider, person, name, purpose="link")
    return client.post(f"/auth/app/social/{name}/link/callback", json={"code": code, "state": state})


def social_user(origin, api, provider, person: Person, name: str = "google") -> httpx.Client:
    """A user created by social sign-in (no password), as a client carrying its token."""
    signed_in = app_sign_in(api, provider, person, name)
    assert signed_in.status_code == 200, signed_in.text
    return httpx.Client(base_url=f"{origin}/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"})


def test_the_redirect_url_asks_the_provider_for_a_code_with_a_signed_state(api, origin, provider):
    for name, path, scope in (("google", "/authorize", "openid email profile"),
                              ("github", "/login/oauth/authorize", "read:user user:email")):
        states = set()
        for mode, client in (("app", api), ("web", Browser(origin))):
            started = client.post(f"/auth/{mode}/social/{name}/redirect")
            assert started.status_code == 200 and list(started.json()) == ["redirect_url"]
            url = urlsplit(started.json()["redirect_url"])
            assert f"{url.scheme}://{url.netloc}{url.path}" == provider.url + path
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            states.add(params.pop("state"))
            assert params == {"response_type": "code", "client_id": CLIENTS[name][0], "redirect_uri": REDIRECT_URI,
                              "scope": scope}
            # The web app's state is bound to the browser by a cookie sent back only to these routes.
            assert ("oauth_state" in started.cookies) == (mode == "web")
        assert len(states) == 2


def test_an_unknown_or_disabled_provider_is_refused(api, origin, rosetta_url):
    user = AppUser(f"{origin}/api/v1")
    for client, path in ((api, "/auth/app/social/facebook/redirect"),
                         (api, "/auth/app/social/facebook/callback"),
                         (user.api, "/auth/app/social/facebook/link"),
                         (user.api, "/auth/app/social/facebook/link/callback"),
                         # The session's own server has no client id for Google: turned off.
                         (httpx.Client(base_url=rosetta_url), "/auth/app/social/google/redirect")):
        assert answer(client.post(path, json={"code": "x", "state": "y"})) == (422, BAD_PROVIDER)


def test_a_first_sign_in_creates_a_verified_user_and_answers_a_token(api, provider, database):
    person = Person(name="Ada Lovelace")
    signed_in = app_sign_in(api, provider, person, device_name="Pixel 9")
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["token_type"] == "Bearer" and "|" in body["access_token"]
    assert body["user"] == {"id": body["user"]["id"], "name": "Ada Lovelace", "email": person.email}
    me = api.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["email_verified_at"] and me["avatar_url"] == person.avatar

    user = database.User.get_by_id(body["user"]["id"])
    assert user.password_hash is None
    account = database.SocialAccount.get(database.SocialAccount.user == user.id)
    assert (account.provider, account.provider_user_id, account.provider_email, account.name, account.avatar) == (
        "google", person.uid, person.email, "Ada Lovelace", person.avatar)
    assert database.Token.get(database.Token.user == user.id).name == "Pixel 9"
    # The code went to the token endpoint with the client's credentials, asking for JSON.
    exchange = provider.token_requests[-1]
    assert (exchange["client_id"], exchange["client_secret"], exchange["accept"]) == (
        *CLIENTS["google"], "application/json")
    assert (exchange["grant_type"], exchange["redirect_uri"]) == ("authorization_code", REDIRECT_URI)


def test_signing_in_again_finds_the_user_by_provider_id_even_with_a_new_email(api, provider):
    person = Person()
    first = app_sign_in(api, provider, person).json()
    person.email = new_email("moved")
    again = app_sign_in(api, provider, person)
    assert again.status_code == 200
    assert again.json()["user"] == first["user"] and again.json()["access_token"] != first["access_token"]


def test_a_verified_email_links_the_provider_to_the_user_who_has_proved_it(origin, api, provider, database):
    user = AppUser(f"{origin}/api/v1")
    unproven = app_sign_in(api, provider, Person(email=user.email.upper()))
    assert unproven.status_code == 422 and list(unproven.json()["errors"]) == ["email"]  # could be a squatter
    database.User.update(email_verified_at=database.utcnow()).where(database.User.id == user.id).execute()
    signed_in = app_sign_in(api, provider, Person(email=user.email.upper()))
    assert signed_in.status_code == 200
    assert signed_in.json()["user"]["id"] == user.id
    assert [a.provider for a in database.SocialAccount.select().where(database.SocialAccount.user == user.id)] == [
        "google"]


def test_a_verified_email_links_to_a_password_less_user_and_verifies_it(api, provider, database):
    first = app_sign_in(api, provider, Person(verified=False), "github")  # a user with no password, unverified
    user_id = first.json()["user"]["id"]
    address = database.User.get_by_id(user_id).email
    signed_in = app_sign_in(api, provider, Person(email=address))
    assert signed_in.status_code == 200 and signed_in.json()["user"]["id"] == user_id
    assert database.User.get_by_id(user_id).email_verified_at is not None  # the provider proved the address


def test_an_unverified_email_is_never_linked_to_the_user_who_has_it(origin, api, provider, database):
    user = AppUser(f"{origin}/api/v1")
    for name, person in (("google", Person(email=user.email, verified=False)),
                         ("github", Person(email=user.email, verified=False))):
        status, body = answer(app_sign_in(api, provider, person, name))
        assert status == 422 and list(body["errors"]) == ["email"]
    assert not database.SocialAccount.select().where(database.SocialAccount.user == user.id).exists()


def test_github_signs_in_with_the_primary_verified_address(api, provider, database):
    person = Person(email=new_email("primary"),
                    more_emails=[{"email": new_email("old"), "primary": False, "verified": True},
                                 {"email": new_email("unverified"), "primary": False, "verified": False}])
    signed_in = app_sign_in(api, provider, person, "github")
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["email"] == person.email
    account = database.SocialAccount.get(database.SocialAccount.provider_user_id == person.uid)
    assert (account.provider, account.provider_email) == ("github", person.email)
    assert database.User.get_by_id(account.user_id).email_verified_at is not None


def test_an_address_the_provider_has_not_verified_makes_an_unverified_user(api, provider, database):
    for name in ("google", "github"):
        signed_in = app_sign_in(api, provider, Person(verified=False), name)
        assert signed_in.status_code == 200, signed_in.text
        assert database.User.get_by_id(signed_in.json()["user"]["id"]).email_verified_at is None


def test_a_provider_that_shares_no_email_is_refused(api, provider):
    for name in ("google", "github"):
        status, body = answer(app_sign_in(api, provider, Person(email=None), name))
        assert status == 422 and list(body["errors"]) == ["email"]


def test_an_inactive_user_is_refused(origin, api, provider, database):
    person = Person()
    created = app_sign_in(api, provider, person).json()["user"]
    database.User.update(is_active=False).where(database.User.id == created["id"]).execute()
    assert answer(app_sign_in(api, provider, person)) == (403, {"message": INACTIVE})

    by_email = AppUser(f"{origin}/api/v1")
    database.User.update(is_active=False, email_verified_at=database.utcnow()).where(
        database.User.id == by_email.id).execute()
    assert answer(app_sign_in(api, provider, Person(email=by_email.email))) == (403, {"message": INACTIVE})
    assert not database.SocialAccount.select().where(database.SocialAccount.user == by_email.id).exists()


def test_a_missing_forged_foreign_used_or_expired_state_is_refused(stack, api, provider):
    code, _ = authorized(api, provider, Person())
    missing = api.post("/auth/app/social/google/callback", json={"code": code})
    assert answer(missing) == (422, {"message": INVALID, "errors": {"state": ["The state field is required."]}})

    _, github_state = authorized(api, provider, Person(), "github")
    user = AppUser(str(api.base_url))
    _, link_state = authorized(user.api, provider, Person(), purpose="link")
    assert app_sign_in(api, provider, Person()).status_code == 200
    code, state = authorized(api, provider, Person())
    assert api.post("/auth/app/social/google/callback", json={"code": code, "state": state}).status_code == 200
    expired = run_python(stack.env, textwrap.dedent("""
        import time
        from unittest import mock
        from handlers.rosetta.social import new_state
        with mock.patch("time.time", return_value=time.time() - 601):
            print(new_state("google", "app", "login", None, "an-old-nonce"))
    """)).strip()
    for bad in (state, state[:-2] + ("AA" if not state.endswith("AA") else "BB"), github_state, link_state, expired,
                "not a state"):
        code, _ = authorized(api, provider, Person())
        assert answer(api.post("/auth/app/social/google/callback", json={"code": code, "state": bad})) == (
            422, BAD_STATE)


def test_a_code_the_provider_refuses_or_a_failing_provider_is_a_422(api, provider):
    for name in ("google", "github"):
        _, state = authorized(api, provider, Person(), name)
        refused = api.post(f"/auth/app/social/{name}/callback", json={"code": "made-up", "state": state})
        assert answer(refused) == (422, BAD_CODE)
    for path, failure in (("/userinfo", (500, b"oops")), ("/userinfo", (200, b"<html>not json</html>")),
                          ("/token", (503, b"down"))):
        provider.broken[path] = failure
        try:
            assert answer(app_sign_in(api, provider, Person())) == (422, BAD_CODE)
        finally:
            provider.broken.clear()


def test_the_web_app_signs_in_with_a_session(origin, provider, database):
    browser = Browser(origin)
    person = Person()
    code, state = _web_authorized(browser, provider, person)
    signed_in = browser.post("/auth/web/social/google/callback", json={"code": code, "state": state})
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["message"] == "Logged in successfully."
    assert signed_in.json()["user"]["email"] == person.email
    assert browser.get("/me").json()["id"] == signed_in.json()["user"]["id"]
    # Signing in again (a new browser) finds the same user.
    again = Browser(origin)
    code, state = _web_authorized(again, provider, person)
    assert again.post("/auth/web/social/google/callback", json={"code": code, "state": state}).json()["user"] == (
        signed_in.json()["user"])


def _web_authorized(browser: Browser, provider, person: Person, name: str = "google", purpose: str = "redirect"):
    started = browser.post(f"/auth/web/social/{name}/{purpose}")
    assert started.status_code == 200, started.text
    return provider.authorize(started.json()["redirect_url"], person)


def test_a_web_state_only_works_in_the_browser_that_asked_for_it(origin, provider):
    victim, attacker = Browser(origin), Browser(origin)
    code, state = _web_authorized(attacker, provider, Person())
    lured = victim.post("/auth/web/social/google/callback", json={"code": code, "state": state})
    assert answer(lured) == (422, BAD_STATE)
    assert victim.get("/me").status_code == 401
    # An app's state is no good to the web app either.
    code, app_state = authorized(httpx.Client(base_url=f"{origin}/api/v1"), provider, Person())
    assert answer(victim.post("/auth/web/social/google/callback", json={"code": code, "state": app_state})) == (
        422, BAD_STATE)


def test_web_changes_need_the_xsrf_header(origin):
    browser = Browser(origin)
    browser.register()
    for method, path in (("POST", "/google/redirect"), ("POST", "/google/callback"), ("POST", "/google/link"),
                         ("POST", "/google/link/callback"), ("DELETE", "/google/unlink")):
        refused = browser.request(method, f"/auth/web/social{path}", xsrf=False, json={"code": "x", "state": "y"})
        assert answer(refused) == (419, {"message": "CSRF token mismatch."})


def test_signed_in_routes_need_a_caller(api, origin):
    browser = Browser(origin)
    for mode in ("app", "web"):
        for method, path in (("GET", "/accounts"), ("POST", "/google/link"), ("POST", "/google/link/callback"),
                             ("DELETE", "/google/unlink")):
            for refused in (api.request(method, f"/auth/{mode}/social{path}"),
                            browser.request(method, f"/auth/{mode}/social{path}")):
                assert answer(refused) == (401, UNAUTHENTICATED)


def test_an_app_user_links_lists_and_unlinks_accounts(origin, provider):
    user = AppUser(f"{origin}/api/v1")
    assert answer(user.api.get("/auth/app/social/accounts")) == (200, {"accounts": []})
    person = Person(name="Grace Hopper")
    linked = app_link(user.api, provider, person)
    assert linked.status_code == 200, linked.text
    body = linked.json()
    assert body["message"] == "Social account linked successfully."
    assert {k: body["account"][k] for k in ("provider", "provider_email", "name")} == {
        "provider": "google", "provider_email": person.email, "name": "Grace Hopper"}
    assert app_link(user.api, provider, Person(), "github").status_code == 200

    accounts = user.api.get("/auth/app/social/accounts").json()["accounts"]
    assert [a["provider"] for a in accounts] == ["google", "github"] and accounts[0] == body["account"]
    assert set(accounts[0]) == {"id", "provider", "provider_email", "name", "avatar", "created_at"}

    assert answer(user.api.delete("/auth/app/social/google/unlink")) == (
        200, {"message": "Social account unlinked successfully."})
    assert [a["provider"] for a in user.api.get("/auth/app/social/accounts").json()["accounts"]] == ["github"]
    assert answer(user.api.delete("/auth/app/social/google/unlink")) == (404, {"message": "Social account not found."})
    assert answer(user.api.delete("/auth/app/social/facebook/unlink")) == (
        404, {"message": "Social account not found."})


def test_an_account_linked_here_or_to_someone_else_cannot_be_linked_again(origin, api, provider):
    person = Person()
    owner = social_user(origin, api, provider, person)
    assert answer(app_link(owner, provider, person)) == (422, {"message": ALREADY_LINKED_HERE})
    other = AppUser(f"{origin}/api/v1")
    assert answer(app_link(other.api, provider, person)) == (422, {"message": ALREADY_LINKED_ELSEWHERE})
    assert other.api.get("/auth/app/social/accounts").json() == {"accounts": []}


def test_a_link_state_is_good_only_for_the_user_who_asked_and_only_for_linking(origin, api, provider):
    asker, thief = AppUser(f"{origin}/api/v1"), AppUser(f"{origin}/api/v1")
    code, state = authorized(asker.api, provider, Person(), purpose="link")
    stolen = thief.api.post("/auth/app/social/google/link/callback", json={"code": code, "state": state})
    assert answer(stolen) == (422, BAD_STATE)
    code, login_state = authorized(api, provider, Person())
    assert answer(asker.api.post("/auth/app/social/google/link/callback",
                                 json={"code": code, "state": login_state})) == (422, BAD_STATE)
    code, link_state = authorized(asker.api, provider, Person(), purpose="link")
    assert answer(api.post("/auth/app/social/google/callback", json={"code": code, "state": link_state})) == (
        422, BAD_STATE)


def test_the_last_way_to_sign_in_cannot_be_unlinked(origin, api, provider):
    user = social_user(origin, api, provider, Person())
    assert answer(user.delete("/auth/app/social/google/unlink")) == (422, {"message": LAST_LOGIN_METHOD})
    assert app_link(user, provider, Person(), "github").status_code == 200
    assert user.delete("/auth/app/social/google/unlink").status_code == 200
    assert answer(user.delete("/auth/app/social/github/unlink")) == (422, {"message": LAST_LOGIN_METHOD})
    assert [a["provider"] for a in user.get("/auth/app/social/accounts").json()["accounts"]] == ["github"]


def test_the_web_app_links_lists_and_unlinks_accounts(origin, provider):
    browser = Browser(origin)
    browser.register()
    person = Person()
    code, state = _web_authorized(browser, provider, person, purpose="link")
    linked = browser.post("/auth/web/social/google/link/callback", json={"code": code, "state": state})
    assert linked.status_code == 200, linked.text
    assert linked.json()["account"]["provider_email"] == person.email
    assert [a["provider"] for a in browser.get("/auth/web/social/accounts").json()["accounts"]] == ["google"]
    code, state = _web_authorized(browser, provider, person, purpose="link")
    assert answer(browser.post("/auth/web/social/google/link/callback", json={"code": code, "state": state})) == (
        422, {"message": ALREADY_LINKED_HERE})
    assert answer(browser.request("DELETE", "/auth/web/social/google/unlink")) == (
        200, {"message": "Social account unlinked successfully."})
    assert browser.get("/auth/web/social/accounts").json() == {"accounts": []}
