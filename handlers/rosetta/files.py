"""RosettaChat files: staged uploads, their metadata and downloads, the uploader's list, and the
downloads of message attachments.

An upload streams: the multipart body is parsed as it arrives (uploads.py) into a file under the
staging dir, counted against `[files] max_bytes` (413 the moment it passes), hashed and sniffed on the
way, then handed to the store (providers/storage.py) and recorded through the write path. The content
type comes from the bytes, never from the client; the client's name is kept only as data. Downloads
stream from the store with ETag, If-None-Match and one Range (downloads.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json as stdjson
import secrets
import uuid

import msgspec
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartState
from sanic import Blueprint
from sanic.response import empty

from domain import commands as c
from domain import files
from domain.errors import Forbidden, Invalid, NotFound, PayloadTooLarge
from domain.search import contains
from handlers.bodies import json, path_ulid
from handlers.rosetta import downloads
from handlers.rosetta import resources as r
from handlers.rosetta.forms import Field, query, validate
from handlers.rosetta.guard import signed_in
from handlers.rosetta.paging import paginate
from handlers.rosetta.schemas import stamp
from handlers.rosetta.uploads import FILE_REQUIRED, META_BYTES, NOT_A_FILE, Upload, clean_name, parser_for, sniff
from handlers.writing import claim_ids, write
from models import Attachment, Channel, File, Message, ulid_of, utcnow
from providers import storage as stores

bp = Blueprint("rosetta_files", strict_slashes=False)

#: Room for the multipart framing and the small fields beside the file.
OVERHEAD_BYTES = 64 * 1024
#: Bytes of an upload parsed (hashed, written) at a time, in a thread.
PARSE_BYTES = 256 * 1024
FILE_NOT_FOUND = "File not found."

LIST = {
    "claimed": Field(one_of=("true", "false", "1", "0"), example="true",
                     description="`true` (the default): files attached to a message; `false`: still staged."),
    "visibility": Field(one_of=("public", "private"), example="private", description="Only files of this visibility."),
    "q": Field(max=255, example="invoice", description="A substring of the client file name (any case)."),
    "sort": Field(one_of=("created_at", "-created_at", "size", "-size"), example="-created_at",
                  description="`-created_at` (the default), `created_at`, `size` or `-size`."),
    "per_page": Field(type="integer", min=1, max=100, description="Items a page; 15 when absent.", example=15),
    "page": Field(type="integer", min=1, max=1_000_000, description="The page, from 1.", example=1),
}
UPLOAD = {
    "visibility": Field(one_of=("public", "private"), nullable=True, example="private",
                        description="`public` (anyone signed in with the id) or `private` (the uploader and the "
                                    "readers of the messages it is attached to); the deployment's default when absent."),
    "meta": Field(nullable=True, max_bytes=META_BYTES, example='{"album": "trip"}',
                  description="A JSON object (at most 4 KiB) kept with the file."),
}


def resource(file: File) -> r.FileResource:
    return r.FileResource(ulid_of(file.id), file.client_name, file.size, file.mime_type, file.visibility, file.sha256,
                          stdjson.loads(file.meta) if file.meta else None, file.claimed_at is not None,
                          stamp(file.expires_at), stamp(file.created_at),
                          f"/api/v1/files/{ulid_of(file.id)}/download")


@bp.post("/files", stream=True)
@signed_in(guest=True)
async def upload_file(request):
    config = request.app.ctx.settings.files
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > config.max_bytes + OVERHEAD_BYTES:
        raise _too_large(request, config.max_bytes)
    key = secrets.token_hex(16)
    path = stores.staging_dir(request.app.ctx.settings.data_dir) / key
    upload = Upload(path, config.max_bytes)
    viewer = request.ctx.user
    try:
        parser = parser_for(request, upload)
        loop = asyncio.get_running_loop()
        received, pending = 0, bytearray()
        # Parsing, hashing and writing the staging file run in a thread, 256 KiB at a time: a disk that
        # is slow to take the bytes then never holds up the other requests on this event loop.
        async for chunk in request.stream:
            received += len(chunk)
            if received > config.max_bytes + OVERHEAD_BYTES:
                raise _too_large(request, config.max_bytes)
            pending += chunk
            if len(pending) >= PARSE_BYTES:
                await _parse(request, loop, parser, pending, config.max_bytes)
                pending = bytearray()
        await _parse(request, loop, parser, pending, config.max_bytes)
        parser.finalize()
        if parser.state != MultipartState.END:  # cut off before the closing boundary
            raise Invalid(NOT_A_FILE, {"file": [NOT_A_FILE]})
        upload.close()
        fields = _upload_fields(upload, config.default_visibility)
        mime_type = sniff(bytes(upload.head))
        # A repeated Idempotency-Key must name the same file: the streamed body stands in as its digest.
        ids = await claim_ids(request, f"user:{viewer.id}", "id", fingerprint=hashlib.sha256(stdjson.dumps(
            [upload.digest.hexdigest(), upload.size, upload.file_name, fields]).encode()).hexdigest())
        file_id = uuid.UUID(ids["id"])
        if File.get_or_none(File.id == file_id) is None:  # else a retry of an upload already recorded
            await loop.run_in_executor(None, downloads.store(request).put, key, path, mime_type)
    except FormParserError:
        raise Invalid(NOT_A_FILE, {"file": [NOT_A_FILE]}) from None
    finally:
        upload.close()
        path.unlink(missing_ok=True)
    now = utcnow()
    command = files.StageFile(command_id=ids["command_id"], file_id=file_id, uploader_id=viewer.id,
                              client_name=clean_name(upload.file_name), mime_type=mime_type, size=upload.size,
                              sha256=upload.digest.hexdigest(), visibility=fields["visibility"], meta=fields["meta"],
                              storage_key=key, at=now, expires_at=now + dt.timedelta(seconds=config.staged_ttl_s))
    return await write(request, command, location=f"/api/v1/files/{ulid_of(command.file_id)}",
                       render=lambda: json(r.FileOne(resource(File.get_by_id(command.file_id))), status=201))


async def _parse(request, loop, parser, data: bytearray, max_bytes: int) -> None:
    try:
        await loop.run_in_executor(None, parser.write, data)
    except PayloadTooLarge:
        raise _too_large(request, max_bytes) from None


def _too_large(request, max_bytes: int) -> PayloadTooLarge:
    """The 413 of an upload refused part way: the rest of its body is not read, so the connection closes
    after the answer (and says so) rather than be reused with unread bytes in it."""
    request.stream.keep_alive = False
    return PayloadTooLarge(f"The file may be at most {max_bytes} bytes.")


def _upload_fields(upload: Upload, default_visibility: str) -> dict:
    if not upload.saw_file:
        raise Invalid(FILE_REQUIRED, {"file": [FILE_REQUIRED]})
    if upload.file_name is None:  # a `file` field that is not a file (no filename)
        raise Invalid(NOT_A_FILE, {"file": [NOT_A_FILE]})
    fields = validate(upload.fields, UPLOAD)
    meta = fields.get("meta")
    if meta is not None:
        try:  # strict JSON: no NaN, no numbers out of range, and nesting deeper than a stack is an error too
            parsed = msgspec.json.decode(meta)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            parsed = None
        if not isinstance(parsed, dict):
            raise Invalid("The meta field must be a JSON object.", {"meta": ["The meta field must be a JSON object."]})
        meta = msgspec.json.encode(parsed).decode()
    return {"visibility": fields.get("visibility") or default_visibility, "meta": meta}


def _room_channel(request):
    """A guest caller's room channel, the only one whose files it may read; None for anyone else."""
    return request.ctx.guest.room.channel_id if request.ctx.guest is not None else None


