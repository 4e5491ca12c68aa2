"""Groups: visible only to members; the creator owns updates, deletion and membership."""

import uuid


def test_a_group_is_created_with_its_owner_and_members(alice, bob):
    group = alice.group("Testing Group", members=[bob])
    assert set(group) == {"created_at", "description", "id", "members", "name"}
    assert group["members"] == [alice.id, bob.id]
    assert group["name"] == "Testing Group" and group["description"] == "test"


def test_members_read_the_group_and_outsiders_are_told_it_does_not_exist(alice, bob, outsider):
    group = alice.group(members=[bob])
    assert bob.api.get(f"/group/{group['id']}").json() == group
    response = outsider.api.get(f"/group/{group['id']}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_group_with_an_unknown_member_is_refused(alice):
    response = alice.api.post("/group/", json={"name": "G", "description": "", "members": [str(uuid.uuid4())]})
    assert response.status_code == 422
    assert "members" in response.json()["errors"]


def test_the_owner_updates_the_group_and_the_spec_answers_201(alice, bob):
    group = alice.group(members=[bob])
    response = alice.api.put(f"/group/{group['id']}", json={"name": "Renamed", "description": "new"})
    assert response.status_code == 201
    assert response.json()["name"] == "Renamed" and response.json()["description"] == "new"
    assert response.json()["members"] == group["members"]


def test_a_member_who_is_not_the_owner_cannot_update_or_delete(alice, bob):
    group = alice.group(members=[bob])
    assert bob.api.put(f"/group/{group['id']}", json={"name": "Mine"}).status_code == 403
    assert bob.api.delete(f"/group/{group['id']}").status_code == 403
    assert alice.api.get(f"/group/{group['id']}").json()["name"] == group["name"]


def test_outsiders_cannot_change_a_group(alice, outsider):
    group = alice.group()
    assert outsider.api.put(f"/group/{group['id']}", json={"name": "x"}).status_code == 404
    assert outsider.api.delete(f"/group/{group['id']}").status_code == 404
    assert outsider.api.post(f"/group/{group['id']}/members/{outsider.id}").status_code == 404


def test_deleting_a_group_removes_its_channels_and_messages(alice):
    group = alice.group()
    channel = alice.channel(group)
    message = alice.post(channel).json()
    assert alice.api.delete(f"/group/{group['id']}").status_code == 204
    assert alice.api.get(f"/group/{group['id']}").status_code == 404
    assert alice.api.post("/message/search", json={"id": [message["id"]]}).json() == []
    assert alice.api.post("/channel/search", json={"id": [channel["id"]]}).json() == []


def test_the_owner_adds_and_removes_members(alice, bob):
    group = alice.group()
    added = alice.api.post(f"/group/{group['id']}/members/{bob.id}")
    assert added.status_code == 200
    assert added.json()["members"] == [alice.id, bob.id]
    assert bob.api.get(f"/group/{group['id']}").status_code == 200
    assert alice.api.delete(f"/group/{group['id']}/members/{bob.id}").status_code == 204
    assert bob.api.get(f"/group/{group['id']}").status_code == 404


def test_adding_a_member_twice_changes_nothing(alice, bob):
    group = alice.group(members=[bob])
    again = alice.api.post(f"/group/{group['id']}/members/{bob.id}")
    assert again.status_code == 200
    assert again.json()["members"] == [alice.id, bob.id]


def test_a_member_cannot_add_or_remove_others_but_may_leave(alice, bob, make_account):
    carol = make_account()
    group = alice.group(members=[bob, carol])
    assert bob.api.post(f"/group/{group['id']}/members/{bob.id}").status_code == 403
    assert bob.api.delete(f"/group/{group['id']}/members/{carol.id}").status_code == 403
    assert bob.api.delete(f"/group/{group['id']}/members/{bob.id}").status_code == 204
    assert alice.api.get(f"/group/{group['id']}").json()["members"] == [alice.id, carol.id]


def test_the_owner_cannot_leave_their_own_group(alice):
    group = alice.group()
    assert alice.api.delete(f"/group/{group['id']}/members/{alice.id}").status_code == 409


def test_adding_an_unknown_account_is_404(alice):
    group = alice.group()
    assert alice.api.post(f"/group/{group['id']}/members/{uuid.uuid4()}").status_code == 404


def test_group_search_sees_only_the_callers_groups(alice, bob, outsider):
    mine = alice.group("Searchable alpha", members=[bob])
    alice.group("Searchable beta")
    outsider.group("Searchable alpha too")
    found = bob.api.post("/group/search", json={"name": "SEARCHABLE"}).json()
    assert [g["id"] for g in found] == [mine["id"]]


def test_group_search_by_members_needs_every_listed_member(alice, bob, make_account):
    carol = make_account()
    both = alice.group(members=[bob, carol])
    alice.group(members=[bob])
    found = alice.api.post("/group/search", json={"members": [bob.id, carol.id]}).json()
    assert [g["id"] for g in found] == [both["id"]]
