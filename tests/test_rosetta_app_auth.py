"""RosettaChat app authentication: register, login, logout and passwords, with bearer tokens."""

from __future__ import annotations

import httpx

from tests.rosetta import PASSWORD, AppUser, new_email


def test_register_answers_a_token_that_works_and_stores_only_hashes(rosetta_url, database):
    address = new_email("Reg")
    user = AppUser(rosetta_url, address, name="John Doe", preferred_language="ja", device_name="iPhone 15 Pro")
    me = user.api.get("/me")
    assert me.status_code == 200
    body = me.json()
    assert (body["id"], body["name"], body["email"], body["preferred_language"]) == (user.id, "John Doe", address, "ja")
    assert body["email_verified_at"] is None and body["is_active"] is True and body["last_login_at"]

    row = database.User.get_by_id(user.id)
    assert row.password_hash.startswith("$2b$04$")  # bcrypt, at the configured cost
    assert PASSWORD not in row.password_hash
    token_id, secret = user.token.split("|")
    stored = database.Token.get(database.Token.user == user.id)
    assert stored.name == "iPhone 15 Pro" and secret not in stored.secret_hash and stored.abilities == '["*"]'


def test_register_refuses_a_taken_email_in_any_case_and_bad_fields(rosetta_url, app_user):
    client = httpx.Client(base_url=rosetta_url)
    taken = client.post("/auth/app/register", json={"name": "X", "email": app_user.email.upper(),
                                                    "password": PASSWORD, "password_confirmation": PASSWORD})
    assert taken.status_code == 422
    assert taken.json() == {"message": "The given data was invalid.",
                            "errors": {"email": ["This email is already registered."]}}

    bad = client.post("/auth/app/register", json={"email": "not-an-email", "password": "short",
                                                  "password_confirmation": "other", "preferred_language": "fr"})
    assert bad.status_code == 422
    assert bad.json()["errors"] == {
        "name": ["The name field is required."],
        "email": ["The email field must be a valid email address."],
        "password": ["The password field must be at least 8 characters."],
        "preferred_language": ["The selected preferred language is invalid."],
    }
    mismatch = client.post("/auth/app/register", json={"name": "X", "email": new_email(), "password": PASSWORD,
                                                       "password_confirmation": PASSWORD + "!"})
    assert mismatch.json()["errors"] == {"password": ["The password field confirmation does not match."]}
    too_long = client.post("/auth/app/register", json={"name": "X", "email": new_email(), "password": "é" * 40,
                                                       "password_confirmation": "é" * 40})
    assert too_long.json()["errors"] == {"password": ["The password field must not be greater than 72 bytes."]}
    assert client.post("/auth/app/register", content=b"{not json").status_code == 400


def test_login_issues_a_new_token_and_wrong_credentials_are_one_answer(rosetta_url, app_user):
    client = httpx.Client(base_url=rosetta_url)
    answer = client.post("/auth/app/login", json={"email": app_user.email.upper(), "password": PASSWORD,
                                                  "device_name": "Pixel"})
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer"
    assert answer.json()["user"] == {"id": app_user.id, "name": "Test User", "email": app_user.email}
    assert answer.json()["access_token"] != app_user.token
    wrong = {"message": "The given data was invalid.", "errors": {"email": ["The provided credentials are incorrect."]}}
    for body in ({"email": app_user.email, "password": "wrong password"}, {"email": new_email(), "password": PASSWORD}):
        refused = client.post("/auth/app/login", json=body)
        assert (refused.status_code, refused.json()) == (422, wrong)


def test_an_inactive_account_is_refused_wherever_a_token_is_issued_or_used(rosetta_url, app_user, database):
    database.User.update(is_active=False).where(database.User.id == app_user.id).execute()
    inactive = {"message": "Account is inactive."}
    login = httpx.post(f"{rosetta_url}/auth/app/login", json={"email": app_user.email, "password": PASSWORD})
    assert (login.status_code, login.json()) == (403, inactive)
    me = app_user.api.get("/me")
    assert (me.status_code, me.json()) == (403, inactive)


def test_logout_revokes_only_the_current_token(rosetta_url, app_user):
    other = app_user.login()
    out = app_user.api.post("/auth/app/logout")
    assert (out.status_code, out.json()) == (200, {"message": "Logged out successfully."})
    assert app_user.api.get("/me").json() == {"message": "Unauthenticated."}
    assert app_user.api.get("/me").status_code == 401
    assert app_user.with_token(other).get("/me").status_code == 200


def test_unauthenticated_requests_get_the_laravel_401(rosetta_url, app_user):
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": app_user.token},
                    {"Authorization": f"Bearer {app_user.token}x"}):
        answer = httpx.post(f"{rosetta_url}/auth/app/logout", headers=headers)
        assert (answer.status_code, answer.json()) == (401, {"message": "Unauthenticated."})


def test_change_password_revokes_the_other_tokens(rosetta_url, app_user):
    other = app_user.login()
    wrong = app_user.api.post("/auth/app/change-password", json={
        "current_password": "not it", "password": "a new password", "password_confirmation": "a new password"})
    assert wrong.status_code == 422
    assert wrong.json()["errors"] == {"current_password": ["The current password is incorrect."]}

    changed = app_user.api.post("/auth/app/change-password", json={
        "current_password": PASSWORD, "password": "a new password", "password_confirmation": "a new password"})
    assert (changed.status_code, changed.json()) == (200, {"message": "Password changed successfully."})
    assert app_user.api.get("/me").status_code == 200
    assert app_user.with_token(other).get("/me").status_code == 401
    app_user.password = "a new password"
    assert app_user.login()
    old = httpx.post(f"{rosetta_url}/auth/app/login", json={"email": app_user.email, "password": PASSWORD})
    assert old.status_code == 422


def test_an_expired_token_is_refused(rosetta_url, app_user, database):
    import datetime as dt

    database.Token.update(expires_at=dt.datetime(2020, 1, 1)).where(database.Token.user == app_user.id).execute()
    assert app_user.api.get("/me").status_code == 401


def test_token_use_is_recorded(rosetta_url, app_user, database):
    from tests.stack import wait_for

    assert app_user.api.get("/me").status_code == 200
    token = lambda: database.Token.get(database.Token.user == app_user.id)  # noqa: E731
    assert wait_for(lambda: token().last_used_at is not None, 10)
