"""Where uploaded files' bytes live: one small interface, a local directory by default, an
S3-compatible object store by config (`[files] storage`).

Keys are random names Sector makes (never a client's file name). Every method is blocking; the API
calls them from a thread. An upload is first streamed into a temporary file under `staging_dir()`
(the handler hashes, sniffs and counts it on the way), then handed over whole with `put`, so no
file is ever held in memory and a failed upload leaves nothing behind in the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from config import Files

#: Bytes a read of a download returns at most.
CHUNK = 256 * 1024


class Storage:
    """The interface; `LocalStorage` and `providers.storage_s3.S3Storage` implement it."""

    def put(self, key: str, path: Path, mime_type: str) -> None:
        """Store the file at `path` under `key` (the file is moved or copied; the caller deletes `path`)."""
        raise NotImplementedError

    def chunks(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """`length` bytes of the stored file from offset `start`, in pieces of at most CHUNK."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove the stored bytes; a key that is not there is no error."""
        raise NotImplementedError

    def keys(self) -> Iterator[tuple[str, float]]:
        """Every stored key with its modification time (epoch seconds), for the sweep of orphaned bytes."""
        raise NotImplementedError


def pieces(reader, length: int) -> Iterator[bytes]:
    """Up to `length` bytes of a file-like `reader`, in pieces of at most CHUNK (fewer at its end)."""
    while length > 0:
        piece = reader.read(min(CHUNK, length))
        if not piece:
            return
        length -= len(piece)
        yield piece


class LocalStorage(Storage):
    """Files under `[files] local_dir` (relative to the data dir), two levels of fan-out by key."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / key

    def put(self, key: str, path: Path, mime_type: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)  # the staging dir is on the same file system: a rename

    def chunks(self, key: str, start: int, length: int) -> Iterator[bytes]:
        with open(self._path(key), "rb") as f:
            f.seek(start)
            yield from pieces(f, length)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[tuple[str, float]]:
        for path in self.root.glob("??/??/*"):
            if path.is_file():
                yield path.name, path.stat().st_mtime


def build(config: Files, data_dir: Path) -> Storage:
    if config.storage == "s3":
        from providers.storage_s3 import S3Storage

        return S3Storage(config)
    return LocalStorage(data_dir / config.local_dir)


def staging_dir(data_dir: Path) -> Path:
    """Where uploads are written while they arrive (beside the local store, so `put` is a rename)."""
    path = data_dir / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path
