"""The file stores' contract, run against both: a local directory, and S3 over HTTP.

The S3 store talks to moto's server mode (a real HTTP server speaking the S3 protocol, in a thread of
this process), so requests, signing, ranges, multipart uploads and errors go over the wire as they
would to MinIO or AWS. Needs no Sector stack.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest
from botocore.exceptions import ClientError

import config
from providers.storage import CHUNK, LocalStorage, build
from providers.storage_s3 import MiB, S3Storage


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_files(endpoint: str, **changes) -> config.Files:
    """`[files]` for a fresh bucket of the moto server."""
    fields = dict(storage="s3", s3_endpoint=endpoint, s3_region="us-east-1",
                  s3_bucket=f"sector-test-{uuid.uuid4().hex[:12]}", s3_access_key="testing", s3_secret_key="testing")
    return msgspec.structs.replace(config.settings().files, **(fields | changes))


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    endpoint = request.getfixturevalue("moto_endpoint")
    return S3Storage(s3_files(endpoint), multipart_threshold=1 * MiB)


@pytest.fixture
def stage(tmp_path):
    """Write bytes to a staging file as the upload handler would, and give its path."""
    staging = tmp_path / "uploads"
    staging.mkdir()

    def write(data: bytes):
        path = staging / uuid.uuid4().hex
        path.write_bytes(data)
        return path

    return write


def new_key() -> str:
    return uuid.uuid4().hex


def read(storage, key: str, start: int, length: int) -> bytes:
    pieces = list(storage.chunks(key, start, length))
    assert all(0 < len(piece) <= CHUNK for piece in pieces)
    return b"".join(pieces)


def test_put_then_chunks_round_trips_binary_data(storage, stage):
    data = os.urandom(5 * MiB + 17)  # two parts of a multipart upload in S3, the last one 17 bytes
    key = new_key()
    storage.put(key, stage(data), "application/octet-stream")

    pieces = list(storage.chunks(key, 0, len(data)))
    assert [len(piece) for piece in pieces[:-1]] == [CHUNK] * (len(pieces) - 1)
    assert 0 < len(pieces[-1]) <= CHUNK
    assert b"".join(pieces) == data
    if isinstance(storage, S3Storage):
        head = storage._client.head_object(Bucket=storage.bucket, Key=key)
        assert head["ETag"].strip('"').endswith("-2"), "uploaded in two parts"
        assert head["ContentType"] == "application/octet-stream"
        assert head["ContentLength"] == len(data)


def test_a_small_file_goes_up_in_one_request_with_its_type(storage, stage):
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(1000)
    key = new_key()
    storage.put(key, stage(data), "image/png")
    assert read(storage, key, 0, len(data)) == data
    if isinstance(storage, S3Storage):
        head = storage._client.head_object(Bucket=storage.bucket, Key=key)
        assert "-" not in head["ETag"] and head["ContentType"] == "image/png"


def test_ranges(storage, stage):
    data = os.urandom(2 * CHUNK + 100)
    key = new_key()
    storage.put(key, stage(data), "application/octet-stream")
    end = len(data)

    assert read(storage, key, 0, 10) == data[:10]
    assert read(storage, key, CHUNK - 5, CHUNK + 10) == data[CHUNK - 5:2 * CHUNK + 5]  # across a piece
    assert read(storage, key, 1234, 1) == data[1234:1235]
    assert read(storage, key, end - 1, 1) == data[-1:]
    assert read(storage, key, end - 10, 1000) == data[-10:], "a length past the end gives what exists"
    assert read(storage, key, 0, 10 * end) == data
    assert read(storage, key, end, 10) == b"", "nothing from the end on"
    assert read(storage, key, end + 5, 10) == b""


def test_a_zero_length_read_asks_for_nothing(storage, stage):
    key = new_key()
    storage.put(key, stage(b"some bytes"), "text/plain")
    requests = []
    if isinstance(storage, S3Storage):
        storage._client.meta.events.register("before-call.s3.GetObject", lambda **kw: requests.append(kw))
    assert list(storage.chunks(key, 0, 0)) == []
    assert list(storage.chunks(key, 3, 0)) == []
    assert requests == []
    assert read(storage, key, 0, 4) == b"some"
    assert len(requests) == (1 if isinstance(storage, S3Storage) else 0)


def test_an_empty_file(storage, stage):
    key = new_key()
    storage.put(key, stage(b""), "application/octet-stream")
    assert read(storage, key, 0, 10) == b""
    assert key in dict(storage.keys())


def test_a_missing_key_is_file_not_found(storage):
    with pytest.raises(FileNotFoundError):
        list(storage.chunks(new_key(), 0, 10))


def test_delete_removes_the_bytes_and_may_be_repeated(storage, stage):
    key, kept = new_key(), new_key()
    storage.put(key, stage(b"gone soon"), "text/plain")
    storage.put(kept, stage(b"stays"), "text/plain")
    storage.delete(key)
    storage.delete(key)
    storage.delete(new_key())  # never stored
    with pytest.raises(FileNotFoundError):
        list(storage.chunks(key, 0, 9))
    assert read(storage, kept, 0, 5) == b"stays"


def test_keys_lists_what_is_stored_with_its_mtime(storage, stage):
    assert list(storage.keys()) == []
    before = time.time()
    stored = {new_key(): os.urandom(n) for n in (1, 100, 5000)}
    for key, data in stored.items():
        storage.put(key, stage(data), "application/octet-stream")
    after = time.time()
    deleted = next(iter(stored))
    storage.delete(deleted)

    listed = dict(storage.keys())
    assert set(listed) == set(stored) - {deleted}
    for mtime in listed.values():
        # S3's LastModified has whole seconds; the local store's mtime is the staging file's.
        assert before - 2 <= mtime <= after + 2


def test_keys_pages_through_a_long_listing(moto_endpoint, stage):
    storage = S3Storage(s3_files(moto_endpoint))
    stored = {new_key() for _ in range(12)}
    for key in stored:
        storage.put(key, stage(b"x"), "text/plain")
    pages = []

    def five_a_page(params, **kwargs):  # instead of S3's 1000, so the listing takes three pages
        params["MaxKeys"] = 5
        pages.append(params.get("ContinuationToken"))

    storage._client.meta.events.register("before-parameter-build.s3.ListObjectsV2", five_a_page)
    assert {key for key, _ in storage.keys()} == stored
    assert len(pages) == 3 and pages[0] is None and all(pages[1:])


def test_concurrent_reads_share_one_store(storage, stage):
    data = os.urandom(3 * CHUNK)
    key = new_key()
    storage.put(key, stage(data), "application/octet-stream")
    ranges = [(i * 1000, 50_000) for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda r: read(storage, key, *r), ranges))
    assert results == [data[start:start + length] for start, length in ranges]


def test_the_bucket_is_created_on_first_use(moto_endpoint, stage):
    files = s3_files(moto_endpoint, s3_region="eu-west-1")
    first = S3Storage(files)
    with pytest.raises(ClientError):
        first._client.head_bucket(Bucket=files.s3_bucket)
    key = new_key()
    first.put(key, stage(b"hello"), "text/plain")
    assert first._client.get_bucket_location(Bucket=files.s3_bucket)["LocationConstraint"] == "eu-west-1"

    # Another host that started at the same time: it saw no bucket, the first one made it, that is fine.
    second = S3Storage(files)

    def not_there(**kwargs):
        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadBucket")

    second._client.head_bucket = not_there
    assert read(second, key, 0, 5) == b"hello"


def test_other_errors_are_not_hidden(moto_endpoint, monkeypatch):
    storage = S3Storage(s3_files(moto_endpoint))

    def denied(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    monkeypatch.setattr(storage._client, "get_object", denied)
    with pytest.raises(ClientError, match="AccessDenied"):
        list(storage.chunks(new_key(), 0, 10))


def test_build_returns_the_configured_store(moto_endpoint, tmp_path):
    files = config.settings().files
    local = build(msgspec.structs.replace(files, storage="local", local_dir="blobs"), tmp_path)
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "blobs"

    remote = build(s3_files(moto_endpoint), tmp_path)
    assert isinstance(remote, S3Storage)
    assert remote.bucket.startswith("sector-test-") and list(remote.keys()) == []
