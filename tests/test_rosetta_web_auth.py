"""RosettaChat web authentication: a session cookie kept in Redis, and XSRF protection as a
Laravel SPA client expects it."""

from __future__ import annotations

import httpx

from tests.rosetta import PASSWORD, AppUser, Browser, new_email


def test_register_signs_in_with_an_httponly_lax_session_cookie(origin_url):
    browser = Browser(origin_url)
    address = new_email("web")
    answer = browser.post("/auth/web/register", json={"name": "Web User", "email": address, "password": PASSWORD,
                                                      "password_confirmation": PASSWORD})
    assert answer.status_code == 200
    assert answer.json()["message"] == "Registered successfully."
    assert answer.json()["user"]["email"] == address
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("rosettachat_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/" in session
    xsrf = next(c for c in cookies if c.startswith("XSRF-TOKEN="))
    assert "HttpOnly" not in xsrf
    me = browser.get("/me")
    assert me.status_code == 200 and me.json()["email"] == address


def test_login_logout_and_the_session_is_gone(origin_url, app_user):
    browser = Browser(origin_url)
    login = browser.post("/auth/web/login", json={"email": app_user.email, "password": PASSWORD})
    assert login.status_code == 200
    assert login.json() == {"user": {"id": app_user.id, "name": "Test User", "email": app_user.email},
                            "message": "Logged in successfully."}
    stolen = browser.client.cookies.get("rosettachat_session")
    assert browser.get("/me").json()["id"] == app_user.id
    out = browser.post("/auth/web/logout")
    assert (out.status_code, out.json()) == (200, {"message": "Logged out successfully."})
    assert browser.get("/me").status_code == 401
    replayed = httpx.get(f"{origin_url}/api/v1/me", cookies={"rosettachat_session": stolen})
    assert replayed.status_code == 401


def test_changes_without_the_xsrf_header_are_refused_with_419(origin_url, app_user):
    browser = Browser(origin_url)
    refused = browser.post("/auth/web/login", json={"email": app_user.email, "password": PASSWORD}, xsrf=False)
    assert (refused.status_code, refused.json()) == (419, {"message": "CSRF token mismatch."})
    forged = browser.post("/auth/web/login", json={"email": app_user.email, "password": PASSWORD},
                          headers={"X-XSRF-TOKEN": "forged"}, xsrf=False)
    assert forged.status_code == 419
    assert browser.post("/auth/web/login", json={"email": app_user.email, "password": PASSWORD}).status_code == 200
    # Signed in, every change needs the session's token; reads do not.
    assert browser.get("/me", xsrf=False).status_code == 200
    assert browser.request("PATCH", "/me", json={"name": "X"}, xsrf=False).status_code == 419
    assert browser.post("/auth/web/logout", xsrf=False).status_code == 419
    assert browser.request("PATCH", "/me", json={"name": "Renamed"}).json()["name"] == "Renamed"


def test_a_session_is_new_at_each_sign_in(origin_url, app_user):
    browser = Browser(origin_url)
    browser.post("/auth/web/login", json={"email": app_user.email, "password": PASSWORD})
    first = browser.client.cookies.get("rosettachat_session")
    browser.post("/auth/web/login", json={"email": app_user.email, "password": PASSWORD})
    assert browser.client.cookies.get("rosettachat_session") != first
    assert httpx.get(f"{origin_url}/api/v1/me", cookies={"rosettachat_session": first}).status_code == 401


def test_change_password_on_the_web_ends_other_sessions_and_every_token(origin_url, rosetta_url):
    user = AppUser(rosetta_url)
    here, elsewhere = Browser(origin_url), Browser(origin_url)
    for browser in (here, elsewhere):
        assert browser.post("/auth/web/login", json={"email": user.email, "password": PASSWORD}).status_code == 200
    changed = here.post("/auth/web/change-password", json={
        "current_password": PASSWORD, "password": "another password", "password_confirmation": "another password"})
    assert (changed.status_code, changed.json()) == (200, {"message": "Password changed successfully."})
    assert here.get("/me").status_code == 200
    assert elsewhere.get("/me").status_code == 401
    assert user.api.get("/me").status_code == 401


def test_inactive_users_cannot_sign_in_or_use_a_session(origin_url, app_user, database):
    browser = Browser(origin_url)
    assert browser.post("/auth/web/login", json={"email": app_user.email, "password": PASSWORD}).status_code == 200
    database.User.update(is_active=False).where(database.User.id == app_user.id).execute()
    assert browser.get("/me").json() == {"message": "Account is inactive."}
    again = Browser(origin_url).post("/auth/web/login", json={"email": app_user.email, "password": PASSWORD})
    assert (again.status_code, again.json()) == (403, {"message": "Account is inactive."})


def test_sessions_live_in_redis_under_a_digest_of_their_id(origin_url, stack, app_user):
    import redis

    browser = Browser(origin_url)
    browser.post("/auth/web/login", json={"email": app_user.email, "password": PASSWORD})
    session_id = browser.client.cookies.get("rosettachat_session")
    client = redis.Redis.from_url(stack.settings.redis_url)
    keys = [k.decode() for k in client.scan_iter(f"{stack.settings.redis.namespace}:session:*")]
    assert keys and not any(session_id in k for k in keys)
    assert all(session_id.encode() not in (client.get(k) or b"") for k in keys)
    ttl = max(client.ttl(k) for k in keys)
    assert 0 < ttl <= stack.settings.auth.session_lifetime_s


def test_bearer_tokens_need_no_xsrf_header(origin_url, app_user):
    answer = app_user.api.patch("/me", json={"name": "By Token"})
    assert answer.status_code == 200 and answer.json()["name"] == "By Token"


def test_forgot_and_reset_on_the_web_end_every_session(origin_url, rosetta_url, stack):
    import re

    from tests.rosetta import text_of, wait_for_mail

    user = AppUser(rosetta_url)
    signed_in = Browser(origin_url)
    assert signed_in.post("/auth/web/login", json={"email": user.email, "password": PASSWORD}).status_code == 200
    browser = Browser(origin_url)
    unknown = browser.post("/auth/web/forgot-password", json={"email": new_email()})
    assert unknown.json()["errors"] == {"email": ["We could not find an account with that email."]}
    sent = browser.post("/auth/web/forgot-password", json={"email": user.email})
    assert (sent.status_code, sent.json()) == (200, {"message": "Password reset link sent to your email."})
    token = re.search(r"Reset token: (\S+)", text_of(wait_for_mail(stack, user.email, "reset"))).group(1)
    body = {"token": token, "email": user.email, "password": "web reset pass",
            "password_confirmation": "web reset pass"}
    assert browser.post("/auth/web/reset-password", json=body, xsrf=False).status_code == 419
    reset = browser.post("/auth/web/reset-password", json=body)
    assert (reset.status_code, reset.json()) == (200, {"message": "Password has been reset successfully."})
    assert signed_in.get("/me").status_code == 401
    assert browser.post("/auth/web/login", json={"email": user.email, "password": "web reset pass"}).status_code == 200


def test_web_sign_in_forms_answer_their_documented_errors(origin_url, app_user):
    browser = Browser(origin_url)
    wrong = browser.post("/auth/web/login", json={"email": app_user.email, "password": "not the password"})
    assert wrong.json()["errors"] == {"email": ["The provided credentials are incorrect."]}
    taken = browser.post("/auth/web/register", json={"name": "X", "email": app_user.email, "password": PASSWORD,
                                                     "password_confirmation": PASSWORD})
    assert taken.json()["errors"] == {"email": ["This email is already registered."]}
    bad_code = browser.post("/auth/web/otp/verify", json={"email": app_user.email, "token": "000000"})
    assert (bad_code.status_code, bad_code.json()["errors"]) == (422, {"token": ["Invalid or expired OTP."]})
    unauthenticated = browser.post("/auth/web/change-password", json={})
    assert (unauthenticated.status_code, unauthenticated.json()) == (401, {"message": "Unauthenticated."})
