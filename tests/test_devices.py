"""RosettaChat push devices: registering and refreshing by token, moving a token between accounts,
the install's `device_id` retiring an old token, the per-user cap, the owner-only delete, and the
caller's list with its filter, sorts and pages. The raw token is never shown and never stored.

Delivering notifications to the devices is tests/test_push.py's.
"""

from __future__ import annotations

import hmac
import hashlib
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from ulid import ULID

from tests.rosetta import AppUser

DEVICE_FIELDS = {"id", "platform", "provider", "device_name", "device_id", "app_version", "last_used_at",
                 "created_at"}


def apns_token() -> str:
    return secrets.token_hex(32)


def fcm_token() -> str:
    return "f" + secrets.token_urlsafe(100)


def expo_token() -> str:
    return f"ExponentPushToken[{secrets.token_urlsafe(16)}]"


def register(user: AppUser, token: str | None = None, **fields) -> dict:
    body = {"platform": "android", "provider": "fcm", "push_token": token or fcm_token(), **fields}
    answer = user.api.post("/devices", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def my_devices(user: AppUser, **params) -> dict:
    answer = user.api.get("/me/devices", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def ids(listing: dict) -> list[str]:
    return [device["id"] for device in listing["data"]]


def test_a_device_is_registered_with_the_specs_shape_and_never_shows_its_token(app_user):
    token = apns_token()
    answer = app_user.api.post("/devices", json={"platform": "ios", "provider": "apns", "push_token": token,
                                                 "device_id": "7B3F2A10-AAAA", "device_name": "John's iPhone",
                                                 "app_version": "1.4.2"})
    assert answer.status_code == 201, answer.text
    device = answer.json()["data"]
    assert set(device) == DEVICE_FIELDS
    assert (device["platform"], device["provider"], device["device_name"], device["device_id"],
            device["app_version"]) == ("ios", "apns", "John's iPhone", "7B3F2A10-AAAA", "1.4.2")
    assert ULID.from_str(device["id"].upper())
    assert token not in answer.text
    listing = app_user.api.get("/me/devices")
    assert [d["id"] for d in listing.json()["data"]] == [device["id"]]
    assert token not in listing.text


def test_the_token_is_stored_sealed_and_found_by_its_keyed_hash(app_user, stack, database):
    token = fcm_token()
    device = register(app_user, token)
    row = database.Device.get_by_id(ULID.from_str(device["id"].upper()).to_uuid())
    assert token not in row.token_sealed and token not in row.token_hash
    assert row.token_hash != hashlib.sha256(token.encode()).hexdigest()  # keyed, not a bare digest
    key = bytes.fromhex((stack.data_dir / "secret.key").read_text().strip())
    purpose_key = hmac.new(key, b"sector:push-token", hashlib.sha256).digest()
    assert row.token_hash == hmac.new(purpose_key, token.encode(), hashlib.sha256).hexdigest()


def test_sending_a_token_again_refreshes_the_same_device_and_keeps_what_was_not_sent(app_user):
    token = fcm_token()
    first = register(app_user, token, device_name="Pixel", app_version="1.0.0")
    time.sleep(0.01)
    again = register(app_user, token, app_version="1.1.0")
    assert again["id"] == first["id"]
    assert again["last_used_at"] > first["last_used_at"]
    assert (again["device_name"], again["app_version"], again["created_at"]) == ("Pixel", "1.1.0", first["created_at"])
    assert ids(my_devices(app_user)) == [first["id"]]


def test_registrations_of_one_token_at_once_make_one_device(app_user):
    token = fcm_token()
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda n: app_user.api.post("/devices", json={
            "platform": "android", "provider": "fcm", "push_token": token, "device_name": f"Pixel {n}"}), range(10)))
    assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers if a.status_code != 201]
    assert len({a.json()["data"]["id"] for a in answers}) == 1
    listing = my_devices(app_user)
    assert ids(listing) == [answers[0].json()["data"]["id"]] and listing["meta"]["total"] == 1


def test_a_token_sent_from_another_account_moves_there_without_the_old_owners_labels(rosetta_url):
    first_owner, second_owner = AppUser(rosetta_url), AppUser(rosetta_url)
    token = expo_token()
    device = register(first_owner, token, platform="ios", provider="expo", device_name="Old phone")
    moved = register(second_owner, token, platform="ios", provider="expo")
    assert moved["id"] == device["id"]
    assert moved["device_name"] is None
    assert my_devices(first_owner)["data"] == []
    assert ids(my_devices(second_owner)) == [device["id"]]
    assert first_owner.api.delete(f"/devices/{device['id']}").status_code == 404


def test_a_new_token_of_the_same_install_retires_the_old_one(app_user):
    old = register(app_user, device_id="install-1")
    other_install = register(app_user, device_id="install-2")
    other_gateway = register(app_user, expo_token(), provider="expo", device_id="install-1")
    new = register(app_user, device_id="install-1")
    assert new["id"] != old["id"]
    assert set(ids(my_devices(app_user))) == {new["id"], other_install["id"], other_gateway["id"]}


