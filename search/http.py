"""Serving users' files safely: what may be served, opened without following links, with byte ranges for videos."""

import logging
import os
import re
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase

from media_index import inbox
from media_index.models import Asset

logger = logging.getLogger(__name__)

# Content types by suffix: a file with any other suffix is never served, whatever its bytes are.
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".m4v": "video/x-m4v",
}
ASSET_TYPES = IMAGE_TYPES | VIDEO_TYPES
QUERY_TYPES = {".jpg": "image/jpeg"}
# On every response that carries a user's file: the browser takes the type as sent (never sniffs HTML in it), and a
# file opened on its own is a sandboxed page that may load and run nothing.
FILE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}
CHUNK = 64 * 1024


def is_servable(asset: Asset) -> bool:
    """Whether an asset's file may be served at all: photos and videos the archive accepted."""
    return asset.kind in (Asset.Kind.IMAGE, Asset.Kind.VIDEO) and asset.status != Asset.Status.UNSUPPORTED


def asset_response(request: HttpRequest, asset: Asset) -> HttpResponseBase:
    """An asset's original file from the inbox, byte ranges honoured so that videos seek; 404 unless servable."""
    if not is_servable(asset):
        raise Http404(f"{asset.name} is not served: it is not a photo or video the archive accepted.")
    stream, content_type = open_servable(Path(asset.path), settings.INBOX_DIR, ASSET_TYPES)
    return file_response(request, stream, content_type, filename=os.fsencode(asset.name).decode("utf-8", "replace"))


def media_response(request: HttpRequest, relative: str) -> HttpResponseBase:
    """A face crop, frame thumbnail or preview from MEDIA_ROOT (all JPEGs this service wrote)."""
    root = Path(settings.MEDIA_ROOT)
    stream, content_type = open_servable(root / relative, root, IMAGE_TYPES)
    return file_response(request, stream, content_type)


def query_photo_response(request: HttpRequest, path: Path) -> HttpResponseBase:
    """An uploaded query photo, as kept in QUERY_DIR."""
    stream, content_type = open_servable(path, Path(settings.QUERY_DIR), QUERY_TYPES)
    return file_response(request, stream, content_type)


def open_servable(path: Path, root: Path, types: dict[str, str]) -> tuple[BinaryIO, str]:
    """Open a user's file to serve it and say its content type, or raise Http404.

    1. Its suffix must be one of types, which gives the content type.
    2. Its path must lie under root as written, so nothing elsewhere is even opened.
    3. It is opened as the worker opens what it indexes (inbox.open_inside): without following a link at its last
       step, without waiting on a FIFO, and then, on the open descriptor so that nothing can be swapped in
       between, it must be a regular file whose real path is inside root (a link anywhere along the path).
    """
    content_type = types.get(path.suffix.lower())
    if content_type is None:
        raise Http404(f"{path.name}: this kind of file is not served.")
    real_root = root.resolve()
    written = Path(os.path.normpath(path))
    if not written.is_absolute() or not (written.is_relative_to(root) or written.is_relative_to(real_root)):
        # E.g. an asset `ingest` registered from another folder: searchable, its original not served.
        logger.info("not served: %s is outside %s", written, root)
        raise Http404(f"{path.name}: only files inside {root.name}/ are served.")
    try:
        return inbox.open_inside(written, root), content_type
    except inbox.Escape as refused:
        logger.warning("not served: %s: %s", written, refused)
        raise Http404(f"{path.name} is not there.") from None
    except (OSError, ValueError):  # ValueError: a NUL in the path
        raise Http404(f"{path.name} is not there.") from None


class _FileResponse(FileResponse):
    block_size = CHUNK


def file_response(request: HttpRequest, stream: BinaryIO, content_type: str, filename: str = "") -> HttpResponseBase:
    """The open file whole (200), or the one byte range asked for (206; 416 if it starts past the end).

    The response owns the stream and closes it; every answer carries FILE_HEADERS.
    """
    size = os.fstat(stream.fileno()).st_size
    # If-Range asks for the range only if the file is unchanged, which this service gives no validator to tell.
    header = "" if "If-Range" in request.headers else request.headers.get("Range", "")
    try:
        wanted = byte_range(header, size)
    except Unsatisfiable:
        stream.close()
        response: HttpResponseBase = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    else:
        if wanted is None:
            response = _FileResponse(stream, content_type=content_type, filename=filename)
        else:
            first, last = wanted
            stream.seek(first)
            response = _FileResponse(
                _Slice(stream, last - first + 1), status=206, content_type=content_type, filename=filename
            )
            response["Content-Range"] = f"bytes {first}-{last}/{size}"
            response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    for name, value in FILE_HEADERS.items():
        response[name] = value
    return response


class _Slice:
    """The next `length` bytes of an open file, read as FileResponse reads a file (no seek: it must not measure)."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self.stream, self.left = stream, length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        block = self.stream.read(self.left if size is None or size < 0 else min(size, self.left))
        self.left -= len(block)
        return block

    def close(self) -> None:
        self.stream.close()


class Unsatisfiable(Exception):
    """A valid Range that starts past the end of the file (416)."""


RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE)
# A position with more digits than this is past the end of any file, and is not converted (int() refuses strings of
# 4,300 digits or more).
MAX_DIGITS = 18


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The one range (first, last byte, inclusive) a Range header asks for, or None for the whole file.

    As RFC 9110 (14.2) allows, a header that is not one valid byte range (garbage, several ranges, last before
    first) is ignored: the whole file. A valid one that starts past the end raises Unsatisfiable. Never raises
    anything else, whatever the header.
    """
    match = RANGE.fullmatch(header.strip())
    if not match or size <= 0:
        return None
    first, last = (_position(digits) for digits in match.groups())
    if first is None and last is None:
        return None
    if first is None:  # "bytes=-N": the last N bytes
        assert last is not None  # both None returned above
        if last == 0:
            raise Unsatisfiable
        return max(size - last, 0), size - 1
    if last is not None and last < first:
        return None
    if first >= size:
        raise Unsatisfiable
    return first, size - 1 if last is None else min(last, size - 1)


def _position(digits: str) -> int | None:
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= MAX_DIGITS else 10**MAX_DIGITS
