"""Limits on hostile input that apply before any app code: request bodies by size, JPEGs by their number of scans."""

import io
import logging
import re
from typing import BinaryIO

from django.conf import settings
from django.http import HttpResponse

logger = logging.getLogger(__name__)

# A Content-Length with more digits than this is larger than any limit, and is not converted (int() refuses
# strings of 4,300 digits or more).
MAX_DIGITS = 18


class RequestSizeLimitMiddleware:
    """Refuse a request body over MAX_REQUEST_BYTES with 413, before anything reads it, signed in or not.

    A body without a Content-Length (chunked) gets 411: Django reads no such body under WSGI, and saying so
    beats a form that silently arrives empty.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH", "").strip()
        if declared.isascii() and declared.isdigit() and _over(declared, settings.MAX_REQUEST_BYTES):
            logger.warning("refused a %s body of %s bytes for %s", request.method, declared[:30], request.path[:200])
            limit = settings.MAX_UPLOAD_BYTES // (1024 * 1024)
            return HttpResponse(
                f"The upload is larger than {limit} MB (REVSEARCH_MAX_UPLOAD_MB): send a smaller photo.\n",
                status=413,
                content_type="text/plain; charset=utf-8",
            )
        if not declared and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return HttpResponse(
                "Send the upload with a Content-Length.\n", status=411, content_type="text/plain; charset=utf-8"
            )
        return self.get_response(request)


def _over(digits: str, limit: int) -> bool:
    digits = digits.lstrip("0")
    return len(digits) > MAX_DIGITS or int(digits or "0") > limit


# A marker in entropy-coded data: 0xFF followed by neither a stuffed zero, a restart marker nor fill.
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_BLOCK = 256 * 1024
_SOS, _EOI = 0xDA, 0xD9
# Cameras and editors write tens of segments; each is walked in Python, so a file of millions is refused.
MAX_SEGMENTS = 10_000


def jpeg_scans(stream: BinaryIO, stop_after: int) -> int:
    """How many scans (SOS segments) the first image of a JPEG has, counting no further than stop_after.

    1. Walk the marker segments from the start, skipping each by its length (so a thumbnail inside EXIF is not
       counted).
    2. After each SOS, skip the entropy-coded data to the next marker.
    3. Stop at the end of the image, at stop_after scans, or where the file stops making sense (the decoder
       reports that). The stream's position is kept. More than MAX_SEGMENTS segments raise ValueError.
    """
    position = stream.tell()
    try:
        stream.seek(0)
        if stream.read(2) != b"\xff\xd8":
            return 0
        scans = 0
        for _ in range(MAX_SEGMENTS):
            if scans >= stop_after:
                break
            marker = _next_marker(stream)
            if marker is None or marker == _EOI:
                break
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers carry no length
                continue
            head = stream.read(2)
            length = int.from_bytes(head, "big")
            if len(head) < 2 or length < 2:
                break
            stream.seek(length - 2, io.SEEK_CUR)
            if marker == _SOS:
                scans += 1
                if not _skip_entropy_coded(stream):
                    break
        else:
            raise ValueError(f"the JPEG has more than {MAX_SEGMENTS:,} marker segments")
        return scans
    finally:
        stream.seek(position)


def _next_marker(stream: BinaryIO) -> int | None:
    """The code of the marker at the stream's position (fill bytes skipped), or None if there is none."""
    if stream.read(1) != b"\xff":
        return None
    while True:
        start = stream.tell()
        block = stream.read(4096)
        if not block:
            return None
        if code := block.lstrip(b"\xff"):
            stream.seek(start + len(block) - len(code) + 1)
            return code[0]


def _skip_entropy_coded(stream: BinaryIO) -> bool:
    """Move to the next marker after a scan's coded data; False at the end of the stream."""
    while True:
        start = stream.tell()
        block = stream.read(_BLOCK)
        if len(block) < 2:
            return False
        if found := _MARKER.search(block):
            stream.seek(start + found.start())
            return True
        # A marker may straddle the block's end: the next block starts at this one's last byte.
        stream.seek(start + len(block) - 1)
