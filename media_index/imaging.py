"""Photo decoding shared by ingestion and search: upright RGB, refusing formats and sizes that could hurt."""

import io
import re
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, cast
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

PILLOW_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO"}
# EXIF: the sub-directory with the capture details, and its two dates (TIFF/EXIF 2.3 tag numbers).
EXIF_IFD, DATE_TIME_ORIGINAL, DATE_TIME_DIGITIZED = 0x8769, 36867, 36868


class UnreadablePhoto(Exception):
    """The file is not a photo that can be decoded; the message says why."""


def open_photo(
    path: Path | BinaryIO, max_pixels: int | None = None, pixels_setting: str = "REVSEARCH_MAX_IMAGE_PIXELS"
) -> Image.Image:
    """Decode a photo upright (EXIF orientation applied) as RGB, refusing decompression bombs.

    Checked on the header before any pixel is decoded: at most max_pixels (MAX_IMAGE_PIXELS unless given, named
    by pixels_setting in the refusal), and for a JPEG at most MAX_JPEG_SCANS scans (each scan decodes the whole
    photo once more).
    """
    # Our own limit replaces Pillow's warning.
    Image.MAX_IMAGE_PIXELS = None
    limit = settings.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with Image.open(path) as image:
            if image.format not in PILLOW_FORMATS:
                raise UnreadablePhoto(f"{image.format} is not a supported photo format")
            if image.width * image.height > limit:
                raise UnreadablePhoto(
                    f"{image.width}x{image.height} is over the limit of {limit:,} pixels ({pixels_setting})"
                )
            scans = settings.MAX_JPEG_SCANS
            # An open image keeps its file in fp.
            if image.format in ("JPEG", "MPO") and jpeg_scans(cast(BinaryIO, image.fp), stop_after=scans + 1) > scans:
                raise UnreadablePhoto(
                    f"the JPEG has more than {scans} progressive scans, which would take long to decode:"
                    " save it again as a baseline JPEG (or raise REVSEARCH_MAX_JPEG_SCANS)"
                )
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except FileNotFoundError:
        raise
    except UnidentifiedImageError as error:
        # Pillow's own message names the file object, which says nothing to a reader.
        raise UnreadablePhoto("cannot decode the photo: it is not in a format Pillow reads") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise UnreadablePhoto(f"cannot decode the photo: {error}") from error


def taken_at(image: Image.Image) -> float | None:
    """When the photo was taken, from its EXIF DateTimeOriginal (else DateTimeDigitized), as Unix seconds; None when
    it does not say or says nonsense. EXIF has no time zone: the camera's clock is read in settings.TIME_ZONE."""
    try:
        exif = image.getexif().get_ifd(EXIF_IFD)
        text = exif.get(DATE_TIME_ORIGINAL) or exif.get(DATE_TIME_DIGITIZED)
        moment = datetime.strptime(str(text).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except (TypeError, ValueError, KeyError, OSError, SyntaxError):
        return None
    if not 1900 <= moment.year <= 2200:
        return None
    return moment.replace(tzinfo=ZoneInfo(settings.TIME_ZONE)).timestamp()


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB; 16-bit and 32-bit grey is scaled down, which Pillow's convert would clip to white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(values * (255.0 / top), 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


def jpeg(image: Image.Image, longest_side: int | None = None) -> bytes:
    """A JPEG of the image, shrunk to longest_side when given."""
    if longest_side:
        image = image.copy()
        image.thumbnail((longest_side, longest_side))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


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
