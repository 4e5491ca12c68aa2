def test_a_new_account_can_post_a_message_and_read_it_back(alice):
    channel = alice.channel(alice.group())
    posted = alice.post(channel, "hello world")
    assert posted.status_code == 201
    message = posted.json()
    read = alice.api.get(f"/group/{channel['group']}/channel/{channel['id']}/message/{message['id']}")
    assert read.json() == message
