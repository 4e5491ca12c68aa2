"""RosettaChat files: streamed uploads (size limit, sniffed type, client name as data), downloads (ETag,
Range, Content-Disposition), access, the uploader's list, message attachments in channels, direct
conversations and automation posts, deleting a file, and the expiry of staged files by the scheduler.

Most tests use the session stack; a second stack with a 1 MiB limit and a 2 s TTL (and, for one test,
a scheduler) serves the size limit and the expiry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import re
import socket
import struct
import subprocess
import textwrap
import threading
import time
import uuid
import zlib
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from ulid import ULID

import config
from tests import chat
from tests.api import unique
from tests.rosetta import AppUser
from tests.stack import Stack, run_python, send_commands, wait_for

SMALL_LIMIT = 1024 * 1024
STAGED_TTL_S = 2
ON_POSTGRES = os.environ.get("SECTOR_DATABASE_URL", "").startswith("postgres")
FILE_FIELDS = {"id", "client_name", "size", "mime_type", "visibility", "sha256", "meta", "claimed", "expires_at",
               "created_at", "download_url"}
ATTACHMENT_FIELDS = {"id", "file_id", "client_name", "mime_type", "size", "download_url"}


def as_uuid(ulid: str) -> uuid.UUID:
    return ULID.from_str(ulid.upper()).to_uuid()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png() -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def upload(user: AppUser | httpx.Client, data: bytes, name: str = "file.bin", content_type: str | None = None,
           **fields) -> httpx.Response:
    client = user.api if isinstance(user, AppUser) else user
    part = (name, data) if content_type is None else (name, data, content_type)
    return client.post("/files", files={"file": part}, data=fields or None)


def staged(user: AppUser, data: bytes | None = None, name: str = "file.bin", **fields) -> dict:
    """A file the user uploaded, as the API answered it."""
    answer = upload(user, os.urandom(64) if data is None else data, name, **fields)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def refused_on(answer: httpx.Response, field: str) -> bool:
    return answer.status_code == 422 and field in answer.json().get("errors", {})


def metadata(user: AppUser, file_id: str) -> httpx.Response:
    return user.api.get(f"/files/{file_id}")


def multipart(boundary: str, name: str = "data.bin", prefix: bytes = b"") -> tuple[bytes, bytes]:
    """The opening (after any `prefix` parts) and the closing of a hand-built body with one `file` part."""
    head = prefix + (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def stored_paths(data_dir: Path) -> set[Path]:
    return {p for p in (Path(data_dir) / "files").rglob("*") if p.is_file()}


def store_path(data_dir: Path, key: str) -> Path:
    return Path(data_dir) / "files" / key[:2] / key[2:4] / key


# The world of the session stack

@pytest.fixture(scope="module")
def team(rosetta_url):
    """A private workspace: an owner, a member who is also in its private channel, a bystander (a member
    not let into the private channel), and a stranger outside it; a public and a private channel."""
    owner, member = AppUser(rosetta_url, name="Owner"), AppUser(rosetta_url, name="Member")
    bystander, stranger = AppUser(rosetta_url, name="Bystander"), AppUser(rosetta_url, name="Stranger")
    ws = chat.workspace(owner, "Files")
    chat.join(member, ws, by=owner)
    chat.join(bystander, ws, by=owner)
    general = chat.channel(owner, ws, "general")
    secret = chat.channel(owner, ws, "secret", visibility="private")
    added = owner.api.post(f"/workspaces/{ws['id']}/channels/{secret['id']}/members", json={"user_id": member.id})
    assert added.status_code in (200, 201), added.text
    return SimpleNamespace(owner=owner, member=member, bystander=bystander, stranger=stranger, ws=ws,
                           general=general, secret=secret)


def post_with(user, ws: dict, ch: dict, file_ids: list[str], content: str | None = "see attached",
              **fields) -> httpx.Response:
    body = {"attachment_ids": file_ids, **fields} | ({"content": content} if content is not None else {})
    client = user.api if isinstance(user, AppUser) else user
    return client.post(chat.messages_path(ws, ch), json=body)


def attached(user, ws: dict, ch: dict, file_ids: list[str], **kwargs) -> dict:
    answer = post_with(user, ws, ch, file_ids, **kwargs)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


# Upload and download

def test_binary_files_round_trip_with_their_sha256_and_size(app_user):
    for size in (300_000, 3 * 1024 * 1024 + 7, 0):
        data = os.urandom(size)
        file = staged(app_user, data, "blob.bin")
        assert set(file) == FILE_FIELDS
        assert (file["size"], file["sha256"], file["claimed"], file["visibility"], file["meta"]) == (
            size, sha(data), False, "private", None)
        assert file["download_url"] == f"/api/v1/files/{file['id']}/download"
        assert file["expires_at"] > file["created_at"] and file["created_at"].endswith("Z")
        assert metadata(app_user, file["id"]).json()["data"] == file
        got = app_user.api.get(f"/files/{file['id']}/download")
        assert got.status_code == 200
        assert (len(got.content), sha(got.content), got.headers["content-length"]) == (size, sha(data), str(size))
        assert got.headers["etag"] == f'"{sha(data)}"' and got.headers["accept-ranges"] == "bytes"


def test_the_client_name_is_kept_only_as_data_and_the_stored_name_is_random(app_user, stack, database):
    data = os.urandom(4096)
    before = stored_paths(stack.data_dir)
    file = staged(app_user, data, "../../etc/ph\u00f6to.png")
    assert file["client_name"] == "ph\u00f6to.png"
    assert staged(app_user, b"x", "C:\\Users\\me\\report.txt")["client_name"] == "report.txt"
    assert staged(app_user, b"x", "..")["client_name"] == "file"
    new = [p for p in stored_paths(stack.data_dir) - before if p.read_bytes() == data]
    assert len(new) == 1
    key = database.File.get_by_id(as_uuid(file["id"])).storage_key
    assert new[0] == store_path(stack.data_dir, key)
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    store = Path(stack.data_dir) / "files"
    assert all(re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}", str(p.relative_to(store)))
               for p in stored_paths(stack.data_dir))


def test_a_second_file_part_is_ignored(app_user):
    boundary = "b0undary"
    first, _ = multipart(boundary, "one.txt")
    second, end = multipart(boundary, "two.txt")
    body = first + b"first file" + b"\r\n" + second + b"second file" + end
    answer = app_user.api.post("/files", content=body,
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 201, answer.text
    file = answer.json()["data"]
    assert (file["client_name"], file["sha256"]) == ("one.txt", sha(b"first file"))


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
SNIFFED = [
    # (client name, client type, bytes, sniffed type, disposition)
    ("a.png", "text/html", png(), "image/png", "inline"),
    ("x.png", "image/png", b"<!doctype html><html><script>alert(1)</script></html>", "text/html", "attachment"),
    ("y.jpg", "image/jpeg", b"\xef\xbb\xbf\r\n  <HTML><body>hi</body></HTML>", "text/html", "attachment"),
    ("z.png", "image/png", SVG, "image/svg+xml", "attachment"),
    ("bare.svg", None, b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "image/svg+xml", "attachment"),
    ("notes.bin", "application/octet-stream", "h\u00e9llo w\u00f6rld \u2713\n".encode(), "text/plain", "inline"),
    ("cut.txt", None, b"a" * 8191 + "\u00e9".encode() + b"tail", "text/plain", "inline"),
    ("data.txt", "text/plain", random.Random(1).randbytes(2048), "application/octet-stream", "attachment"),
    ("nul.txt", "text/plain", b"text with a \x00 in it", "application/octet-stream", "attachment"),
]


@pytest.mark.parametrize("name, client_type, data, mime_type, kind", SNIFFED, ids=[case[0] for case in SNIFFED])
def test_the_type_is_sniffed_from_the_bytes_never_taken_from_the_client(app_user, name, client_type, data,
                                                                        mime_type, kind):
    answer = upload(app_user, data, name, client_type)
    assert answer.status_code == 201, answer.text
    file = answer.json()["data"]
    assert file["mime_type"] == mime_type
    got = app_user.api.get(f"/files/{file['id']}/download")
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"].split(";")[0] == mime_type
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].split(";")[0] == kind


def test_content_disposition_carries_the_real_name_and_an_ascii_fallback(app_user):
    name = "r\u00e9sum\u00e9 \u65e5\u672c.txt"
    file = staged(app_user, b"plain words", name)
    header = app_user.api.get(f"/files/{file['id']}/download").headers["content-disposition"]
    fallback = re.search(r'filename="([^"]*)"', header).group(1)
    encoded = re.search(r"filename\*=UTF-8''([^;\s]+)", header).group(1)
    assert unquote(encoded, encoding="utf-8") == name
    assert fallback.isascii() and len(fallback) == len(name) and fallback.endswith(".txt")
    assert fallback == "r_sum_ __.txt"


# Ranges and conditional requests

@pytest.fixture(scope="module")
def hundred(rosetta_url):
    """A user and a 100-byte file of theirs."""
    user = AppUser(rosetta_url)
    data = random.Random(2).randbytes(100)
    return SimpleNamespace(user=user, data=data, file=staged(user, data, "hundred.bin"))


@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-9", 0, 9), ("bytes=10-", 10, 99), ("bytes=-5", 95, 99), ("bytes=90-5000", 90, 99),
    ("bytes=99-99", 99, 99), ("bytes=-500", 0, 99)])
def test_one_byte_range_is_206_with_its_content_range(hundred, header, start, end):
    got = hundred.user.api.get(hundred.file["download_url"].removeprefix("/api/v1"), headers={"Range": header})
    assert got.status_code == 206, got.text
    assert got.content == hundred.data[start:end + 1]
    assert got.headers["content-range"] == f"bytes {start}-{end}/100"
    assert got.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=100-", "bytes=-0"])
def test_an_unsatisfiable_range_is_416_with_the_size(hundred, header):
    got = hundred.user.api.get(f"/files/{hundred.file['id']}/download", headers={"Range": header})
    assert got.status_code == 416
    assert got.headers["content-range"] == "bytes */100"
    assert got.content == b""


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=abc", "items=0-5", "bytes=", "bytes=-", "0-5"])
def test_a_malformed_or_multiple_range_gets_the_whole_file(hundred, header):
    got = hundred.user.api.get(f"/files/{hundred.file['id']}/download", headers={"Range": header})
    assert got.status_code == 200
    assert got.content == hundred.data and "content-range" not in got.headers


def test_if_none_match_with_the_etag_is_304_without_a_body(hundred):
    path = f"/files/{hundred.file['id']}/download"
    etag = hundred.user.api.get(path).headers["etag"]
    assert etag == f'"{hundred.file["sha256"]}"'
    for tag in (etag, f'W/{etag}', f'"other", {etag}', "*"):
        got = hundred.user.api.get(path, headers={"If-None-Match": tag})
        assert got.status_code == 304, tag
        assert got.content == b"" and got.headers["etag"] == etag
    other = hundred.user.api.get(path, headers={"If-None-Match": '"0000"'})
    assert other.status_code == 200 and other.content == hundred.data


# Fields of an upload

def test_meta_is_a_json_object_kept_with_the_file(app_user):
    meta = {"album": "trip", "n": 3, "tags": ["a", "b"], "nested": {"ok": True}}
    file = staged(app_user, b"x", "m.txt", meta=json.dumps(meta))
    assert file["meta"] == meta
    assert metadata(app_user, file["id"]).json()["data"]["meta"] == meta
    assert staged(app_user, b"x", "m.txt", meta=json.dumps({"k": "v" * 4000}))["meta"] == {"k": "v" * 4000}


@pytest.mark.parametrize("meta", ["[1]", '"x"', "3", "null", "true", "{not json", "{'a': 1}",
                                  json.dumps({"k": "v" * 4096}), json.dumps({"k": "v" * 20_000})])
def test_meta_that_is_not_a_json_object_of_at_most_4_kib_is_refused(app_user, meta):
    assert refused_on(upload(app_user, b"x", "m.txt", meta=meta), "meta")


def test_meta_over_4_kib_of_utf8_is_refused_even_in_fewer_characters(app_user):
    meta = json.dumps({"k": "\u00e9" * 2100}, ensure_ascii=False)
    assert len(meta) < 4096 < len(meta.encode())
    assert refused_on(upload(app_user, b"x", "m.txt", meta=meta), "meta")


def test_visibility_is_public_or_private_and_private_by_default(app_user):
    assert staged(app_user, b"x")["visibility"] == "private"
    assert staged(app_user, b"x", visibility="public")["visibility"] == "public"
    assert staged(app_user, b"x", visibility="private")["visibility"] == "private"
    for bad in ("secret", "PUBLIC", "1"):
        assert refused_on(upload(app_user, b"x", visibility=bad), "visibility"), bad


def test_an_upload_needs_a_multipart_file_part(app_user):
    assert refused_on(app_user.api.post("/files", json={"file": "aGVsbG8="}), "file")
    assert refused_on(app_user.api.post("/files", data={"meta": "{}"}), "file")
    assert refused_on(app_user.api.post("/files", files={"other": ("o.txt", b"o")}), "file")
    assert refused_on(app_user.api.post("/files", content=b"", headers={"Content-Type": "multipart/form-data"}),
                      "file")
    garbage = app_user.api.post("/files", content=b"this is no multipart body at all",
                                headers={"Content-Type": "multipart/form-data; boundary=zzz"})
    assert refused_on(garbage, "file"), garbage.text


def test_a_text_field_named_file_is_not_a_file(app_user):
    assert refused_on(app_user.api.post("/files", files={"other": ("o.txt", b"o")}, data={"file": "text"}), "file")


def test_a_body_cut_off_before_its_closing_boundary_is_refused(app_user):
    boundary = "cUtOfF"
    head, _ = multipart(boundary, "cut.bin")
    answer = app_user.api.post("/files", content=head + os.urandom(5000),
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 422, answer.text


def test_a_retried_upload_with_the_same_idempotency_key_is_one_file(app_user, stack):
    key, data = unique("upload"), os.urandom(500)
    before = stored_paths(stack.data_dir)
    first = app_user.api.post("/files", files={"file": ("same.bin", data)}, headers={"Idempotency-Key": key})
    again = app_user.api.post("/files", files={"file": ("same.bin", data)}, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    assert [p.read_bytes() for p in stored_paths(stack.data_dir) - before] == [data]  # no second copy left behind


def test_an_idempotency_key_reused_for_another_upload_is_refused(app_user):
    key = unique("upload")
    first = app_user.api.post("/files", files={"file": ("a.txt", b"first")}, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    other = app_user.api.post("/files", files={"file": ("b.txt", b"second")}, headers={"Idempotency-Key": key})
    assert refused_on(other, "Idempotency-Key"), other.text


# Who may read a file

def test_a_private_staged_file_is_not_found_for_anyone_else(team):
    file = staged(team.member, b"mine", "mine.txt")
    for other in (team.owner, team.bystander, team.stranger):
        assert metadata(other, file["id"]).status_code == 404
        assert other.api.get(f"/files/{file['id']}/download").status_code == 404
    assert metadata(team.member, file["id"]).status_code == 200


def test_a_public_file_is_readable_by_anyone_signed_in(team, app_user):
    data = os.urandom(1000)
    file = staged(team.member, data, "open.bin", visibility="public")
    assert metadata(app_user, file["id"]).json()["data"] == file
    assert app_user.api.get(f"/files/{file['id']}/download").content == data


def test_files_need_a_signed_in_caller(team, rosetta_url):
    file = staged(team.member, b"x", visibility="public")
    anonymous = httpx.Client(base_url=rosetta_url, timeout=30)
    assert anonymous.post("/files", files={"file": ("a.txt", b"a")}).status_code == 401
    for path in (f"/files/{file['id']}", f"/files/{file['id']}/download", "/me/files"):
        assert anonymous.get(path).status_code == 401, path
    assert anonymous.delete(f"/files/{file['id']}").status_code == 401
    assert anonymous.get(f"/message-attachments/{file['id']}/download").status_code == 401
    assert metadata(team.member, file["id"]).status_code == 200


def test_an_unknown_or_malformed_file_id_is_not_found(app_user):
    for file_id in (str(ULID()).lower(), "not-a-ulid", "0" * 26):
        assert metadata(app_user, file_id).status_code == 404
        assert app_user.api.get(f"/files/{file_id}/download").status_code == 404
        assert app_user.api.delete(f"/files/{file_id}").status_code == 404


# The uploader's list

@pytest.fixture(scope="module")
def library(rosetta_url):
    """A user with four staged files and two claimed ones, and another user with files of their own."""
    user, other = AppUser(rosetta_url, name="Lister"), AppUser(rosetta_url, name="Other Lister")
    ws = chat.workspace(user, "Shelf")
    ch = chat.channel(user, ws, "shelf")
    specs = [("Alpha-Report.pdf", 10, "private"), ("beta.txt", 40, "public"),
             ("GAMMA-report.txt", 20, "private"), ("ph\u00f6to.png", 30, "public")]
    staged_files = [staged(user, os.urandom(size), name, visibility=vis) for name, size, vis in specs]
    claimed = [staged(user, os.urandom(5), "kept-one.bin"), staged(user, os.urandom(7), "kept-two.bin",
                                                                    visibility="public")]
    for file in claimed:
        attached(user, ws, ch, [file["id"]])
    others = [staged(other, b"x", "Alpha-Report.pdf"), staged(other, b"yy", "beta.txt", visibility="public")]
    other_ws = chat.workspace(other, "Other shelf")
    attached(other, other_ws, chat.channel(other, other_ws, "c"), [others[0]["id"]])
    return SimpleNamespace(user=user, other=other, staged=staged_files, claimed=claimed, others=others)


def listed(user: AppUser, **params) -> dict:
    answer = user.api.get("/me/files", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def names(page: dict) -> list[str]:
    return [f["client_name"] for f in page["data"]]


def test_me_files_lists_claimed_files_by_default_newest_first(library):
    page = listed(library.user)
    assert [f["id"] for f in page["data"]] == [f["id"] for f in library.claimed[::-1]]
    assert all(f["claimed"] and f["expires_at"] is None for f in page["data"])
    for value in ("true", "1"):
        assert listed(library.user, claimed=value)["data"] == page["data"]


def test_claimed_false_lists_the_staged_files(library):
    page = listed(library.user, claimed="false")
    assert [f["id"] for f in page["data"]] == [f["id"] for f in library.staged[::-1]]
    assert all(not f["claimed"] and f["expires_at"] for f in page["data"])
    assert listed(library.user, claimed="0")["data"] == page["data"]


def test_me_files_filters_by_visibility(library):
    assert names(listed(library.user, claimed="false", visibility="public")) == ["ph\u00f6to.png", "beta.txt"]
    assert names(listed(library.user, claimed="false", visibility="private")) == ["GAMMA-report.txt",
                                                                                  "Alpha-Report.pdf"]
    assert names(listed(library.user, visibility="public")) == ["kept-two.bin"]


def test_q_is_a_case_insensitive_substring_of_the_client_name(library):
    assert names(listed(library.user, claimed="false", q="report")) == ["GAMMA-report.txt", "Alpha-Report.pdf"]
    assert names(listed(library.user, claimed="false", q="ALPHA")) == ["Alpha-Report.pdf"]
    assert names(listed(library.user, claimed="false", q="PH\u00d6TO")) == ["ph\u00f6to.png"]
    assert names(listed(library.user, claimed="false", q=".TXT", visibility="public")) == ["beta.txt"]
    assert names(listed(library.user, claimed="false", q="nothing-like-it")) == []
    assert names(listed(library.user, q="kept")) == ["kept-two.bin", "kept-one.bin"]


def test_q_matches_percent_and_underscore_literally(rosetta_url):
    user = AppUser(rosetta_url)
    for name in ("rate_100%.txt", "rateX100Y.txt"):
        staged(user, b"x", name)
    assert names(listed(user, claimed="false", q="_100%")) == ["rate_100%.txt"]


@pytest.mark.parametrize("sort, key, reverse", [("created_at", "created_at", False),
                                                ("-created_at", "created_at", True),
                                                ("size", "size", False), ("-size", "size", True)])
def test_every_sort_orders_the_list(library, sort, key, reverse):
    page = listed(library.user, claimed="false", sort=sort)
    expected = sorted(library.staged, key=lambda f: f[key], reverse=reverse)
    assert [f["id"] for f in page["data"]] == [f["id"] for f in expected]
    assert len({f[key] for f in expected}) == len(expected)  # no ties: the order is the sort's alone


def test_per_page_and_page_give_laravel_meta_and_links_that_keep_the_filters(library):
    first = listed(library.user, claimed="false", sort="size", per_page=3)
    by_size = sorted(library.staged, key=lambda f: f["size"])
    assert [f["id"] for f in first["data"]] == [f["id"] for f in by_size[:3]]
    meta = first["meta"]
    assert (meta["current_page"], meta["per_page"], meta["total"], meta["last_page"], meta["from"], meta["to"]) == (
        1, 3, 4, 2, 1, 3)
    assert meta["path"] == "/api/v1/me/files"
    links = first["links"]
    assert links["prev"] is None
    for link, page in (("first", 1), ("last", 2), ("next", 2)):
        query = parse_qs(urlsplit(links[link]).query)
        assert query == {"claimed": ["false"], "sort": ["size"], "page": [str(page)], "per_page": ["3"]}, link
    second = library.user.api.get(links["next"]).json()
    assert [f["id"] for f in second["data"]] == [by_size[3]["id"]]
    assert (second["meta"]["current_page"], second["meta"]["from"], second["meta"]["to"]) == (2, 4, 4)
    assert second["links"]["next"] is None
    assert parse_qs(urlsplit(second["links"]["prev"]).query)["page"] == ["1"]
    filtered = listed(library.user, claimed="false", visibility="public", q="t", per_page=1)
    query = parse_qs(urlsplit(filtered["links"]["next"]).query)
    assert query == {"claimed": ["false"], "visibility": ["public"], "q": ["t"], "page": ["2"], "per_page": ["1"]}
    assert listed(library.user, claimed="false", page=3, per_page=3)["data"] == []


def test_per_page_is_15_by_default(library):
    assert listed(library.user)["meta"]["per_page"] == 15


@pytest.mark.parametrize("field, value", [("claimed", "maybe"), ("sort", "name"), ("sort", "-name"),
                                          ("visibility", "secret"), ("per_page", 0), ("per_page", 101),
                                          ("per_page", "x"), ("page", 0), ("page", "first"), ("q", "q" * 256)])
def test_bad_list_parameters_are_refused(library, field, value):
    assert refused_on(library.user.api.get("/me/files", params={field: value}), field)


def test_another_users_files_never_appear(library):
    theirs = {f["id"] for f in library.others}
    for params in ({}, {"claimed": "false"}, {"q": "Alpha"}, {"visibility": "public", "claimed": "false"},
                   {"per_page": 100}):
        assert not theirs & {f["id"] for f in listed(library.user, **params)["data"]}, params
    assert {f["id"] for f in listed(library.other)["data"]} == {library.others[0]["id"]}
    assert {f["id"] for f in listed(library.other, claimed="false")["data"]} == {library.others[1]["id"]}


# Attachments on channel messages

def test_posting_a_message_claims_the_file_and_shows_its_attachment(team):
    data = os.urandom(2000)
    file = staged(team.member, data, "deck.pdf")
    message = attached(team.member, team.ws, team.general, [file["id"]], content="the deck")
    assert message["original_content"] == "the deck"
    [attachment] = message["attachments"]
    assert set(attachment) == ATTACHMENT_FIELDS
    assert attachment["id"] != file["id"]
    assert (attachment["file_id"], attachment["client_name"], attachment["mime_type"], attachment["size"],
            attachment["download_url"]) == (file["id"], "deck.pdf", file["mime_type"], 2000,
                                            f"/api/v1/message-attachments/{attachment['id']}/download")
    now = metadata(team.member, file["id"]).json()["data"]
    assert (now["claimed"], now["expires_at"]) == (True, None)
    assert file["id"] in {f["id"] for f in listed(team.member)["data"]}
    assert file["id"] not in {f["id"] for f in listed(team.member, claimed="false")["data"]}

    path = attachment["download_url"].removeprefix("/api/v1")
    for reader in (team.member, team.owner, team.bystander):
        got = reader.api.get(path)
        assert got.status_code == 200 and got.content == data
        assert got.headers["etag"] == f'"{sha(data)}"'
        assert got.headers["content-disposition"].startswith("attachment;")
    assert team.stranger.api.get(path).status_code == 404
    ranged = team.bystander.api.get(path, headers={"Range": "bytes=0-9"})
    assert (ranged.status_code, ranged.content) == (206, data[:10])


def test_the_channel_list_and_one_message_show_the_attachments_in_order(team):
    room = chat.channel(team.owner, team.ws, unique("room"))
    files = [staged(team.member, os.urandom(10 + i), f"part-{i}.bin") for i in range(3)]
    plain = chat.post(team.member, team.ws, room, "no files")
    message = attached(team.member, team.ws, room, [f["id"] for f in files])
    assert [a["file_id"] for a in message["attachments"]] == [f["id"] for f in files]
    assert [a["size"] for a in message["attachments"]] == [10, 11, 12]
    one = team.owner.api.get(f"{chat.messages_path(team.ws, room)}/{message['id']}").json()["data"]
    assert one["attachments"] == message["attachments"]
    page = team.owner.api.get(chat.messages_path(team.ws, room)).json()["data"]
    assert [(m["id"], m["attachments"]) for m in page] == [(message["id"], message["attachments"]),
                                                           (plain["id"], [])]
    edited = team.member.api.patch(f"{chat.messages_path(team.ws, room)}/{message['id']}", json={"content": "v2"})
    assert edited.json()["data"]["attachments"] == message["attachments"]


def test_a_message_may_have_attachments_only(team):
    file = staged(team.member, b"just the file", "only.txt")
    message = attached(team.member, team.ws, team.general, [file["id"]], content=None)
    assert [a["file_id"] for a in message["attachments"]] == [file["id"]]
    assert message["original_content"] in ("", None)
    assert metadata(team.member, file["id"]).json()["data"]["claimed"] is True


def test_a_reply_may_carry_attachments(team):
    parent = chat.post(team.member, team.ws, team.general, "thread")
    file = staged(team.member, b"reply file", "reply.txt")
    reply = attached(team.member, team.ws, team.general, [file["id"]], parent_message_id=parent["id"])
    thread = team.owner.api.get(chat.messages_path(team.ws, team.general),
                                params={"parent_message_id": parent["id"]}).json()["data"]
    assert [(m["id"], [a["file_id"] for a in m["attachments"]]) for m in thread] == [(reply["id"], [file["id"]])]


def test_an_attachment_in_a_private_channel_is_hidden_from_those_who_cannot_enter_it(team):
    data = os.urandom(300)
    file = staged(team.member, data, "secret.bin")
    message = attached(team.member, team.ws, team.secret, [file["id"]])
    path = message["attachments"][0]["download_url"].removeprefix("/api/v1")
    assert team.owner.api.get(path).content == data  # an admin enters every channel
    assert team.member.api.get(path).content == data
    assert team.bystander.api.get(path).status_code == 404
    assert team.stranger.api.get(path).status_code == 404
    assert metadata(team.bystander, file["id"]).status_code == 404
    assert team.bystander.api.get(f"/files/{file['id']}/download").status_code == 404


def test_a_channel_reader_reads_a_private_attached_file_by_its_id(team):
    data = os.urandom(700)
    file = staged(team.member, data, "shared.bin")
    assert metadata(team.bystander, file["id"]).status_code == 404
    attached(team.member, team.ws, team.general, [file["id"]])
    shown = metadata(team.bystander, file["id"])
    assert shown.status_code == 200 and shown.json()["data"]["claimed"] is True
    assert team.bystander.api.get(f"/files/{file['id']}/download").content == data
    assert metadata(team.stranger, file["id"]).status_code == 404
    assert team.stranger.api.get(f"/files/{file['id']}/download").status_code == 404


def test_the_same_file_cannot_be_attached_twice(team):
    file = staged(team.member, b"once", "once.txt")
    first = attached(team.member, team.ws, team.general, [file["id"]])
    again = post_with(team.member, team.ws, team.general, [file["id"]])
    assert refused_on(again, "attachment_ids"), again.text
    elsewhere = post_with(team.member, team.ws, team.secret, [file["id"]])
    assert refused_on(elsewhere, "attachment_ids")
    one = team.member.api.get(f"{chat.messages_path(team.ws, team.general)}/{first['id']}").json()["data"]
    assert [a["file_id"] for a in one["attachments"]] == [file["id"]]
    doubled = staged(team.member, b"twice", "twice.txt")
    message = attached(team.member, team.ws, team.general, [doubled["id"], doubled["id"]])
    assert [a["file_id"] for a in message["attachments"]] == [doubled["id"]]


def test_two_messages_racing_for_one_file_claim_it_once(team, database):
    file = staged(team.member, b"contested", "race.txt")
    room = chat.channel(team.owner, team.ws, unique("race"))
    clients = [team.member.with_token(team.member.token) for _ in range(4)]
    answers = [None] * len(clients)

    def send(i):
        answers[i] = post_with(clients[i], team.ws, room, [file["id"]], content=f"racer {i}")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [201, 422, 422, 422], [a.text for a in answers]
    assert database.Attachment.select().where(database.Attachment.file == as_uuid(file["id"])).count() == 1
    listed_messages = team.member.api.get(chat.messages_path(team.ws, room)).json()["data"]
    assert [[a["file_id"] for a in m["attachments"]] for m in listed_messages] == [[file["id"]]]


def test_another_users_file_cannot_be_attached_and_stays_staged(team):
    theirs = staged(team.owner, b"owner's", "owners.txt", visibility="public")
    answer = post_with(team.member, team.ws, team.general, [theirs["id"]])
    assert refused_on(answer, "attachment_ids"), answer.text
    mine = staged(team.member, b"mine")
    assert refused_on(post_with(team.member, team.ws, team.general, [mine["id"], theirs["id"]]), "attachment_ids")
    assert metadata(team.owner, theirs["id"]).json()["data"]["claimed"] is False
    assert metadata(team.member, mine["id"]).json()["data"]["claimed"] is False


def test_a_deleted_or_unknown_file_cannot_be_attached(team):
    gone = staged(team.member, b"gone")
    assert team.member.api.delete(f"/files/{gone['id']}").status_code == 204
    for file_id in (gone["id"], str(ULID()).lower()):
        assert refused_on(post_with(team.member, team.ws, team.general, [file_id]), "attachment_ids"), file_id
    for bad in (["not-a-ulid"], "01hzzzzzzzzzzzzzzzzzzzzzzz", [None], [str(ULID()).lower() for _ in range(11)]):
        answer = team.member.api.post(chat.messages_path(team.ws, team.general),
                                      json={"content": "x", "attachment_ids": bad})
        assert answer.status_code == 422, bad
        assert {key.split(".")[0] for key in answer.json()["errors"]} == {"attachment_ids"}, answer.text


def test_a_refused_message_leaves_its_file_staged(team):
    file = staged(team.member, b"waiting")
    answer = post_with(team.member, team.ws, team.general, [file["id"]], parent_message_id=str(ULID()).lower())
    assert refused_on(answer, "parent_message_id"), answer.text
    assert refused_on(post_with(team.member, team.ws, team.general, [file["id"]], content="x" * 4001), "content")
    assert team.stranger.api.post(chat.messages_path(team.ws, team.general),
                                  json={"attachment_ids": [file["id"]]}).status_code == 404
    now = metadata(team.member, file["id"]).json()["data"]
    assert (now["claimed"], now["expires_at"]) == (False, file["expires_at"])
    assert attached(team.member, team.ws, team.general, [file["id"]])["attachments"][0]["file_id"] == file["id"]


def test_a_post_refused_inside_its_write_claims_none_of_its_files(stack, team, database):
    """Straight on the writes queue, past the handler's early check: in one batch, a post that claims a file
    of someone else's with one of the author's own is refused whole, and a second claim of a file loses."""
    from domain import commands as c
    from models import new_id, utcnow

    mine, also_mine, contested = (staged(team.member, b"m%d" % i) for i in range(3))
    theirs = staged(team.owner, b"theirs")

    def post(file_ids: list[str]) -> dict:
        return c.to_wire(c.PostMessage(
            command_id=c.new_command_id(), message_id=new_id(), channel_id=as_uuid(team.general["id"]),
            author_id=team.member.id, body="direct", pinned=False, at=utcnow(),
            file_ids=[as_uuid(i) for i in file_ids], attachment_ids=[new_id() for _ in file_ids]))

    good, mixed, first, second = post([mine["id"]]), post([also_mine["id"], theirs["id"]]), \
        post([contested["id"]]), post([contested["id"]])
    outcomes = send_commands(stack, [good, mixed, first, second])
    assert outcomes[good["command_id"]] == "applied"
    assert outcomes[first["command_id"]] == "applied"
    assert outcomes[mixed["command_id"]]["kind"] == "Invalid"
    assert outcomes[second["command_id"]]["kind"] == "Invalid"
    assert metadata(team.member, mine["id"]).json()["data"]["claimed"] is True
    assert metadata(team.member, also_mine["id"]).json()["data"]["claimed"] is False
    assert metadata(team.owner, theirs["id"]).json()["data"]["claimed"] is False
    assert database.Message.get_or_none(database.Message.id == uuid.UUID(mixed["message_id"])) is None
    assert database.Message.get_or_none(database.Message.id == uuid.UUID(second["message_id"])) is None
    kept = database.Message.get_by_id(uuid.UUID(first["message_id"]))
    assert kept.attachment_count == 1
    assert database.Attachment.select().where(database.Attachment.file == as_uuid(contested["id"])).count() == 1


def test_an_automation_post_can_attach_files(team):
    minted = team.member.api.post("/me/tokens", json={"name": "bot", "abilities": ["automation:post"]})
    assert minted.status_code == 201, minted.text
    bot = team.member.with_token(minted.json()["data"]["token"])
    data = os.urandom(321)
    file = staged(team.member, data, "build.log")
    answer = bot.post(f"/automation{chat.messages_path(team.ws, team.general)}",
                      json={"content": "Build finished.", "attachment_ids": [file["id"]]})
    assert answer.status_code == 201, answer.text
    message = answer.json()["data"]
    assert message["author"]["kind"] == "automation"
    [attachment] = message["attachments"]
    assert attachment["file_id"] == file["id"]
    assert team.bystander.api.get(attachment["download_url"].removeprefix("/api/v1")).content == data
    other = staged(team.owner, b"not the bot's")
    refused = bot.post(f"/automation{chat.messages_path(team.ws, team.general)}",
                       json={"content": "x", "attachment_ids": [other["id"]]})
    assert refused_on(refused, "attachment_ids")
    assert bot.post("/files", files={"file": ("b.txt", b"b")}).status_code == 403


# Attachments on direct messages

@pytest.fixture(scope="module")
def pair(rosetta_url):
    ada, bob, third = AppUser(rosetta_url, name="Ada"), AppUser(rosetta_url, name="Bob"), AppUser(rosetta_url)
    opened = ada.api.post("/direct-conversations", json={"participant_user_id": str(bob.id)})
    assert opened.status_code == 201, opened.text
    return SimpleNamespace(ada=ada, bob=bob, third=third, conversation=opened.json()["data"])


def test_a_direct_message_attachment_is_for_its_two_participants(pair, team):
    data = os.urandom(1500)
    file = staged(pair.ada, data, "for-bob.bin")
    path = f"/direct-conversations/{pair.conversation['id']}/messages"
    answer = pair.ada.api.post(path, json={"attachment_ids": [file["id"]]})
    assert answer.status_code == 201, answer.text
    [attachment] = answer.json()["data"]["attachments"]
    assert attachment["download_url"] == f"/api/v1/direct-message-attachments/{attachment['id']}/download"
    download = attachment["download_url"].removeprefix("/api/v1")
    for participant in (pair.ada, pair.bob):
        got = participant.api.get(download)
        assert got.status_code == 200 and got.content == data
    assert pair.third.api.get(download).status_code == 404
    assert team.owner.api.get(download).status_code == 404
    # Each kind of attachment has its own route.
    assert pair.bob.api.get(f"/message-attachments/{attachment['id']}/download").status_code == 404
    assert metadata(pair.bob, file["id"]).json()["data"]["claimed"] is True
    assert pair.bob.api.get(f"/files/{file['id']}/download").content == data
    assert metadata(pair.third, file["id"]).status_code == 404
    listed_messages = pair.bob.api.get(path).json()["data"]
    assert listed_messages[0]["attachments"] == [attachment]
    conversations = pair.bob.api.get("/direct-conversations").json()["data"]
    [mine] = [c for c in conversations if c["id"] == pair.conversation["id"]]
    assert mine["last_message"]["attachments"] == [attachment]


def test_a_channel_attachment_is_not_served_as_a_direct_one(team):
    file = staged(team.member, b"channel file")
    attachment = attached(team.member, team.ws, team.general, [file["id"]])["attachments"][0]
    assert team.member.api.get(f"/direct-message-attachments/{attachment['id']}/download").status_code == 404
    assert team.member.api.get(f"/message-attachments/{file['id']}/download").status_code == 404  # a file id


# Deleting a file

def test_the_uploader_deletes_a_file_and_its_bytes_go(app_user, stack, database):
    file = staged(app_user, os.urandom(5000), "bye.bin")
    key = database.File.get_by_id(as_uuid(file["id"])).storage_key
    assert store_path(stack.data_dir, key).exists()
    assert app_user.api.delete(f"/files/{file['id']}").status_code == 204
    assert metadata(app_user, file["id"]).status_code == 404
    assert app_user.api.get(f"/files/{file['id']}/download").status_code == 404
    assert app_user.api.delete(f"/files/{file['id']}").status_code == 404
    assert file["id"] not in {f["id"] for f in listed(app_user, claimed="false")["data"]}
    assert wait_for(lambda: not store_path(stack.data_dir, key).exists(), timeout=15)


def test_only_the_uploader_may_delete_a_file(team):
    public = staged(team.member, b"open", visibility="public")
    assert team.stranger.api.delete(f"/files/{public['id']}").status_code == 403
    private = staged(team.member, b"closed")
    assert team.stranger.api.delete(f"/files/{private['id']}").status_code == 404
    assert metadata(team.member, public["id"]).status_code == 200
    assert metadata(team.member, private["id"]).status_code == 200


def test_a_file_attached_to_a_live_message_cannot_be_deleted_until_the_message_is(team, stack, database):
    data = os.urandom(800)
    file = staged(team.member, data, "kept.bin")
    message = attached(team.member, team.ws, team.general, [file["id"]])
    download = message["attachments"][0]["download_url"].removeprefix("/api/v1")
    answer = team.member.api.delete(f"/files/{file['id']}")
    assert answer.status_code == 409, answer.text
    assert team.owner.api.get(download).content == data
    one = f"{chat.messages_path(team.ws, team.general)}/{message['id']}"
    assert team.member.api.delete(one).status_code == 204
    assert team.owner.api.get(download).status_code == 404
    assert metadata(team.bystander, file["id"]).status_code == 404  # no live message makes it readable
    key = database.File.get_by_id(as_uuid(file["id"])).storage_key
    assert team.member.api.delete(f"/files/{file['id']}").status_code == 204
    assert metadata(team.member, file["id"]).status_code == 404
    assert wait_for(lambda: not store_path(stack.data_dir, key).exists(), timeout=15)


# A stack with a 1 MiB limit and a 2 s TTL

@pytest.fixture(scope="module")
def small():
    stack = Stack()
    stack.env.update({"SECTOR_FILES_MAX_BYTES": str(SMALL_LIMIT), "SECTOR_FILES_STAGED_TTL_S": str(STAGED_TTL_S)})
    stack.settings = config.load(environ=stack.env)
    stack.start()
    url = f"http://127.0.0.1:{stack.port}/api/v1"
    user = AppUser(url, name="Small")
    ws = chat.workspace(user, "Small")
    yield SimpleNamespace(stack=stack, url=url, user=user, ws=ws, ch=chat.channel(user, ws, "c"))
    stack.stop()


def small_sql(small, code: str) -> object:
    """Run peewee code against the small stack's database in a process of its own; `result` is printed as JSON."""
    script = "import json, uuid, datetime as dt\nimport config, models\nfrom models import File, Attachment\n" \
             "models.open_database(config.settings().database_url)\nresult = None\n" + textwrap.dedent(code) + \
             "\nprint(json.dumps(result, default=str))\n"
    return json.loads(run_python(small.stack.env, script).strip().splitlines()[-1])


