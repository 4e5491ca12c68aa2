"""Reading an upload as it arrives: the multipart parts of a request body (python-multipart), the
`file` part written into a staging file while it is counted, hashed and its first bytes kept, and what
the bytes are (sniffed, never taken from the client)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import filetype
import python_multipart
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from domain.errors import Invalid, PayloadTooLarge

#: The most the small fields (`meta`, `visibility`) may take.
META_BYTES = 4096
#: Bytes the content type is sniffed from.
SNIFF_BYTES = 8192
FILE_REQUIRED = "The file field is required."
NOT_A_FILE = "The file field must be a file."


def sniff(head: bytes) -> str:
    """The content type of a file from its first bytes: magic numbers, then markup, then text."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:256].lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe")):
        return "text/html"
    if start.startswith(b"<svg") or (start.startswith(b"<?xml") and b"<svg" in head.lower()):
        return "image/svg+xml"
    if start.startswith(b"<?xml"):
        return "application/xml"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as e:
            if e.start >= len(head) - 3:  # a character cut by the end of the sniffed bytes
                return "text/plain"
    return "application/octet-stream"


def clean_name(name: str | None) -> str:
    """A client's file name as data: its last path part, no control characters, at most 255 characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] if name not in ("", ".", "..") else "file"


class Upload:
    """What the multipart parser hands over, part by part: the `file` into `path`, the small fields kept."""

    def __init__(self, path: Path, max_bytes: int):
        self.path, self.max_bytes = path, max_bytes
        self.fields: dict[str, str] = {}
        self.saw_file = False
        self.file_name: str | None = None
        self.size = 0
        self.digest = hashlib.sha256()
        self.head = bytearray()
        self._out = None
        self._headers: dict[bytes, bytes] = {}
        self._header = b""
        self._pending_value = b""
        self._part: str | None = None
        self._value = bytearray()

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._field, "on_header_value": self._value_of,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done,
                "on_part_data": self._data, "on_part_end": self._end}

    def _begin(self):
        self._headers, self._header, self._part, self._value = {}, b"", None, bytearray()
        self._pending_value = b""

    def _field(self, data, start, end):
        self._header += data[start:end]

    def _value_of(self, data, start, end):
        self._pending_value += data[start:end]

    def _header_end(self):
        self._headers[self._header.lower()] = self._pending_value
        self._header, self._pending_value = b"", b""

    def _headers_done(self):
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._part = options.get(b"name", b"").decode("utf-8", "replace")
        if self._part == "file" and self._out is None:
            self.saw_file = True
            name = options.get(b"filename")
            self.file_name = None if name is None else name.decode("utf-8", "replace")
            self._out = open(self.path, "wb")
        elif self._part == "file":
            self._part = None  # a second file: ignored

    def _data(self, data, start, end):
        piece = data[start:end]
        if self._part == "file":
            self.size += len(piece)
            if self.size > self.max_bytes:
                raise PayloadTooLarge(f"The file may be at most {self.max_bytes} bytes.")
            self.digest.update(piece)
            if len(self.head) < SNIFF_BYTES:
                self.head += piece[:SNIFF_BYTES - len(self.head)]
            self._out.write(piece)
        elif self._part and len(self._value) + len(piece) <= META_BYTES + 1024:
            self._value += piece
        elif self._part:
            raise Invalid("The given data was invalid.", {self._part: [f"The {self._part} field is too long."]})

    def _end(self):
        if self._part and self._part != "file":
            self.fields[self._part] = self._value.decode("utf-8", "replace")

    def close(self):
        if self._out is not None:
            self._out.close()


def parser_for(request, upload: Upload) -> python_multipart.MultipartParser:
    """The multipart parser for this request's boundary; 422 for a body that is not multipart."""
    try:
        content_type, options = parse_options_header(request.headers.get("content-type", ""))
        if content_type == b"multipart/form-data" and options.get(b"boundary"):
            return python_multipart.MultipartParser(options[b"boundary"], upload.callbacks())
    except (UnicodeError, FormParserError):  # a boundary outside Latin-1, or longer than 256 characters
        pass
    raise Invalid(FILE_REQUIRED, {"file": [FILE_REQUIRED]})
