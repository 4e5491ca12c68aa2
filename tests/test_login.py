"""Challenge login with real ed25519 signatures; tokens are hashed at rest and revocable."""

import hashlib
import time

import httpx
from nacl.signing import SigningKey

import models
from tests.api import Account


def challenge(alice: Account) -> str:
    response = alice.anonymous.get("/challenge", params={"username": alice.username})
    assert response.status_code == 200
    return response.json()["challenge"]


def test_a_signed_challenge_logs_in_and_the_token_works(alice):
    response = alice.anonymous.post("/login", json={"username": alice.username, "signature": alice.sign(challenge(alice))})
    assert response.status_code == 200
    token = response.json()["token"]
    me = httpx.get(f"{alice.base_url}/account/{alice.id}", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200


def test_a_hex_signature_is_accepted(alice):
    signature = alice.key.sign(challenge(alice).encode()).signature.hex()
    response = alice.anonymous.post("/login", json={"username": alice.username, "signature": signature})
    assert response.status_code == 200


def test_a_signature_by_another_key_is_refused(alice):
    forged = SigningKey.generate().sign(challenge(alice).encode()).signature.hex()
    response = alice.anonymous.post("/login", json={"username": alice.username, "signature": forged})
    assert response.status_code == 401


def test_a_challenge_is_consumed_by_its_first_attempt_right_or_wrong(alice):
    text = challenge(alice)
    wrong = alice.anonymous.post("/login", json={"username": alice.username, "signature": "AAAA"})
    assert wrong.status_code == 401
    right = alice.anonymous.post("/login", json={"username": alice.username, "signature": alice.sign(text)})
    assert right.status_code == 401


def test_a_challenge_cannot_be_replayed(alice):
    signature = alice.sign(challenge(alice))
    first = alice.anonymous.post("/login", json={"username": alice.username, "signature": signature})
    again = alice.anonymous.post("/login", json={"username": alice.username, "signature": signature})
    assert (first.status_code, again.status_code) == (200, 401)


def test_an_unknown_username_gets_a_challenge_but_no_token(base_url):
    client = httpx.Client(base_url=base_url)
    text = client.get("/challenge", params={"username": "nobody-at-all"}).json()["challenge"]
    signature = SigningKey.generate().sign(text.encode()).signature.hex()
    assert client.post("/login", json={"username": "nobody-at-all", "signature": signature}).status_code == 401


def test_a_challenge_needs_a_username(base_url):
    response = httpx.get(f"{base_url}/challenge")
    assert response.status_code == 422
    assert "username" in response.json()["errors"]


def test_a_challenge_expires(alice, stack):
    import redis

    text = challenge(alice)
    client = redis.Redis.from_url(stack.settings.redis_url)
    key = f"{stack.settings.redis.namespace}:challenge:{alice.username.casefold()}"
    ttl = client.ttl(key)
    assert 0 < ttl <= stack.settings.auth.challenge_ttl_s
    client.pexpire(key, 1)
    time.sleep(0.05)
    response = alice.anonymous.post("/login", json={"username": alice.username, "signature": alice.sign(text)})
    assert response.status_code == 401


def test_tokens_are_stored_only_as_digests(alice, stack):
    models.open_database(stack.settings.database_url)
    try:
        secret = alice.token.split("|", 1)[1]
        stored = [t.secret_hash for t in models.Token.select()]
        assert hashlib.sha256(secret.encode()).hexdigest() in stored
        assert not any(secret in value for value in stored)
    finally:
        models.db.close()


def test_logout_revokes_the_token(make_account):
    carol = make_account()
    assert carol.api.post("/logout").status_code == 204
    assert carol.api.get(f"/account/{carol.id}").status_code == 401


def test_a_malformed_or_unknown_token_is_refused(alice):
    for value in ("Bearer nonsense", "Bearer 01j00000000000000000000000|x", "Basic abc", alice.token):
        response = httpx.get(f"{alice.base_url}/account/{alice.id}", headers={"Authorization": value})
        assert response.status_code == 401, value
