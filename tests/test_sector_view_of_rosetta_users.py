"""A RosettaChat user, who has no username, reads through the Sector dialect as `rosetta-<id>`, and no Sector
account may take a name spelt that way."""

from __future__ import annotations

import uuid

import httpx
import jsonschema_rs
import pytest
from nacl.signing import SigningKey

from handlers.sector import openapi
from tests.api import Account, unique
from tests.rosetta import AppUser

TAKEN = {"error": "conflict", "message": "That username is taken.",
         "errors": {"username": ["That username is taken."]}}


@pytest.fixture
def rosetta_user(rosetta_url, database):
    """A user signed up through RosettaChat, with the uid Sector knows it by."""
    user = AppUser(rosetta_url)
    user.uid = str(database.User.get_by_id(user.id).uid)
    return user


def _sign_up(base_url: str, username: str, **fields) -> httpx.Response:
    pubkey = bytes(SigningKey.generate().verify_key).hex()
    return httpx.post(f"{base_url}/account/", json={"username": username, "pubkey": pubkey, **fields})


def test_a_rosetta_user_reads_as_a_valid_sector_account_named_after_its_id(alice, rosetta_user):
    answer = alice.api.get(f"/account/{rosetta_user.uid}")
    assert answer.status_code == 200
    account = answer.json()
    assert (account["id"], account["username"]) == (rosetta_user.uid, f"rosetta-{rosetta_user.id}")
    schema = openapi.document()["components"]["schemas"]["Account"]
    assert jsonschema_rs.validator_for(schema).is_valid(account)


@pytest.mark.parametrize("username", ["rosetta-7", "ROSETTA-7", "Rosetta-0042"])
def test_sector_sign_up_refuses_a_name_spelt_as_a_rosetta_user(base_url, username):
    answer = _sign_up(base_url, username)
    assert (answer.status_code, answer.json()) == (409, TAKEN)


def test_the_write_refuses_a_rosetta_spelling_too(base_url, rosetta_user):
    # With a client-chosen id the handler leaves the name to the write (domain.writes._username_free).
    answer = _sign_up(base_url, f"rosetta-{rosetta_user.id}", id=str(uuid.uuid4()))
    assert (answer.status_code, answer.json()) == (409, TAKEN)


def test_a_sector_rename_to_a_rosetta_spelling_is_refused(alice):
    answer = alice.api.put(f"/account/{alice.id}", json={"username": "Rosetta-9"})
    assert (answer.status_code, answer.json()) == (409, TAKEN)
    assert alice.api.get(f"/account/{alice.id}").json()["username"] == alice.username


def test_a_name_that_only_starts_like_a_rosetta_user_is_free(base_url, alice):
    fan = Account(base_url, username=unique("rosetta-fan"))
    assert fan.api.get(f"/account/{fan.id}").json()["username"] == fan.username
    for name in (unique("rosetta-fan"), "rosetta-" + unique("7")):
        renamed = alice.api.put(f"/account/{alice.id}", json={"username": name})
        assert (renamed.status_code, renamed.json()["username"]) == (200, name)


def test_account_search_lists_only_accounts_with_a_username_of_their_own(alice, rosetta_user):
    by_id = alice.api.post("/account/search", json={"id": [rosetta_user.uid, alice.id]})
    assert [account["id"] for account in by_id.json()] == [alice.id]
    by_name = alice.api.post("/account/search", json={"username": f"rosetta-{rosetta_user.id}"})
    assert by_name.json() == []
