"""The home's private files: made readable by this user only, once, and tightened when an older home was loose."""

import logging
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)


def private_file(path: Path, content: str = "") -> bool:
    """Create `path` readable by this user only, unless it exists; the mode is set as it is made, never widened.

    The content is written to a draft first and linked into place, so a process starting at the same moment sees
    either no file or the whole of it, and never replaces it. True if this call made it.
    """
    if path.exists():
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(content)
    try:
        os.link(draft, path)
        return True
    except FileExistsError:
        return False  # another process made it first: that one is kept
    except OSError:  # a file system without hard links (SMB, some FUSE): a rename, which could replace a twin
        if path.exists():
            return False
        draft.rename(path)
        return True
    finally:
        draft.unlink(missing_ok=True)


def private_secret(path: Path) -> str:
    """A random secret made once and kept in `path` (mode 0600)."""
    private_file(path, secrets.token_urlsafe(50))
    secret = path.read_text().strip()
    if not secret:
        raise ImproperlyConfigured(f"{path} is empty: delete it, and a new secret is made at the next start")
    return secret


def make_private(folder: Path, files: list[Path]) -> None:
    """Take group and other permissions off the home (0700) and its secrets and database (0600), in one log line.

    Homes made by earlier releases, or copied with a loose umask, had the key and the database readable by all.
    """
    tightened = []
    for path, mode in [(folder, 0o700)] + [(file, 0o600) for file in files]:
        try:
            current = path.stat().st_mode & 0o777
        except OSError:
            continue  # not made yet
        if not current & 0o077:
            continue
        try:
            path.chmod(current & mode)
            tightened.append(f"{path} {current:04o} -> {current & mode:04o}")
        except PermissionError:
            tightened.append(f"{path} {current:04o} unchanged (another user's: run `chmod go= {path}` as its owner)")
    if tightened:
        logger.warning("took other users' access off the home's private files: %s", ", ".join(tightened))
