"""One-time codes, password resets and email verification: what is mailed, and what it unlocks."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

from tests.rosetta import AppUser, Browser, code_in, new_email, text_of, wait_for_mail

OTP_WRONG = {"message": "The given data was invalid.", "errors": {"token": ["Invalid or expired OTP."]}}


def _request_otp(rosetta_url, address):
    answer = httpx.post(f"{rosetta_url}/auth/app/otp", json={"email": address})
    assert (answer.status_code, answer.json()) == (200, {"message": "OTP sent to your email."})


def test_an_otp_for_a_new_email_creates_a_verified_account(rosetta_url, stack, database):
    address = new_email("otp")
    _request_otp(rosetta_url, address)
    mail = wait_for_mail(stack, address, "code")
    code = code_in(mail)
    assert mail.get_body(preferencelist=("html",)) is not None
    answer = httpx.post(f"{rosetta_url}/auth/app/otp/verify", json={"email": address, "token": code,
                                                                      "device_name": "tablet"})
    assert answer.status_code == 200
    user = answer.json()["user"]
    assert user["email"] == address and user["name"] == address.split("@")[0]
    me = httpx.get(f"{rosetta_url}/me", headers={"Authorization": f"Bearer {answer.json()['access_token']}"}).json()
    assert me["email_verified_at"] is not None
    assert database.User.get_by_id(user["id"]).password_hash is None
    again = httpx.post(f"{rosetta_url}/auth/app/otp/verify", json={"email": address, "token": code})
    assert (again.status_code, again.json()) == (422, OTP_WRONG)  # single use


def test_an_otp_signs_in_an_existing_user_on_the_web(rosetta_url, origin_url, stack, app_user):
    browser = Browser(origin_url)
    sent = browser.post("/auth/web/otp", json={"email": app_user.email})
    assert (sent.status_code, sent.json()) == (200, {"message": "OTP sent to your email."})
    code = code_in(wait_for_mail(stack, app_user.email, "code"))
    answer = browser.post("/auth/web/otp/verify", json={"email": app_user.email, "token": code})
    assert answer.status_code == 200
    assert answer.json() == {"user": {"id": app_user.id, "name": "Test User", "email": app_user.email},
                             "message": "Logged in successfully."}
    assert browser.get("/me").json()["email_verified_at"] is not None


def test_an_otp_allows_five_attempts_and_is_stored_hashed(rosetta_url, stack):
    import redis

    address = new_email("guess")
    _request_otp(rosetta_url, address)
    code = code_in(wait_for_mail(stack, address, "code"))
    client = redis.Redis.from_url(stack.settings.redis_url)
    stored = b"".join(client.dump(k) or b"" for k in client.scan_iter(f"{stack.settings.redis.namespace}:otp:*"))
    assert code.encode() not in stored
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        answer = httpx.post(f"{rosetta_url}/auth/app/otp/verify", json={"email": address, "token": wrong})
        assert (answer.status_code, answer.json()) == (422, OTP_WRONG)
    late = httpx.post(f"{rosetta_url}/auth/app/otp/verify", json={"email": address, "token": code})
    assert late.status_code == 422  # five wrong guesses voided it


def test_otp_for_an_inactive_account_is_refused(rosetta_url, stack, app_user, database):
    database.User.update(is_active=False).where(database.User.id == app_user.id).execute()
    _request_otp(rosetta_url, app_user.email)
    code = code_in(wait_for_mail(stack, app_user.email, "code"))
    answer = httpx.post(f"{rosetta_url}/auth/app/otp/verify", json={"email": app_user.email, "token": code})
    assert (answer.status_code, answer.json()) == (403, {"message": "Account is inactive."})


def test_otp_request_validates_the_email(rosetta_url):
    answer = httpx.post(f"{rosetta_url}/auth/app/otp", json={"email": "nope"})
    assert answer.status_code == 422
    assert answer.json()["errors"] == {"email": ["The email field must be a valid email address."]}


def _reset_token(mail) -> str:
    return re.search(r"Reset token: (\S+)", text_of(mail)).group(1)


def test_forgot_and_reset_password_revokes_tokens_and_works_once(rosetta_url, stack, app_user):
    unknown = httpx.post(f"{rosetta_url}/auth/app/forgot-password", json={"email": new_email()})
    assert (unknown.status_code, unknown.json()["errors"]) == (
        422, {"email": ["We could not find an account with that email."]})
    sent = httpx.post(f"{rosetta_url}/auth/app/forgot-password", json={"email": app_user.email})
    assert (sent.status_code, sent.json()) == (200, {"message": "Password reset link sent to your email."})
    mail = wait_for_mail(stack, app_user.email, "reset")
    token = _reset_token(mail)
    assert "reset-password?token=" in text_of(mail)

    body = {"token": token, "email": app_user.email, "password": "brand new password",
            "password_confirmation": "brand new password"}
    wrong = httpx.post(f"{rosetta_url}/auth/app/reset-password", json={**body, "token": "x" * 43})
    assert (wrong.status_code, wrong.json()["errors"]) == (422, {"email": ["This password reset token is invalid."]})
    reset = httpx.post(f"{rosetta_url}/auth/web/reset-password", json=body,
                       headers={"X-XSRF-TOKEN": "x"}, cookies={"XSRF-TOKEN": "x"})
    assert reset.status_code == 419  # the web form needs a real XSRF token
    reset = httpx.post(f"{rosetta_url}/auth/app/reset-password", json=body)
    assert (reset.status_code, reset.json()) == (200, {"message": "Password has been reset successfully."})
    assert app_user.api.get("/me").status_code == 401  # every token revoked
    app_user.password = "brand new password"
    assert app_user.login()
    twice = httpx.post(f"{rosetta_url}/auth/app/reset-password", json=body)
    assert twice.status_code == 422


def test_registration_mails_a_signed_verification_link(rosetta_url, origin_url, stack):
    user = AppUser(rosetta_url)
    mail = wait_for_mail(stack, user.email, "verify")
    link = re.search(r"http\S+/api/v1/auth/email/verify/\S+", text_of(mail)).group(0)
    parts = urlsplit(link)
    path_and_query = f"{parts.path}?{parts.query}"
    assert parts.path.startswith(f"/api/v1/auth/email/verify/{user.id}/")

    tampered = httpx.get(f"{origin_url}{path_and_query.replace('signature=', 'signature=0')}")
    assert (tampered.status_code, tampered.json()) == (404, {"message": "Verification link is invalid."})
    other_user = httpx.get(f"{origin_url}{path_and_query.replace(f'/verify/{user.id}/', '/verify/1/')}")
    assert other_user.status_code == 404
    assert user.api.get("/me").json()["email_verified_at"] is None
    verified = httpx.get(f"{origin_url}{path_and_query}")
    assert (verified.status_code, verified.json()) == (200, {"message": "Email verified successfully."})
    assert user.api.get("/me").json()["email_verified_at"] is not None


def test_resend_answers_200_whether_or_not_verified(rosetta_url, stack, app_user):
    wait_for_mail(stack, app_user.email, "verify")
    again = app_user.api.post("/auth/email/verification-notification")
    assert (again.status_code, again.json()) == (200, {"message": "Verification email sent."})
    wait_for_mail(stack, app_user.email, "verify", count=2)
    assert httpx.post(f"{rosetta_url}/auth/email/verification-notification").status_code == 401


def test_an_expired_verification_link_is_refused(origin_url, rosetta_url, stack):
    user = AppUser(rosetta_url)
    mail = wait_for_mail(stack, user.email, "verify")
    link = re.search(r"http\S+/api/v1/auth/email/verify/\S+", text_of(mail)).group(0)
    parts = urlsplit(link)
    expired = re.sub(r"expires=\d+", "expires=1000000000", parts.query)
    assert httpx.get(f"{origin_url}{parts.path}?{expired}").status_code == 404
