"""Bad input gets a 4xx in Sector's JSON error shape, never a 500 or a stack trace."""

import pytest


def assert_error(response, status, field=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "errors"}
    assert "Traceback" not in response.text
    if field:
        assert field in body["errors"], body


def test_malformed_json_is_400(alice):
    assert_error(alice.api.post("/group/", content=b'{"name": '), 400)


def test_a_missing_body_is_400(alice):
    assert_error(alice.api.post("/group/"), 400)


@pytest.mark.parametrize("body, field", [
    ({"name": 5}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "ok", "members": ["not-a-uuid"]}, "members"),
    ({"name": "ok", "members": "also not a list"}, "members"),
    ([1, 2, 3], "body"),
])
def test_wrong_types_and_empty_names_are_422_naming_the_field(alice, body, field):
    assert_error(alice.api.post("/group/", json=body), 422, field)


def test_a_message_over_the_configured_size_is_422(alice, stack):
    channel = alice.channel(alice.group())
    too_long = "x" * (stack.settings.limits.message_chars + 1)
    assert_error(alice.post(channel, too_long), 422, "body")


def test_a_request_body_over_the_configured_size_is_413(alice, stack):
    channel = alice.channel(alice.group())
    assert_error(alice.post(channel, "x" * (stack.settings.http.max_body_bytes + 10)), 413)


def test_a_malformed_uuid_in_the_path_is_422(alice):
    assert_error(alice.api.get("/group/not-a-uuid"), 422, "groupId")
    assert_error(alice.api.get("/account/1234"), 422, "id")


def test_a_malformed_filter_is_422(alice):
    assert_error(alice.api.post("/message/search", json={"from": "yesterday"}), 422, "from")
    assert_error(alice.api.post("/message/search", json={"limit": 0}), 422, "limit")
    assert_error(alice.api.post("/message/search", json={"cursor": "!!!"}), 422, "cursor")


def test_unknown_paths_and_methods_answer_in_the_same_shape(alice):
    assert_error(alice.api.get("/no-such-thing"), 404)
    response = alice.api.patch("/group/")
    assert_error(response, 405)


def test_root_index_and_health_are_open(base_url):
    import httpx

    root = httpx.get(f"{base_url}/")
    assert root.status_code == 200 and root.json()["openapi"] == "/v1/swagger.json"
    health = httpx.get(f"{base_url}/health")
    assert health.status_code == 200 and health.headers["content-type"].startswith("text/plain")


def test_json_nested_deeper_than_the_decoder_goes_is_a_400(alice):
    answer = alice.api.post("/group/", content=b'{"a":' * 5000 + b"1" + b"}" * 5000)
    assert answer.status_code == 400 and answer.json()["error"] == "bad_request"