def test_a_user_keeps_the_most_recently_used_devices_up_to_the_cap(app_user, stack):
    cap = stack.settings.push.max_devices_per_user
    first = register(app_user)
    devices = [register(app_user) for _ in range(cap)]
    listing = my_devices(app_user, per_page=100)
    assert listing["meta"]["total"] == cap
    assert first["id"] not in ids(listing)
    assert set(ids(listing)) == {d["id"] for d in devices}


def test_bad_registrations_are_refused_by_field(app_user):
    cases = [
        ({"platform": "windows", "provider": "fcm", "push_token": fcm_token()}, "platform"),
        ({"platform": "ios", "provider": "wns", "push_token": fcm_token()}, "provider"),
        ({"platform": "ios", "provider": "apns"}, "push_token"),
        ({"platform": "ios", "provider": "apns", "push_token": "not hex at all"}, "push_token"),
        ({"platform": "ios", "provider": "apns", "push_token": "ab" * 8}, "push_token"),
        ({"platform": "android", "provider": "apns", "push_token": apns_token()}, "provider"),
        ({"platform": "web", "provider": "expo", "push_token": expo_token()}, "provider"),
        ({"platform": "ios", "provider": "expo", "push_token": "ExpoPushToken"}, "push_token"),
        ({"platform": "android", "provider": "fcm", "push_token": "has spaces in it"}, "push_token"),
        ({"platform": "android", "provider": "fcm", "push_token": "x" * 4097}, "push_token"),
        ({"platform": "android", "provider": "fcm", "push_token": fcm_token(), "device_name": "n" * 256},
         "device_name"),
        ({"platform": "android", "provider": "fcm", "push_token": 42}, "push_token"),
    ]
    for body, field in cases:
        answer = app_user.api.post("/devices", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.json()["errors"], (body, answer.json())
    assert my_devices(app_user)["data"] == []


def test_only_the_owner_deletes_a_device(rosetta_url):
    owner, other = AppUser(rosetta_url), AppUser(rosetta_url)
    device = register(owner)
    assert other.api.delete(f"/devices/{device['id']}").status_code == 404
    assert owner.api.delete(f"/devices/{str(ULID()).lower()}").status_code == 404
    assert owner.api.delete("/devices/not-an-id").status_code == 404
    assert ids(my_devices(owner)) == [device["id"]]
    answer = owner.api.delete(f"/devices/{device['id']}")
    assert answer.status_code == 204 and answer.content == b""
    assert my_devices(owner)["data"] == []
    assert owner.api.delete(f"/devices/{device['id']}").status_code == 404


def test_the_list_filters_by_provider_sorts_and_pages(app_user):
    tokens = [(fcm_token(), {}), (apns_token(), {"platform": "ios", "provider": "apns"}),
              (expo_token(), {"platform": "ios", "provider": "expo"}), (fcm_token(), {}), (fcm_token(), {})]
    made = []
    for token, fields in tokens:
        made.append(register(app_user, token, **fields))
        time.sleep(0.01)
    token, fields = tokens[1]
    assert register(app_user, token, **fields)["id"] == made[1]["id"]  # used again: last_used_at moves, not created_at
    by_creation = [d["id"] for d in made]
    by_use = [made[i]["id"] for i in (0, 2, 3, 4, 1)]
    assert ids(my_devices(app_user)) == by_use[::-1]
    assert ids(my_devices(app_user, sort="-last_used_at")) == by_use[::-1]
    assert ids(my_devices(app_user, sort="last_used_at")) == by_use
    assert ids(my_devices(app_user, sort="created_at")) == by_creation
    assert ids(my_devices(app_user, sort="-created_at")) == by_creation[::-1]
    assert ids(my_devices(app_user, provider="apns")) == [made[1]["id"]]
    page = my_devices(app_user, per_page=2, page=2, provider="fcm")
    assert ids(page) == [made[0]["id"]]
    assert page["meta"]["total"] == 3 and page["meta"]["current_page"] == 2 and page["meta"]["last_page"] == 2
    assert "provider=fcm" in page["links"]["first"] and page["links"]["next"] is None
    for params in ({"provider": "wns"}, {"sort": "name"}, {"per_page": 0}, {"per_page": 101}, {"page": "x"}):
        answer = app_user.api.get("/me/devices", params=params)
        assert answer.status_code == 422, (params, answer.text)


def test_devices_need_a_signed_in_caller_with_a_full_token(app_user):
    anonymous = app_user.anonymous
    assert anonymous.post("/devices", json={"platform": "ios", "provider": "apns",
                                            "push_token": apns_token()}).status_code == 401
    assert anonymous.get("/me/devices").status_code == 401
    narrow = app_user.api.post("/me/tokens", json={"name": "rooms", "abilities": ["temporary-rooms:create"]})
    assert narrow.status_code == 201, narrow.text
    client = app_user.with_token(narrow.json()["data"]["token"])
    assert client.get("/me/devices").status_code == 403
