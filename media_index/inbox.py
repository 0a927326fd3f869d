"""The inbox's files: walked without recursion, each path checked before anything reads it.

Whoever can write into the inbox can put anything there: folders thousands deep, links to anywhere or to
themselves, FIFOs, names that are not UTF-8 or longer than the database holds. The walk never recurses (Python 3.11's
os.walk and Path.rglob do, and a folder 1,200 deep raised RecursionError), holds one folder's names at a time,
follows no link to a folder, and reports each odd path once with the reason instead of raising.
"""

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

# Names that editors, browsers and copy tools use for files still being written.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".swp")
# Asset.path's length in the database; a longer path is recorded under a shortened stand-in.
PATH_MAX_CHARS = 1024
LONG_FOLDER = f"the path is longer than {PATH_MAX_CHARS} characters; nothing in it is read"
# A folder with more entries than this is walked all the same, and said once in the log (it slows every pass).
CROWDED_FOLDER = 10_000


@dataclass(frozen=True)
class Refusal:
    """A path that is not read: `text` is how it is recorded (always valid UTF-8, at most PATH_MAX_CHARS)."""

    path: Path
    text: str
    reason: str
    is_file: bool


def is_candidate(path: Path) -> bool:
    """Whether a file in the inbox should become an asset: hidden and half-written files should not."""
    return not path.name.startswith(".") and not path.name.lower().endswith(PARTIAL_SUFFIXES)


def path_text(path: Path | str) -> str:
    """The path as the database can hold it: bytes that are not UTF-8 as \\xNN, a too-long path shortened."""
    raw = os.fsencode(path)
    text = raw.decode("utf-8", errors="backslashreplace")
    if len(text) > PATH_MAX_CHARS:
        # Head and tail keep it recognisable; the digest of the whole keeps two long paths apart.
        digest = hashlib.sha256(raw).hexdigest()[:16]
        text = f"{text[:600]}…[{digest}]…{text[-380:]}"
    return text


def too_long(path: Path | str | bytes) -> bool:
    """Whether the path is longer than the database can record."""
    return len(os.fsencode(path).decode("utf-8", errors="backslashreplace")) > PATH_MAX_CHARS


def refusal(path: Path) -> Refusal | None:
    """Why a path in the inbox must not be read, or None when it is a regular file (or a link to one)."""
    text = path_text(path)
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(path, text, f"{text}: the name is not valid UTF-8; rename it", True)
    if too_long(path):
        return Refusal(path, text, f"{text}: the path is longer than {PATH_MAX_CHARS} characters; move it up", True)
    try:
        info = os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return Refusal(path, text, f"{text}: a loop of links", True)
        if error.errno == errno.ENOENT:
            return Refusal(path, text, f"{text}: a link to nothing", False)
        return Refusal(path, text, f"{text}: cannot be read ({error.strerror})", True)
    if stat.S_ISDIR(info.st_mode):
        return Refusal(path, text, f"{text}: a link to a folder is not followed", False)
    if not stat.S_ISREG(info.st_mode):
        return Refusal(path, text, f"{text}: not a regular file ({_file_type(info.st_mode)})", True)
    return None


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device")):
        if test(mode):
            return name
    return "a block device" if stat.S_ISBLK(mode) else "a special file"


