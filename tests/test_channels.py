"""Channels: members create and read; the owner or the channel's creator updates; the owner deletes."""

import uuid


def test_a_member_creates_a_channel_with_the_spec_shape(alice, bob):
    group = alice.group(members=[bob])
    response = bob.api.post(f"/group/{group['id']}/channel/", json={"name": "Main", "description": "General"})
    assert response.status_code == 201
    channel = response.json()
    assert set(channel) == {"created_at", "description", "group", "id", "name"}
    assert channel["group"] == group["id"] and channel["description"] == "General"
    assert alice.api.get(f"/group/{group['id']}/channel/{channel['id']}").json() == channel


def test_outsiders_neither_create_nor_read_channels(alice, outsider):
    group = alice.group()
    channel = alice.channel(group)
    assert outsider.api.post(f"/group/{group['id']}/channel/", json={"name": "x"}).status_code == 404
    assert outsider.api.get(f"/group/{group['id']}/channel/{channel['id']}").status_code == 404
    assert outsider.api.put(f"/group/{group['id']}/channel/{channel['id']}", json={"name": "x"}).status_code == 404


def test_a_channel_is_read_only_through_its_own_group(alice):
    one, two = alice.group(), alice.group()
    channel = alice.channel(one)
    assert alice.api.get(f"/group/{two['id']}/channel/{channel['id']}").status_code == 404


def test_the_channel_creator_and_the_owner_update_it_with_201(alice, bob, make_account):
    carol = make_account()
    group = alice.group(members=[bob, carol])
    channel = bob.channel(group)
    url = f"/group/{group['id']}/channel/{channel['id']}"
    assert bob.api.put(url, json={"name": "By creator"}).status_code == 201
    response = alice.api.put(url, json={"description": "By owner"})
    assert response.status_code == 201
    assert response.json()["name"] == "By creator" and response.json()["description"] == "By owner"
    assert carol.api.put(url, json={"name": "Nope"}).status_code == 403


def test_only_the_owner_deletes_a_channel(alice, bob):
    group = alice.group(members=[bob])
    channel = bob.channel(group)
    url = f"/group/{group['id']}/channel/{channel['id']}"
    assert bob.api.delete(url).status_code == 403
    assert alice.api.delete(url).status_code == 204
    assert alice.api.get(url).status_code == 404


def test_a_channel_body_naming_another_group_is_refused(alice):
    group = alice.group()
    response = alice.api.post(f"/group/{group['id']}/channel/", json={"name": "x", "group": str(uuid.uuid4())})
    assert response.status_code == 422
    assert "group" in response.json()["errors"]


def test_channel_search_filters_by_group_and_name_within_what_the_caller_sees(alice, bob, outsider):
    group = alice.group(members=[bob])
    wanted = alice.channel(group, "Random chatter")
    alice.channel(group, "Announcements")
    outsider.channel(outsider.group(), "Random too")
    found = bob.api.post("/channel/search", json={"name": "random"}).json()
    assert [c["id"] for c in found] == [wanted["id"]]
    in_group = bob.api.post("/channel/search", json={"group": [group["id"]]}).json()
    assert len(in_group) == 2
