"""Messages: members post and read; only the author edits the body; deletes by author or owner."""

import uuid


def test_a_member_posts_a_message_with_the_spec_shape(alice, bob):
    channel = alice.channel(alice.group(members=[bob]))
    response = bob.post(channel, "hello", pinned=True)
    assert response.status_code == 201
    message = response.json()
    assert set(message) == {"author", "body", "channel", "created_at", "id", "pinned"}
    assert (message["author"], message["body"], message["channel"], message["pinned"]) == (bob.id, "hello", channel["id"], True)


def test_messages_in_every_script_round_trip(alice):
    channel = alice.channel(alice.group())
    for text in ("สวัสดี", "こんにちは世界", "你好", "Halo 👋", "Ünïcödé"):
        posted = alice.post(channel, text).json()
        assert posted["body"] == text


def test_outsiders_cannot_post_or_read(alice, outsider):
    channel = alice.channel(alice.group())
    message = alice.post(channel).json()
    url = f"/group/{channel['group']}/channel/{channel['id']}/message"
    assert outsider.api.post(url, json={"body": "intrusion"}).status_code == 404
    assert outsider.api.get(f"{url}/{message['id']}").status_code == 404
    assert outsider.api.put(f"{url}/{message['id']}", json={"pinned": True}).status_code == 404
    assert outsider.api.delete(f"{url}/{message['id']}").status_code == 404


def test_nobody_posts_as_someone_else(alice, bob):
    channel = alice.channel(alice.group(members=[bob]))
    assert bob.post(channel, "forged", author=alice.id).status_code == 403
    assert bob.post(channel, "honest", author=bob.id).status_code == 201


def test_only_the_author_edits_the_body_but_any_member_pins(alice, bob):
    channel = alice.channel(alice.group(members=[bob]))
    message = bob.post(channel, "original").json()
    url = f"/group/{channel['group']}/channel/{channel['id']}/message/{message['id']}"
    assert alice.api.put(url, json={"body": "rewritten by owner"}).status_code == 403
    pinned = alice.api.put(url, json={"pinned": True})
    assert pinned.status_code == 201 and pinned.json()["pinned"] is True
    edited = bob.api.put(url, json={"body": "edited"})
    assert edited.status_code == 201
    assert edited.json()["body"] == "edited" and edited.json()["pinned"] is True


def test_the_author_or_the_owner_deletes_and_other_members_cannot(alice, bob, make_account):
    carol = make_account()
    channel = alice.channel(alice.group(members=[bob, carol]))
    url = f"/group/{channel['group']}/channel/{channel['id']}/message"
    first, second = bob.post(channel, "one").json(), bob.post(channel, "two").json()
    assert carol.api.delete(f"{url}/{first['id']}").status_code == 403
    assert bob.api.delete(f"{url}/{first['id']}").status_code == 204
    assert alice.api.delete(f"{url}/{second['id']}").status_code == 204
    assert bob.api.get(f"{url}/{first['id']}").status_code == 404


def test_a_message_body_naming_another_channel_is_refused(alice):
    channel = alice.channel(alice.group())
    response = alice.post(channel, "x", channel=str(uuid.uuid4()))
    assert response.status_code == 422


def test_message_search_combines_every_filter_within_what_the_caller_sees(alice, bob, outsider):
    channel = alice.channel(alice.group(members=[bob]))
    other = alice.channel(alice.group())
    tag = uuid.uuid4().hex[:8]
    a1 = alice.post(channel, f"Alpha {tag} one").json()
    b1 = bob.post(channel, f"alpha {tag} two", pinned=True).json()
    alice.post(other, f"ALPHA {tag} elsewhere")
    hidden = outsider.post(outsider.channel(outsider.group()), f"alpha {tag} hidden").json()

    def ids(caller, **filters):
        response = caller.api.post("/message/search", json={"body": tag, **filters})
        assert response.status_code == 200
        return [m["id"] for m in response.json()]

    assert len(ids(alice)) == 3 and hidden["id"] not in ids(alice)
    assert ids(bob) == [a1["id"], b1["id"]]
    assert ids(alice, channel=[channel["id"]]) == [a1["id"], b1["id"]]
    assert ids(alice, author=[bob.id]) == [b1["id"]]
    assert ids(alice, pinned=True) == [b1["id"]]
    assert ids(alice, id=[a1["id"]]) == [a1["id"]]
    assert ids(alice, **{"from": b1["created_at"]})[0] == b1["id"]
    assert ids(alice, until=a1["created_at"]) == [a1["id"]]
    assert ids(outsider) == [hidden["id"]]


def test_message_search_matches_case_insensitively_beyond_ascii(alice):
    channel = alice.channel(alice.group())
    posted = alice.post(channel, f"ÜBER {uuid.uuid4().hex[:6]}").json()
    found = alice.api.post("/message/search", json={"body": "über", "id": [posted["id"]]}).json()
    assert [m["id"] for m in found] == [posted["id"]]


def test_message_search_treats_like_wildcards_literally(alice):
    channel = alice.channel(alice.group())
    tag = uuid.uuid4().hex[:8]
    literal = alice.post(channel, f"100% {tag}").json()
    alice.post(channel, f"100 {tag} percent")
    found = alice.api.post("/message/search", json={"body": f"100% {tag}"}).json()
    assert [m["id"] for m in found] == [literal["id"]]
