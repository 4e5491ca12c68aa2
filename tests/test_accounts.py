"""Accounts: create (open), read, update and delete only your own, usernames unique."""

import uuid

import httpx
from nacl.signing import SigningKey

from tests.api import unique


def test_creating_an_account_answers_201_with_the_spec_shape(base_url):
    key = SigningKey.generate()
    import base64
    pubkey = base64.b64encode(bytes(key.verify_key)).decode()
    response = httpx.post(f"{base_url}/account/", json={"username": unique("new"), "pubkey": pubkey,
                                                        "profile_pic": "https://example.org/a.png"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"created_at", "id", "profile_pic", "pubkey", "username"}
    assert uuid.UUID(body["id"])
    assert body["pubkey"] == pubkey and body["profile_pic"] == "https://example.org/a.png"
    assert body["created_at"].endswith("Z")


def test_a_hex_public_key_is_accepted(base_url):
    key = SigningKey.generate()
    response = httpx.post(f"{base_url}/account/", json={"username": unique("hex"), "pubkey": bytes(key.verify_key).hex()})
    assert response.status_code == 201


def test_a_public_key_that_is_not_ed25519_is_refused(base_url):
    response = httpx.post(f"{base_url}/account/", json={"username": unique("bad"), "pubkey": "c2hvcnQ="})
    assert response.status_code == 422
    assert "pubkey" in response.json()["errors"]


def test_usernames_are_unique_regardless_of_case(alice, base_url):
    other = SigningKey.generate()
    response = httpx.post(f"{base_url}/account/", json={"username": alice.username.upper(),
                                                        "pubkey": bytes(other.verify_key).hex()})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


def test_a_signed_in_user_reads_any_account(alice, bob):
    response = alice.api.get(f"/account/{bob.id}")
    assert response.status_code == 200
    assert response.json()["username"] == bob.username


def test_reading_accounts_needs_a_token(alice, base_url):
    response = httpx.get(f"{base_url}/account/{alice.id}")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


def test_an_unknown_account_is_404(alice):
    assert alice.api.get(f"/account/{uuid.uuid4()}").status_code == 404


def test_an_account_updates_itself(alice):
    name = unique("renamed")
    response = alice.api.put(f"/account/{alice.id}", json={"username": name, "profile_pic": "p.png"})
    assert response.status_code == 200
    assert response.json()["username"] == name and response.json()["profile_pic"] == "p.png"
    assert alice.api.get(f"/account/{alice.id}").json()["username"] == name


def test_nobody_updates_or_deletes_someone_elses_account(alice, bob):
    assert alice.api.put(f"/account/{bob.id}", json={"username": unique("x")}).status_code == 403
    assert alice.api.delete(f"/account/{bob.id}").status_code == 403
    assert bob.api.get(f"/account/{bob.id}").status_code == 200


def test_renaming_to_a_taken_username_is_a_conflict(alice, bob):
    response = alice.api.put(f"/account/{alice.id}", json={"username": bob.username})
    assert response.status_code == 409


def test_a_deleted_account_is_gone_and_its_token_stops_working(make_account, bob):
    carol = make_account()
    group = carol.group(members=[bob])
    assert carol.api.delete(f"/account/{carol.id}").status_code == 204
    assert bob.api.get(f"/account/{carol.id}").status_code == 404
    assert carol.api.get(f"/account/{bob.id}").status_code == 401
    # Groups the account owned went with it.
    assert bob.api.get(f"/group/{group['id']}").status_code == 404


def test_a_client_chosen_id_makes_account_creation_retry_safe(base_url):
    key = SigningKey.generate()
    body = {"id": str(uuid.uuid4()), "username": unique("retry"), "pubkey": bytes(key.verify_key).hex()}
    first = httpx.post(f"{base_url}/account/", json=body)
    second = httpx.post(f"{base_url}/account/", json=body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert first.json()["id"] == body["id"]


def test_account_search_filters_by_username_and_ids(make_account):
    tag = unique("Findme")
    one, two = make_account(username=f"{tag}-one"), make_account(username=f"{tag}-two")
    found = one.api.post("/account/search", json={"username": tag.lower()}).json()
    assert [a["id"] for a in found] == [one.id, two.id]
    only = one.api.post("/account/search", json={"id": [two.id]}).json()
    assert [a["id"] for a in only] == [two.id]


def test_account_search_pages_with_a_cursor(make_account):
    tag = unique("paged")
    accounts = [make_account(username=f"{tag}-{i}") for i in range(3)]
    api = accounts[0].api
    first = api.post("/account/search", json={"username": tag, "limit": 2})
    assert [a["id"] for a in first.json()] == [a.id for a in accounts[:2]]
    cursor = first.headers["x-next-cursor"]
    second = api.post("/account/search", json={"username": tag, "limit": 2, "cursor": cursor})
    assert [a["id"] for a in second.json()] == [accounts[2].id]
    assert "x-next-cursor" not in second.headers


def test_account_search_bounds_created_at_inclusively(make_account):
    tag = unique("when")
    first, second = make_account(username=f"{tag}-a"), make_account(username=f"{tag}-b")
    at = first.api.get(f"/account/{second.id}").json()["created_at"]
    since = first.api.post("/account/search", json={"username": tag, "from": at}).json()
    until = first.api.post("/account/search", json={"username": tag, "until": at}).json()
    assert [a["id"] for a in since] == [second.id]
    assert [a["id"] for a in until] == [first.id, second.id]
