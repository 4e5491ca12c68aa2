"""Serving a stored file: ETag (its SHA-256) and If-None-Match, one byte Range, an RFC 6266
Content-Disposition that makes a download of anything a browser would run, and the bytes streamed from
the store, read in pool threads."""

from __future__ import annotations

import asyncio
import re
import threading
from urllib.parse import quote

from sanic.response import empty

from domain.errors import NotFound
from handlers.bodies import bodiless
from models import File
from providers import storage as stores

#: Types a browser renders inline without running anything; every other type is served as a download.
INLINE = re.compile(r"^(image/(png|jpeg|gif|webp|bmp|avif|heic|heif)|audio/.+|video/.+|text/plain|application/pdf)$")


def store(request) -> stores.Storage:
    """The app's file store, made on first use."""
    ctx = request.app.ctx
    if getattr(ctx, "storage", None) is None:
        ctx.storage = stores.build(ctx.settings.files, ctx.settings.data_dir)
    return ctx.storage


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def disposition(file: File) -> str:
    """RFC 6266: inline for what a browser shows without running it, attachment for the rest; an ASCII
    `filename` and the real name in `filename*`."""
    kind = "inline" if INLINE.match(file.mime_type) else "attachment"
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in file.client_name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(file.client_name, safe='')}"


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """(start, length) of a single satisfiable range; None for the whole file; False when unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # not a single byte range (RFC 9110 §14.2: may be ignored)
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = min(_number(last), size)
        return (size - length, length) if length > 0 else False
    start = _number(first)
    end = min(_number(last), size - 1) if last else size - 1
    if start >= size or (last and _number(last) < start):
        return False
    return start, end - start + 1


def _number(digits: str) -> int:
    """A byte position; one longer than any file can be stands for "past the end"."""
    return int(digits) if len(digits) <= 18 else 10**18


async def send(request, file: File):
    etag = f'"{file.sha256}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff",
               "Content-Disposition": disposition(file), "Cache-Control": "private, no-cache"}
    wanted = request.headers.get("if-none-match", "")
    if wanted.strip() == "*" or etag in [tag.strip().removeprefix("W/") for tag in wanted.split(",")]:
        return empty(status=304, headers={"ETag": etag, "Cache-Control": headers["Cache-Control"]})
    span = byte_range(request.headers.get("range"), file.size)
    if span is False:
        return bodiless(416, {"Content-Range": f"bytes */{file.size}", **headers})
    start, length = span or (0, file.size)
    status = 206 if span else 200
    if span:
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{file.size}"
    headers["Content-Length"] = str(length)
    loop = asyncio.get_running_loop()
    try:  # a missing object shows at the call (S3) or at the first read (local)
        pieces = _Pieces(store(request).chunks(file.storage_key, start, length))
        piece = await loop.run_in_executor(None, pieces.next)
    except FileNotFoundError:
        raise NotFound("The file's contents are gone.") from None
    try:
        response = await request.respond(status=status, headers=headers, content_type=file.mime_type)
        while piece is not None:
            await response.send(piece)
            piece = await loop.run_in_executor(None, pieces.next)
        await response.eof()
    finally:
        # A download the client left: release the file or connection now, once any read under way ends.
        loop.run_in_executor(None, pieces.close)


class _Pieces:
    """A store's chunks read from pool threads: one read at a time, and a close that waits for it."""

    def __init__(self, chunks):
        self._chunks = chunks
        self._lock = threading.Lock()

    def next(self) -> bytes | None:
        with self._lock:
            return next(self._chunks, None)

    def close(self) -> None:
        with self._lock:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
