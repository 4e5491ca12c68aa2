"""Uploaded files' bytes in an S3-compatible object store (`[files] storage = "s3"`).

Speaks the S3 REST API through boto3: Amazon S3 itself, or any server that implements it (MinIO,
Ceph RGW, Garage, SeaweedFS, Cloudflare R2, moto in the tests). Every API host and worker must point
at the same bucket.

Downloads stream through Sector's API (`chunks` reads a byte range with GetObject and hands it on in
CHUNK pieces), never as a redirect to a presigned URL: access control, Range requests, the ETag and
Content-Disposition are Sector's own and behave the same as with the local store, and the object
store need not be reachable from clients at all.

Configuration (`[files]` in config.toml, or SECTOR_FILES_<KEY> in the environment):

- MinIO or another S3-compatible server: `s3_endpoint = "http://minio:9000"`, `s3_region` as the
  server expects (MinIO accepts "us-east-1"), `s3_bucket`, and the server's `s3_access_key` /
  `s3_secret_key`. An endpoint turns on path-style addressing (http://host/bucket/key), which these
  servers need, and asks for checksums only where the API requires them, which older or partial
  implementations of the newer checksum headers reject.
- Amazon S3: leave `s3_endpoint` empty, set `s3_region` to the bucket's region. Leave the keys
  empty to use boto3's usual credential chain (AWS_* environment variables, ~/.aws, an instance or
  task role); set them to use a fixed IAM user's keys.

The bucket is created on first use if it does not exist (which needs s3:CreateBucket; create it
beforehand where the credentials may not). Needed otherwise: s3:ListBucket, s3:GetObject,
s3:PutObject, s3:DeleteObject, and the multipart upload actions that go with PutObject.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from config import Files
from providers.storage import Storage, pieces

MiB = 1024 * 1024

#: Files at least this large are uploaded in parts (S3 parts are 5 MiB at the least), read from
#: disk part by part, so a big upload never sits in memory whole.
MULTIPART_THRESHOLD = 8 * MiB

_MISSING = {"NoSuchKey", "404", "NotFound"}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3Storage(Storage):
    """One bucket of an S3-compatible store. Safe to share between threads (one boto3 client)."""

    def __init__(self, config: Files, *, multipart_threshold: int = MULTIPART_THRESHOLD):
        self.bucket = config.s3_bucket
        self.region = config.s3_region
        options = {
            "retries": {"max_attempts": 3, "mode": "standard"},
            # The API's download threads and an upload's part threads share the connection pool.
            "max_pool_connections": 32,
            "s3": {"addressing_style": "auto"},
        }
        if config.s3_endpoint:  # an S3-compatible server, not AWS
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        # A session per store: boto3 sessions are not thread-safe, the client made from one is.
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=config.s3_endpoint or None,
            region_name=config.s3_region or None,
            # Empty keys: boto3's credential chain (environment, ~/.aws, instance or task role).
            aws_access_key_id=config.s3_access_key or None,
            aws_secret_access_key=config.s3_secret_key or None,
            config=Config(**options),
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=max(multipart_threshold, 5 * MiB),
            max_concurrency=4,
        )
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    def _ensure_bucket(self) -> None:
        """Create the bucket the first time this process uses it, if it is not there yet."""
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as e:
                if _code(e) not in {"404", "NoSuchBucket", "NotFound"}:
                    raise
                kwargs = {}
                if self.region and self.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                try:
                    self._client.create_bucket(Bucket=self.bucket, **kwargs)
                except ClientError as e:
                    if _code(e) != "BucketAlreadyOwnedByYou":  # another host made it just now
                        raise
            self._bucket_ready = True

    def put(self, key: str, path: Path, mime_type: str) -> None:
        self._ensure_bucket()
        self._client.upload_file(
            str(path), self.bucket, key, ExtraArgs={"ContentType": mime_type}, Config=self._transfer
        )

    def chunks(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """The range is requested at once, so a missing key raises FileNotFoundError here, before the
        first piece is asked for; the body is then read as it is consumed."""
        if length <= 0:
            return iter(())
        self._ensure_bucket()
        try:
            response = self._client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
            )
        except ClientError as e:
            code = _code(e)
            if code in _MISSING:
                raise FileNotFoundError(key) from e
            if code in {"InvalidRange", "416"}:  # start at or past the end (or an empty object)
                return iter(())
            raise
        return _stream(response["Body"], length)

    def delete(self, key: str) -> None:
        self._ensure_bucket()
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if _code(e) not in _MISSING:  # S3 answers 204 for a missing key; some servers do not
                raise

    def keys(self) -> Iterator[tuple[str, float]]:
        self._ensure_bucket()
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", ()):
                yield item["Key"], item["LastModified"].timestamp()


def _stream(body, length: int) -> Iterator[bytes]:
    """The response body in pieces of at most CHUNK; the connection is released however it ends."""
    try:
        yield from pieces(body, length)
    finally:
        body.close()
