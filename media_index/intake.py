"""Intake: a file in the inbox becomes an Asset row (new, moved, changed, copied, gone or refused); new ones queue."""

import hashlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import transaction

from . import inbox
from .dispatch import enqueue
from .models import Asset
from .removal import clear_index

logger = logging.getLogger(__name__)

# Empty files are recorded this many at a time (see record_empty_files).
EMPTY_BATCH = 500
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
EMPTY_FILE = "the file is empty (0 bytes): the copy failed or has not begun; copy it again"


def file_sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def walk_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every candidate regular file under the given files and folders, in a stable order (see inbox.walk)."""
    for path in paths:
        found = inbox.walk(path) if path.is_dir() else [path] if inbox.is_candidate(path) else []
        for candidate in found:
            refused = inbox.refusal(candidate)
            if refused:
                logger.warning("not read: %s", refused.reason)
            else:
                yield candidate


def register_path(path: Path, within: Path | None = None) -> Asset | None:
    """Record one file as an asset and queue its indexing; a file already known and unchanged is left alone.

    0. A link that leads out of `within` (the inbox, for the watcher) is recorded as unsupported, never read.
    1. Skip files that vanished or are unchanged since they were registered (same size and mtime, or same
       content); one put back where it had gone missing from gets its asset back.
    2. Content whose asset's file is gone was moved or renamed: the asset follows it, faces and all.
    3. Files that are neither photo nor video become `unsupported`.
    4. Content already held by another asset becomes `duplicate` of it and is not indexed again.
    5. Anything else is `queued`, and its task is sent once the row is committed.
    """
    if within is not None and not path.resolve().is_relative_to(within.resolve()):
        link, target = inbox.path_text(path.absolute()), inbox.path_text(path.resolve())
        return record_refusal(link, f"{link} leads to {target}, outside the inbox: it is not read")
    path = path.resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    existing = Asset.objects.filter(path=str(path)).first()
    if existing and existing.size == stat.st_size and existing.mtime == stat.st_mtime:
        return existing
    sha256 = file_sha256(path)
    kind = Asset.kind_of(path)
    fields = {"sha256": sha256, "kind": kind, "size": stat.st_size, "mtime": stat.st_mtime, "error": ""}
    if existing and existing.sha256 == sha256 and existing.status != Asset.Status.MISSING:
        # Touched, not changed (a copy tool setting the time after writing): nothing to index again.
        Asset.objects.filter(pk=existing.pk).update(size=stat.st_size, mtime=stat.st_mtime)
        return existing
    with transaction.atomic():
        if existing and existing.sha256 == sha256:
            return _follow_move(existing, path, fields)  # put back where it was
        # Empty files are not copies of each other: each is only waiting to be written.
        originals = Asset.objects.filter(sha256=sha256, duplicate_of=None).exclude(path=str(path))
        original = originals.first() if stat.st_size else None
        if original and not existing and not Path(original.path).exists():
            return _follow_move(original, path, fields)
        if kind == Asset.Kind.OTHER:
            fields |= {
                "status": Asset.Status.UNSUPPORTED,
                "error": f"{path.name}: not a photo or video (by its suffix {path.suffix or '(none)'})",
            }
        elif stat.st_size == 0:
            # Nothing to index until it is written; a write brings it back through the watcher.
            fields |= {
                "status": Asset.Status.FAILED,
                "error": _empty_file_error(str(path)),
            }
        elif original:
            fields |= {"status": Asset.Status.DUPLICATE, "duplicate_of": original}
        else:
            fields |= {"status": Asset.Status.QUEUED, "duplicate_of": None}
        if existing:
            clear_index(existing)
            if existing.sha256 != sha256:
                promote_duplicate(existing)  # its copies still hold the content it had
        asset, _ = Asset.objects.update_or_create(path=str(path), defaults=fields)
        if asset.status == Asset.Status.QUEUED:
            enqueue(asset)
    logger.info("registered asset %s %s as %s", asset.pk, path, asset.status)
    return asset


def record_empty_files(paths: list[Path]) -> int:
    """Record zero-byte files as failed, many at once (one by one, a folder of a hundred thousand took minutes).

    A file with an asset already (say an indexed photo truncated to nothing) goes through register_path. A new
    one is only a row: there is nothing to index until it is written, and the watcher sees that write.
    """
    recorded = 0
    for start in range(0, len(paths), EMPTY_BATCH):
        batch = {str(path.resolve()): path for path in paths[start : start + EMPTY_BATCH]}
        known = dict(Asset.objects.filter(path__in=list(batch)).values_list("path", "size"))
        for text in [text for text, size in known.items() if size]:
            register_path(batch[text])
        rows = [
            Asset(
                path=text, sha256=EMPTY_SHA256, kind=Asset.kind_of(path), size=0, mtime=path.lstat().st_mtime,
                status=Asset.Status.FAILED if Asset.kind_of(path) != Asset.Kind.OTHER else Asset.Status.UNSUPPORTED,
                error=_empty_file_error(text),
            )
            for text, path in batch.items()
            if text not in known
        ]  # fmt: skip
        recorded += len(Asset.objects.bulk_create(rows, ignore_conflicts=True))
    if recorded:
        logger.warning("recorded %d empty files as failed, such as %s", recorded, paths[0])
    return recorded


def _empty_file_error(path_text: str) -> str:
    return f"{path_text}: {EMPTY_FILE}"


def record_refusal(path_text: str, reason: str) -> Asset:
    """Record a path that is never read (a link out of the inbox, a FIFO, a name the database cannot hold).

    An asset that was indexed at that path loses its faces: what is there now is not what was indexed.
    """
    with transaction.atomic():
        existing = Asset.objects.filter(path=path_text).first()
        if existing:
            clear_index(existing)
            promote_duplicate(existing)
        asset, _ = Asset.objects.update_or_create(
            path=path_text,
            defaults={"sha256": "", "kind": Asset.kind_of(Path(path_text)), "size": 0, "mtime": 0}
            | {"status": Asset.Status.UNSUPPORTED, "error": reason, "duplicate_of": None},
        )
    logger.warning("asset %s: %s", asset.pk, reason)
    return asset


def promote_duplicate(original: Asset) -> Asset | None:
    """The original no longer stands for its content (changed, failed, refused): one of its copies takes over."""
    return _promote(list(original.duplicates.order_by("pk")), original)


def adopt_orphan_copies(deleted: Asset) -> Asset | None:
    """After an original is deleted (its copies' links were set to null): one of them takes over."""
    copies = Asset.objects.filter(sha256=deleted.sha256, status=Asset.Status.DUPLICATE, duplicate_of=None)
    return _promote(list(copies.order_by("pk")), deleted) if deleted.sha256 else None


def _promote(copies: list[Asset], original: Asset) -> Asset | None:
    """The first copy still on disk becomes the original and is queued; the other copies point at it."""
    heir = next((copy for copy in copies if Path(copy.path).is_file()), None)
    if heir is None:
        return None
    with transaction.atomic():
        Asset.objects.filter(pk__in=[c.pk for c in copies if c.pk != heir.pk]).update(duplicate_of=heir)
        Asset.objects.filter(pk=heir.pk).update(duplicate_of=None, status=Asset.Status.QUEUED, error="")
        enqueue(heir)
    logger.info("asset %s (%s) stands in for asset %s, which lost its content", heir.pk, heir.path, original.pk)
    return heir


def _follow_move(asset: Asset, path: Path, fields: dict) -> Asset:
    """The asset's file now lives at path: keep its faces; one that was missing and lost them is indexed again."""
    old_path = asset.path
    fields = fields | {"path": str(path)}
    if asset.status == Asset.Status.MISSING:
        has_faces = asset.faces.exists()
        fields |= {"status": Asset.Status.INDEXED if has_faces else Asset.Status.QUEUED}
    Asset.objects.filter(pk=asset.pk).update(**fields)
    asset.refresh_from_db()
    if asset.status == Asset.Status.QUEUED:
        enqueue(asset)
    logger.info("asset %s moved from %s to %s", asset.pk, old_path, path)
    return asset


def mark_missing(paths: Iterable[Path]) -> int:
    """Assets whose files are gone become `missing` (and lose their faces if MISSING_REMOVES_FACES)."""
    count = 0
    for asset in Asset.objects.filter(path__in=[str(path) for path in paths]).exclude(status=Asset.Status.MISSING):
        if Path(asset.path).exists():
            continue
        stand_in = next((copy for copy in asset.duplicates.order_by("pk") if Path(copy.path).exists()), None)
        if stand_in:
            _take_over_copy(asset, stand_in)
            continue
        with transaction.atomic():
            if settings.MISSING_REMOVES_FACES:
                clear_index(asset)
            Asset.objects.filter(pk=asset.pk).update(
                status=Asset.Status.MISSING, error=f"{asset.path} was deleted or moved out of the inbox"
            )
        logger.info("asset %s is missing: %s", asset.pk, asset.path)
        count += 1
    return count


def _take_over_copy(asset: Asset, copy: Asset) -> None:
    """The asset's file is gone but a copy is still in the archive: the asset lives on at the copy's path."""
    with transaction.atomic():
        path = Path(copy.path)
        Asset.objects.filter(pk=copy.pk).delete()
        stat = path.stat()
        _follow_move(asset, path, {"size": stat.st_size, "mtime": stat.st_mtime})
    logger.info("asset %s: its file is gone, its copy %s (asset %s) stands in", asset.pk, path, copy.pk)


def missing_under(folder: Path) -> list[Path]:
    """Paths of the assets under folder whose files are gone (for the watcher's catch-up)."""
    prefix = str(folder.resolve()).rstrip("/") + "/"
    # Unsupported paths were never read, and some are stand-ins for names no file system call would find.
    assets = Asset.objects.filter(path__startswith=prefix).exclude(status=Asset.Status.UNSUPPORTED)
    paths = assets.values_list("path", flat=True)
    return [Path(path) for path in paths if not Path(path).exists()]