def _readable(request, file_id: str) -> File:
    found = File.get_or_none(File.id == path_ulid(file_id, FILE_NOT_FOUND))
    if found is None or not files.readable(request.ctx.user.id, found, _room_channel(request)):
        raise NotFound(FILE_NOT_FOUND)
    return found


@bp.get("/files/<file_id:str>")
@signed_in(guest=True)
async def show_file(request, file_id):
    return json(r.FileOne(resource(_readable(request, file_id))))


@bp.delete("/files/<file_id:str>")
@signed_in
async def delete_file(request, file_id):
    found = _readable(request, file_id)
    if found.uploader_id != request.ctx.user.id:
        raise Forbidden("Only the uploader may delete a file.")
    command = files.DeleteFile(command_id=c.new_command_id(), file_id=found.id, at=utcnow())
    return await write(request, command, render=lambda: empty(status=204))


@bp.get("/files/<file_id:str>/download")
@signed_in(guest=True)
async def download_file(request, file_id):
    return await downloads.send(request, _readable(request, file_id))


def _attached(request, attachment_id: str, direct: bool) -> File:
    missing = "Attachment not found."
    row = (Attachment.select(Attachment, File, Message, Channel).join(File).switch(Attachment).join(Message)
           .join(Channel).where((Attachment.id == path_ulid(attachment_id, missing)) & Message.deleted_at.is_null()
                                & (Channel.kind == "direct" if direct else Channel.kind != "direct")).first())
    if row is None or row.file.deleted_at is not None \
            or _room_channel(request) not in (None, row.message.channel_id) \
            or not files.may_read_message_of(request.ctx.user.id, row.message.channel):
        raise NotFound(missing)
    return row.file


@bp.get("/message-attachments/<attachment_id:str>/download")
@signed_in(guest=True)
async def download_message_attachment(request, attachment_id):
    return await downloads.send(request, _attached(request, attachment_id, direct=False))


@bp.get("/direct-message-attachments/<attachment_id:str>/download")
@signed_in
async def download_direct_attachment(request, attachment_id):
    return await downloads.send(request, _attached(request, attachment_id, direct=True))


@bp.get("/me/files")
@signed_in
async def list_my_files(request):
    form = validate(query(request), LIST)
    rows = File.select().where((File.uploader == request.ctx.user.id) & File.deleted_at.is_null())
    claimed = form.get("claimed", "true") in ("true", "1")
    rows = rows.where(File.claimed_at.is_null(False) if claimed else File.claimed_at.is_null())
    if form.get("visibility"):
        rows = rows.where(File.visibility == form["visibility"])
    if form.get("q"):
        rows = rows.where(contains(File.client_name, form["q"]))
    sort = form.get("sort", "-created_at")
    column = File.size if sort.endswith("size") else File.created_at
    rows = rows.order_by(column.desc() if sort.startswith("-") else column, File.id.desc())
    keep = {name: form[name] for name in ("claimed", "visibility", "q", "sort") if name in form}
    items, meta, links = paginate(request, rows, resource, keep=keep)
    return json(r.FileList(items, meta, links))