def walk(root: Path, problem: Callable[[Path, str], None] | None = None) -> Iterator[Path]:
    """Every candidate path under root (files, and links or special files for `refusal` to judge), in a stable order.

    Depth first with a stack of folder paths, one folder's entries in memory at a time; links to folders are not
    followed (so no loop of links can trap it). An unreadable folder is reported through `problem` and skipped.
    """
    report = problem or (lambda path, reason: logger.warning("%s: %s", path_text(path), reason))
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                names = sorted((entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries)
        except OSError as error:
            if folder == root:
                raise
            report(folder, f"folder not read ({error.strerror}); check its permissions")
            continue
        if len(names) > CROWDED_FOLDER:
            logger.info("%s holds %d entries", path_text(folder), len(names))
        subfolders = []
        for name, is_dir in names:
            path = folder / name
            if is_dir and too_long(path):
                report(path, LONG_FOLDER)
            elif is_dir:
                subfolders.append(path)
            elif is_candidate(path):
                yield path
        pending.extend(reversed(subfolders))


def walk_folders(top: bytes | str, followlinks: bool = False) -> Iterator[tuple]:
    """os.walk's top-down output without recursion, for watchdog's inotify emitter (errors skip a folder).

    Folders whose paths are too long to record are listed but not entered: nothing in them is read (the watcher
    says so once), and a tree thousands deep costs no more than its first levels.
    """
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                listed: list[os.DirEntry] = list(entries)
        except OSError:
            continue
        folders = [entry.name for entry in listed if entry.is_dir(follow_symlinks=followlinks)]
        files = [entry.name for entry in listed if not entry.is_dir(follow_symlinks=followlinks)]
        yield folder, folders, files
        below = [os.path.join(folder, name) for name in reversed(folders)]
        pending.extend(path for path in below if not too_long(path))


class Escape(Exception):
    """A file that is now a link, or reached through one, to somewhere outside the folder it must stay in."""


def open_inside(path: Path, root: Path | None) -> BinaryIO:
    """Open a file to read it, refusing a link at its last step, and one whose real path has left root.

    The check is made on the open descriptor, so nothing can be swapped in between; it is what the worker does
    before it decodes an asset (a photo swapped for a link after it was registered is not read), and what every
    file view does before it serves one (search.http.open_servable). Without a root
    (a file registered from elsewhere with `ingest`) only the link at the last step is refused.
    """
    try:
        # O_NOFOLLOW: a link at the last step is refused (ELOOP); O_NONBLOCK: a FIFO does not hang the open.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise Escape("it has become a link: it is not read") from None
        raise
    stream = os.fdopen(descriptor, "rb")
    try:
        real = Path(os.readlink(f"/proc/self/fd/{descriptor}"))
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise Escape("it is not a regular file: it is not read")
        if root is not None and not real.is_relative_to(root.resolve()):
            raise Escape(f"it leads to {path_text(real)}, outside the inbox: it is not read")
        os.set_blocking(descriptor, True)
    except BaseException:
        stream.close()
        raise
    return stream


def inbox_of(path: Path) -> Path | None:
    """The inbox when the path is in it (such a file must stay in it when read), else None."""
    from django.conf import settings

    return settings.INBOX_DIR if Path(path).is_relative_to(settings.INBOX_DIR) else None


def open_for_writing(path: Path) -> bool:
    """Whether some process holds the file open for writing; False when the system cannot tell.

    The kernel refuses a read lease on a file that anyone has open for writing (fcntl(2), F_SETLEASE); the
    lease is given back at once. Leases need the file's owner (or CAP_LEASE) and a local file system.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as error:
        return error.errno == errno.EAGAIN
    else:
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(descriptor)


class LinkOnTheWay(Exception):
    """A folder on the way is a link, or not a folder: it is not followed."""


def open_folder(root: Path, parts: tuple[str, ...], create: bool = False) -> int:
    """A descriptor of the folder root/parts..., each step opened relative to the one above without following a link
    (so no link, even one swapped in meanwhile, leads out of root); missing folders are made when `create`.

    Raises LinkOnTheWay for a link or a file on the way, OSError for anything else; the caller closes the descriptor.
    """
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise ValueError(f"{part!r} is not a folder name")
            try:
                inner = _open_step(part, folder)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # another upload made it first
                    os.mkdir(part, 0o755, dir_fd=folder)
                inner = _open_step(part, folder)
            os.close(folder)
            folder = inner
    except BaseException:
        os.close(folder)
        raise
    return folder


def _open_step(part: str, parent: int) -> int:
    try:
        return os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LinkOnTheWay(f"{part} is a link or a file, not a folder: it is not followed") from None
        raise


def unlink_inside(path: Path, root: Path) -> str:
    """Delete the regular file at path when it is inside root (the inbox): '' when done, else why it was kept.

    Every folder is opened relative to the one above with O_NOFOLLOW (open_folder), and the file unlinked relative to
    its folder, so no link (of a folder or of the file) is followed out of root, even if one is swapped in meanwhile.
    """
    root = root.resolve()  # assets' paths are stored resolved (intake.register_path)
    if not path.is_absolute() or not path.is_relative_to(root):
        return "outside the inbox: never deleted; delete it by hand if needed"
    parts = path.relative_to(root).parts
    if not parts or any(part in (".", "..") for part in parts):
        return "not a plain path inside the inbox: kept"
    try:
        folder = open_folder(root, parts[:-1])
        try:
            info = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                return "a link: neither it nor what it points at was deleted; delete them by hand if needed"
            if not stat.S_ISREG(info.st_mode):
                return "not a regular file: kept"
            os.unlink(parts[-1], dir_fd=folder)
        finally:
            os.close(folder)
    except LinkOnTheWay:
        return "a folder on its way is a link: not followed, file kept"
    except OSError as error:
        if error.errno == errno.ENOENT:
            return "already gone from the inbox"
        return f"could not be deleted ({error.strerror}); check its permissions and delete it by hand"
    logger.info("deleted %s", path)
    return ""
