"""Upkeep: counts by status, the check and repair of the index against Milvus and the disk, and batched flushes."""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db.models import Count, Max

from . import vector_store
from .dispatch import requeue
from .intake import register_path
from .models import Asset, Face

logger = logging.getLogger(__name__)

# New vectors are flushed (sealed and indexed) in Milvus once this many have come, or this long after the first.
VECTOR_FLUSH_ROWS = 500
VECTOR_FLUSH_SECONDS = 30.0


def status_counts() -> dict[str, int]:
    """How many assets are in each status (for the command line and health pages)."""
    counts = {status: 0 for status in Asset.Status.values}
    for row in Asset.objects.values("status").order_by().annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def index_counts() -> dict[str, int]:
    """Assets by status, and "faces": the Face rows (what `index_status --json` prints)."""
    return status_counts() | {"faces": Face.objects.count()}


def asset_records() -> Iterator[dict]:
    """Every asset's status, errors and progress, in path order: what `index_status --assets --json` prints."""
    for asset in Asset.objects.order_by("path").annotate(face_count=Count("faces")):
        record = {"id": asset.pk, "path": asset.path, "kind": asset.kind, "status": asset.status}
        record |= {"error": asset.error, "warning": asset.warning, "worker_deaths": asset.worker_deaths}
        yield record | {"faces": asset.face_count, "frames_done": asset.frames_done, "frames": asset.frames_total}


@dataclass(frozen=True)
class IndexCheck:
    """What differs between the database and Milvus, and which files changed since they were indexed."""

    faces_without_vectors: list[int]
    vectors_without_faces: list[int]
    changed_files: list[str]

    @property
    def consistent(self) -> bool:
        return not (self.faces_without_vectors or self.vectors_without_faces or self.changed_files)


def check_index() -> IndexCheck:
    """Compare every Face row with Milvus, and every indexed file with what is on disk now."""
    stored = vector_store.stored_faces()
    faces = set(Face.objects.values_list("id", flat=True))
    changed = []
    # Files never read (unsupported, or links out of the inbox) and those still on their way have nothing to redo.
    unread = [Asset.Status.MISSING, Asset.Status.UNSUPPORTED, *Asset.UNFINISHED]
    for asset in Asset.objects.exclude(status__in=unread).only("path", "size", "mtime"):
        try:
            stat = Path(asset.path).stat()
        except FileNotFoundError:
            continue  # the watcher marks these missing
        if (stat.st_size, stat.st_mtime) != (asset.size, asset.mtime):
            changed.append(asset.path)
    return IndexCheck(sorted(faces - set(stored)), sorted(set(stored) - faces), changed)


def repair_index(check: IndexCheck) -> None:
    """Make Milvus match the database: orphan vectors go, assets with lost vectors or changed files are redone."""
    vector_store.delete_faces(check.vectors_without_faces)
    requeue(Asset.objects.filter(faces__id__in=check.faces_without_vectors).distinct())
    for path in check.changed_files:
        register_path(Path(path))


class VectorFlusher:
    """Flushes the vectors that workers added, in batches; the watcher calls check() every few seconds.

    Milvus Lite searches vectors that are not flushed yet one by one in Python, so searches slow down as they
    pile up; a flush per asset would seal a tiny segment each time. One per VECTOR_FLUSH_ROWS faces keeps
    searches fast at a small cost (the figures are in docs/performance.md).
    """

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.flushed_up_to = 0  # the newest face id at the last flush: at start, flush whatever there is
        self.waiting_since: float | None = None

    def check(self) -> bool:
        """Flush if enough new faces have come, or the first of them came long enough ago; says whether it did."""
        # Counted, not told from the ids: ids need not be dense (a PostgreSQL sequence skips rolled-back ones).
        since = Face.objects.filter(id__gt=self.flushed_up_to).aggregate(newest=Max("id"), new=Count("id"))
        newest, new = since["newest"], since["new"]
        if not new:
            self.waiting_since = None
            return False
        now = self.clock()
        if self.waiting_since is None:
            self.waiting_since = now
        if new < VECTOR_FLUSH_ROWS and now - self.waiting_since < VECTOR_FLUSH_SECONDS:
            return False
        started = time.monotonic()
        vector_store.flush()
        self.flushed_up_to, self.waiting_since = newest, None
        logger.info("flushed Milvus up to face %d (%d new) in %.2f s", newest, new, time.monotonic() - started)
        return True
