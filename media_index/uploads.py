"""Files uploaded into the inbox (POST /api/v1/assets): written aside, then linked in under a name no file holds.

The upload is written to a hidden partial file in its folder, which the watcher ignores (inbox.is_candidate), synced,
then hard-linked under its final name, so the watcher sees it once, complete. A link never replaces a file, so an
existing one is never overwritten: a clash takes `name (1).ext`, `name (2).ext`... Folders are opened (and made) one
step at a time without following a link (inbox.open_folder), so a link planted in the inbox cannot send it elsewhere.
"""

import contextlib
import errno
import logging
import os
import re
import unicodedata
import uuid
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from django.conf import settings

from . import inbox
from .models import PHOTO_SUFFIXES, VIDEO_SUFFIXES

logger = logging.getLogger(__name__)

ACCEPTED_SUFFIXES = PHOTO_SUFFIXES | VIDEO_SUFFIXES
DEFAULT_FOLDER = "uploads"
# A name's length in characters, and in bytes: file systems allow 255 bytes, and " (9999)" must still fit.
MAX_NAME_CHARS = 200
MAX_NAME_BYTES = 200
# Folder names are bounded by the file system alone.
MAX_FOLDER_NAME_BYTES = 255
# Names tried on a clash before giving up.
MAX_CLASHES = 10_000
# What link() fails with where the file system has no hard links.
NO_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV})
# Control and format characters (a right-to-left override can disguise a suffix), and line breaks of any kind.
UNWANTED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class UploadRefused(ValueError):
    """The upload's name or folder cannot be used: the message says what to send instead."""


def save_upload(chunks: Iterable[bytes], name: str, folder: str = DEFAULT_FOLDER) -> Path:
    """Write the upload into the inbox's folder under its cleaned name and return its path.

    1. Clean the name and check the folder (UploadRefused when they cannot be used).
    2. Open the folder, making what is missing, one step at a time without following a link.
    3. Write the bytes to a hidden partial file there and sync them.
    4. Link it in under the first free name, remove the partial name and sync the folder.
    Whatever fails, no partial file is left behind.
    """
    filename = clean_name(name)
    parts = folder_parts(folder)
    root = Path(settings.INBOX_DIR).resolve()
    if inbox.too_long(root.joinpath(*parts, filename)):
        raise UploadRefused(f"The path would be longer than {inbox.PATH_MAX_CHARS} characters: use a shorter folder.")
    try:
        directory = inbox.open_folder(root, parts, create=True)
    except inbox.LinkOnTheWay as error:
        raise UploadRefused(f"The folder {'/'.join(parts)!r} cannot be used: {error}.") from None
    partial = f".upload-{uuid.uuid4().hex}.part"
    try:
        try:
            _write(directory, partial, chunks)
            final = _link_in(directory, partial, filename)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial, dir_fd=directory)
        with contextlib.suppress(OSError):  # some file systems cannot sync a folder; the file is in place all the same
            os.fsync(directory)
    finally:
        os.close(directory)
    path = root.joinpath(*parts, final)
    logger.info("upload written to %s", path)
    return path


def clean_name(raw: str) -> str:
    """The upload's base name as it may be written: no folder, no leading dot, no control characters, at most
    MAX_NAME_CHARS characters (and MAX_NAME_BYTES in UTF-8), ending in a photo or video suffix."""
    name = re.split(r"[/\\]", unicodedata.normalize("NFC", raw))[-1]  # some browsers send a whole Windows path
    name = "".join(char for char in name if unicodedata.category(char) not in UNWANTED_CATEGORIES)
    name = name.strip().lstrip(".").strip()
    suffix = PurePosixPath(name).suffix
    if suffix.lower() not in ACCEPTED_SUFFIXES:
        accepted = " ".join(sorted(ACCEPTED_SUFFIXES))
        raise UploadRefused(f"{name[:80]!r} is not a photo or video by its suffix: send a file ending in {accepted}.")
    stem = name[: -len(suffix)]
    while len(stem) + len(suffix) > MAX_NAME_CHARS or len((stem + suffix).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem.rstrip() + suffix


def folder_parts(folder: str) -> tuple[str, ...]:
    """A folder relative to the inbox as its names ('' or '.' is the inbox itself); UploadRefused for an absolute
    one, one that climbs out (..), or one with control characters or names too long for the file system."""
    if any(unicodedata.category(char) in UNWANTED_CATEGORIES for char in folder):
        raise UploadRefused("The folder holds control characters: send a plain relative folder such as 'uploads'.")
    if folder.startswith("/"):
        raise UploadRefused("The folder must be relative to the inbox (such as 'uploads/2024'), not absolute.")
    parts = tuple(part for part in folder.split("/") if part not in ("", "."))
    if ".." in parts:
        raise UploadRefused("The folder must stay inside the inbox: '..' is not allowed.")
    if any(len(part.encode()) > MAX_FOLDER_NAME_BYTES for part in parts):
        raise UploadRefused(f"A folder name is longer than {MAX_FOLDER_NAME_BYTES} bytes: use shorter names.")
    return parts


def _write(directory: int, partial: str, chunks: Iterable[bytes]) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(partial, flags, 0o644, dir_fd=directory), "wb") as out:
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def _exists(directory: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _link_in(directory: int, partial: str, filename: str) -> str:
    """Link the partial file in under filename, or the first free `stem (n)suffix`; returns the name used."""
    suffix = PurePosixPath(filename).suffix
    stem = filename[: -len(suffix)]
    for number in range(MAX_CLASHES):
        candidate = f"{stem} ({number}){suffix}" if number else filename
        try:
            os.link(partial, candidate, src_dir_fd=directory, dst_dir_fd=directory, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno not in NO_LINKS:
                raise
            # A file system without hard links (some network and FUSE mounts): a rename after a check, which a
            # file made in between could lose to, the best such a file system allows.
            if _exists(directory, candidate):
                continue
            os.rename(partial, candidate, src_dir_fd=directory, dst_dir_fd=directory)
        return candidate
    raise UploadRefused(f"{MAX_CLASHES} files named like {filename!r} are there already: rename the upload.")