def rows_of(small, file_ids: list[str]) -> dict[str, dict]:
    """The file rows that are there, by ULID: storage_key, claimed, deleted."""
    found = small_sql(small, f"""
        ids = [uuid.UUID(i) for i in {[str(as_uuid(i)) for i in file_ids]!r}]
        result = {{f.id.hex: {{"key": f.storage_key, "claimed": f.claimed_at is not None,
                               "deleted": f.deleted_at is not None}} for f in File.select().where(File.id.in_(ids))}}
    """)
    return {i: found[as_uuid(i).hex] for i in file_ids if as_uuid(i).hex in found}


def make_old(small, file_ids: list[str]) -> None:
    """Move the files' expiry a day into the past (far beyond domain.files.EXPIRY_GRACE)."""
    small_sql(small, f"""
        ids = [uuid.UUID(i) for i in {[str(as_uuid(i)) for i in file_ids]!r}]
        result = File.update(expires_at=models.utcnow() - dt.timedelta(days=1)).where(File.id.in_(ids)).execute()
    """)


def aged(path: Path, seconds: float = 7200) -> Path:
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


def raw_upload(small, headers: str, pieces: list[bytes], chunked: bool) -> tuple[int, dict[str, str]]:
    """Send a request's head and these pieces of its body over a socket, then stop sending and read the
    head of the answer: what a client still uploading would get."""
    with socket.create_connection(("127.0.0.1", small.stack.port), timeout=10) as sock:
        sock.sendall((f"POST /api/v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: Bearer {small.user.token}\r\n{headers}\r\n").encode())
        for piece in pieces:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        head = b""
        while b"\r\n\r\n" not in head:
            received = sock.recv(4096)
            assert received, "the server closed the connection without an answer"
            head += received
    status_line, *lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return int(status_line.split()[1]), {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


def over_the_limit(small, **kwargs) -> httpx.Response:
    """An upload on a connection of its own: after a 413 the server may drop it."""
    with httpx.Client(base_url=small.url, headers=small.user.api.headers, timeout=30) as client:
        return client.post("/files", **kwargs)


def test_the_size_limit_holds_with_a_content_length(small):
    before = stored_paths(small.stack.data_dir)
    exact = upload(small.user, os.urandom(SMALL_LIMIT), "exact.bin")
    assert exact.status_code == 201, exact.text
    assert exact.json()["data"]["size"] == SMALL_LIMIT
    assert upload(small.user, os.urandom(SMALL_LIMIT - 1), "under.bin").status_code == 201
    over = over_the_limit(small, files={"file": ("over.bin", os.urandom(SMALL_LIMIT + 1))})
    assert over.status_code == 413, over.text
    assert over.json()["message"] == f"The file may be at most {SMALL_LIMIT} bytes."
    # Far over: refused on its Content-Length, before the body is sent.
    boundary = "FaR"
    head, _ = multipart(boundary, "far-over.bin")
    status, _ = raw_upload(small, f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                                  f"Content-Length: {3 * SMALL_LIMIT}\r\n", [head + os.urandom(1000)], chunked=False)
    assert status == 413
    assert wait_for(lambda: os.listdir(small.stack.data_dir / "uploads") == [], timeout=5)
    assert len(stored_paths(small.stack.data_dir) - before) == 2
    assert not {"over.bin", "far-over.bin"} & set(names(listed(small.user, claimed="false", per_page=100)))


def test_the_size_limit_holds_for_a_chunked_upload_without_a_content_length(small):
    boundary = "ChUnKeD"
    before = stored_paths(small.stack.data_dir)

    def body(size: int, name: str):
        head, end = multipart(boundary, name, prefix=(f'--{boundary}\r\nContent-Disposition: form-data; '
                                                      f'name="visibility"\r\n\r\npublic\r\n').encode())
        yield head
        left = size
        while left:
            piece = min(64 * 1024, left)
            left -= piece
            yield os.urandom(piece)
        yield end

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    fits = small.user.api.post("/files", content=body(SMALL_LIMIT, "fits.bin"), headers=headers)
    assert "content-length" not in fits.request.headers and fits.request.headers["transfer-encoding"] == "chunked"
    assert fits.status_code == 201, fits.text
    assert (fits.json()["data"]["size"], fits.json()["data"]["visibility"]) == (SMALL_LIMIT, "public")
    over = over_the_limit(small, content=body(SMALL_LIMIT + 1, "too-big.bin"), headers=headers)
    assert over.status_code == 413, over.text
    assert wait_for(lambda: os.listdir(small.stack.data_dir / "uploads") == [], timeout=5)
    assert len(stored_paths(small.stack.data_dir) - before) == 1
    assert "too-big.bin" not in names(listed(small.user, claimed="false", per_page=100))


def endless(small) -> tuple[int, dict[str, str]]:
    """A chunked upload that passes the limit by 64 KiB and then sends nothing more."""
    boundary = "RaW"
    head, _ = multipart(boundary, "endless.bin")
    return raw_upload(small, f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                             "Transfer-Encoding: chunked\r\n",
                      [head] + [os.urandom(64 * 1024)] * (SMALL_LIMIT // (64 * 1024) + 1), chunked=True)


def test_the_413_comes_while_the_body_is_still_arriving(small):
    before = stored_paths(small.stack.data_dir)
    status, _ = endless(small)
    assert status == 413
    assert wait_for(lambda: os.listdir(small.stack.data_dir / "uploads") == [], timeout=5)
    assert stored_paths(small.stack.data_dir) == before


def test_a_413_before_the_body_is_read_says_the_connection_closes(small):
    status, headers = endless(small)
    assert (status, headers.get("connection")) == (413, "close")


def test_a_client_gone_mid_upload_leaves_nothing_behind(small):
    boundary = "GoNe"
    head, _ = multipart(boundary, "abandoned.bin")
    before = stored_paths(small.stack.data_dir)
    uploads = small.stack.data_dir / "uploads"
    with socket.create_connection(("127.0.0.1", small.stack.port), timeout=10) as sock:
        sock.sendall((f"POST /api/v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {small.user.token}\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 900000\r\n\r\n"
                      ).encode() + head + os.urandom(400_000))
        assert wait_for(lambda: len(os.listdir(uploads)) == 1, timeout=5)
    assert wait_for(lambda: os.listdir(uploads) == [], timeout=10)
    assert stored_paths(small.stack.data_dir) == before
    assert "abandoned.bin" not in names(listed(small.user, claimed="false", per_page=100))


def test_a_file_past_its_ttl_can_no_longer_be_attached(small):
    file = staged(small.user, b"late", "late.txt")
    assert file["claimed"] is False
    expires = dt.datetime.fromisoformat(file["expires_at"].replace("Z", "+00:00"))
    assert wait_for(lambda: dt.datetime.now(dt.timezone.utc) > expires + dt.timedelta(seconds=0.3),
                    timeout=STAGED_TTL_S + 5)
    answer = post_with(small.user, small.ws, small.ch, [file["id"]])
    assert refused_on(answer, "attachment_ids"), answer.text
    fresh = staged(small.user, b"in time", "fresh.txt")
    assert attached(small.user, small.ws, small.ch, [fresh["id"]])["attachments"][0]["file_id"] == fresh["id"]


def test_the_expiry_actor_run_twice_at_once_deletes_each_expired_file_once(small):
    expired = [staged(small.user, os.urandom(100), f"old-{i}.bin") for i in range(6)]
    keep = staged(small.user, b"young", "young.bin")
    keys = {file_id: row["key"] for file_id, row in rows_of(small, [f["id"] for f in expired]).items()}
    assert len(keys) == len(expired)
    make_old(small, list(keys))
    out = run_python(small.stack.env, textwrap.dedent("""
        import threading
        import actors
        import models
        from actors import files
        from config import settings
        models.open_database(settings().database_url)
        errors = []
        def sweep():
            try:
                files.expire_files.fn()
            except Exception as e:  # the test reads them
                errors.append(repr(e))
        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for t in threads: t.start()
        for t in threads: t.join()
        print("errors:", errors)
    """))
    assert out.strip().splitlines()[-1] == "errors: []", out
    assert rows_of(small, list(keys)) == {}
    assert not any(store_path(small.stack.data_dir, key).exists() for key in keys.values())
    assert metadata(small.user, keep["id"]).status_code == 200
    assert small.user.api.get(f"/files/{keep['id']}/download").content == b"young"


def test_the_scheduler_expires_staged_files_and_sweeps_orphans_and_leftovers(small):
    data_dir = small.stack.data_dir
    expired = [staged(small.user, os.urandom(200), f"expired-{i}.bin") for i in range(2)]
    claimed = staged(small.user, os.urandom(300), "claimed.bin")
    attached(small.user, small.ws, small.ch, [claimed["id"]])
    young = staged(small.user, os.urandom(50), "young.bin")  # past its 2 s soon, but not its grace
    deleted = staged(small.user, os.urandom(60), "deleted.bin")
    rows = rows_of(small, [f["id"] for f in (*expired, claimed, young, deleted)])
    assert small.user.api.delete(f"/files/{deleted['id']}").status_code == 204
    deleted_path = store_path(data_dir, rows[deleted["id"]]["key"])
    assert wait_for(lambda: not deleted_path.exists(), timeout=10)
    make_old(small, [f["id"] for f in expired] + [claimed["id"]])  # a claimed file is kept whatever its expiry

    # Bytes with no live row (as a crash leaves them), and half-written uploads, old and new.
    aged(store_path(data_dir, rows[claimed["id"]]["key"]))
    deleted_path.write_bytes(b"the bytes of a deleted file, back")
    aged(deleted_path)
    orphan, recent_orphan = (store_path(data_dir, uuid.uuid4().hex) for _ in range(2))
    for path in (orphan, recent_orphan):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"orphan")
    aged(orphan)
    leftover, recent_leftover = data_dir / "uploads" / uuid.uuid4().hex, data_dir / "uploads" / uuid.uuid4().hex
    leftover.write_bytes(b"half an upload")
    recent_leftover.write_bytes(b"an upload under way")
    aged(leftover)

    expired_paths = [store_path(data_dir, rows[f["id"]]["key"]) for f in expired]
    assert all(path.exists() for path in expired_paths)
    scheduler = small.stack._spawn("scheduler", env={**small.stack.env, "SECTOR_SCHEDULER_SWEEP_INTERVAL_S": "1",
                                                     "SECTOR_SCHEDULER_LOCK_TTL_S": "3"})
    try:
        assert wait_for(lambda: not rows_of(small, [f["id"] for f in expired]), timeout=20, interval=0.5)
        assert wait_for(lambda: not any(p.exists() for p in (*expired_paths, orphan, deleted_path, leftover)),
                        timeout=10, interval=0.2)
    finally:
        scheduler.terminate()
        try:
            scheduler.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(scheduler.pid, 9)
            scheduler.wait()
    left = rows_of(small, [claimed["id"], young["id"], deleted["id"]])
    assert (left[claimed["id"]]["claimed"], left[young["id"]]["claimed"], left[deleted["id"]]["deleted"]) == (
        True, False, True)
    assert small.user.api.get(f"/files/{claimed['id']}/download").status_code == 200
    assert small.user.api.get(f"/files/{young['id']}/download").status_code == 200
    assert recent_orphan.exists() and recent_leftover.exists()
    for f in expired:
        assert metadata(small.user, f["id"]).status_code == 404
