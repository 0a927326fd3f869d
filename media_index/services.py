"""Ingestion: files become Asset rows, and assets become Face rows plus vectors in Milvus."""

import hashlib
import io
import itertools
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from revsearch_site.limits import jpeg_scans

from . import face_engine, inbox, vector_store, video
from .models import Asset, Face, Frame

logger = logging.getLogger(__name__)

PREVIEW_SIDE = 480
FRAME_SIDE = 480
PILLOW_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO"}


# Empty files are recorded this many at a time (see record_empty_files).
EMPTY_BATCH = 500
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# New vectors are flushed (sealed and indexed) in Milvus once this many have come, or this long after the first.
VECTOR_FLUSH_ROWS = 500
VECTOR_FLUSH_SECONDS = 30.0

# Statuses of an asset whose indexing has not ended.
UNFINISHED = (Asset.Status.QUEUED, Asset.Status.PROCESSING, Asset.Status.RETRYING)


class UnreadablePhoto(Exception):
    """The file is not a photo that can be decoded; the message says why."""


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
    """Record zero-byte files as failed, many at once (one by one, a folder of 100,000 took six minutes).

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
    return f"{path_text}: the file is empty (0 bytes): the copy failed or has not begun; copy it again"


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


def enqueue(asset: Asset) -> None:
    """Give the asset a new task id, and send that task once the transaction commits.

    Only the task with the asset's current id may work on it, so a task sent earlier for the same asset, or
    sent twice, does nothing. If the queue cannot be reached the asset keeps `task_sent` false and the
    watcher's `send_unsent` sends it when the queue is back.
    """
    task_id = str(uuid.uuid4())
    Asset.objects.filter(pk=asset.pk).update(task_id=task_id, task_sent=False)
    transaction.on_commit(lambda: _send(asset.pk, task_id))


# After a failed send, others are not tried for a while: each failure waits out the broker's own retries.
QUEUE_DOWN_PAUSE_SECONDS = 5.0
_queue_down_until = 0.0


def _send(asset_id: int, task_id: str) -> bool:
    """Put one indexing task on the queue; says whether it got there."""
    global _queue_down_until
    from .tasks import index_asset_task

    if time.monotonic() < _queue_down_until:
        return False
    try:
        index_asset_task.apply_async((asset_id,), task_id=task_id)
    except Exception as error:  # kombu raises several kinds when Redis is down; all mean "not sent"
        _queue_down_until = time.monotonic() + QUEUE_DOWN_PAUSE_SECONDS
        logger.warning(
            "asset %s: the task queue is unreachable (%s); it is sent when the queue is back", asset_id, error
        )
        return False
    Asset.objects.filter(pk=asset_id, task_id=task_id).update(task_sent=True)
    return True


def send_unsent() -> int:
    """Send again, under new ids, the tasks that never reached the queue; returns how many got there."""
    sent = 0
    unsent = Asset.objects.filter(status__in=[Asset.Status.QUEUED, Asset.Status.PROCESSING], task_sent=False)
    for asset in unsent.only("pk").order_by("pk"):
        task_id = str(uuid.uuid4())
        Asset.objects.filter(pk=asset.pk).update(task_id=task_id)
        if not _send(asset.pk, task_id):
            break
        sent += 1
    if sent:
        logger.info("sent %d indexing tasks that had not reached the queue", sent)
    return sent


def requeue(assets: Iterable[Asset]) -> int:
    """Index the given photos and videos again from scratch (`reindex`, the admin's re-index action).

    Old faces stay searchable until new ones replace them: a photo's all at once, a video's frame by frame as
    its new run reaches each (frames_done counts the new run's frames). Files never read (unsupported) stay unread.
    """
    count = 0
    for asset in assets:
        if asset.kind not in (Asset.Kind.IMAGE, Asset.Kind.VIDEO) or asset.status == Asset.Status.UNSUPPORTED:
            continue
        with transaction.atomic():
            Asset.objects.filter(pk=asset.pk).update(
                status=Asset.Status.QUEUED, error="", indexed_at=None, frames_done=0
            )
            enqueue(asset)
        count += 1
    return count


def requeue_unfinished() -> int:
    """Queue again the assets left unfinished when the service stopped (run before workers start)."""
    unfinished = Asset.objects.filter(status__in=[Asset.Status.QUEUED, Asset.Status.PROCESSING, Asset.Status.RETRYING])
    with transaction.atomic():
        assets = list(unfinished.select_for_update())
        unfinished.update(status=Asset.Status.QUEUED)
        for asset in assets:
            enqueue(asset)
    return len(assets)


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
            if image.format in ("JPEG", "MPO") and jpeg_scans(image.fp, stop_after=scans + 1) > scans:
                raise UnreadablePhoto(
                    f"the JPEG has more than {scans} progressive scans, which would take long to decode:"
                    " save it again as a baseline JPEG (or raise REVSEARCH_MAX_JPEG_SCANS)"
                )
            image.load()
            return _to_rgb(ImageOps.exif_transpose(image))
    except FileNotFoundError:
        raise
    except UnidentifiedImageError as error:
        # Pillow's own message names the file object, which says nothing to a reader.
        raise UnreadablePhoto("cannot decode the photo: it is not in a format Pillow reads") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise UnreadablePhoto(f"cannot decode the photo: {error}") from error


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB; 16-bit and 32-bit grey is scaled down, which Pillow's convert would clip to white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(values * (255.0 / top), 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


def index_asset(asset_id: int, task_id: str | None = None) -> str | None:
    """Find, embed and store every face of one asset; returns the final status, or None if it did not end.

    1. Claim the asset (see `_claim`); a task that is not the asset's current one claims nothing.
    2. Photos: decode, find the faces, store them. Videos: sample frames from where the last run stopped,
       store them chunk by chunk, and hand over to a new task after VIDEO_SLICE_SECONDS (returns None).
    3. Mark the asset indexed or no_faces. A bad file ends `failed` with the reason and nothing stored;
       Milvus being down leaves it `retrying` and raises VectorStoreUnavailable for the task to retry. A file
       that killed the process indexing it WORKER_DEATH_LIMIT times, or ran past the task's soft time limit,
       ends `failed` too.
    """
    asset, interrupted = _claim(asset_id, task_id)
    if asset is None:
        logger.info("asset %s is not this task's to index; nothing to do", asset_id)
        return None
    logger.info("indexing asset %s %s", asset.pk, asset.path)

    def fail_cut_short(error: str) -> str:
        """Fail a run that was cut short: it may have stored vectors that no committed face points to."""
        status = _fail(asset, error)
        try:
            vector_store.delete_asset(asset.pk)
        except vector_store.VectorStoreUnavailable as down:
            logger.warning("asset %s: stray vectors stay until `manage.py check_index --fix`: %s", asset.pk, down)
        return status

    if asset.worker_deaths >= settings.WORKER_DEATH_LIMIT:
        return fail_cut_short(
            f"{asset.path}: the worker died {asset.worker_deaths} times while indexing it (killed, out of memory,"
            f" or stopped at the {settings.CELERY_TASK_TIME_LIMIT:.0f} s time limit), so it is not tried again:"
            " the worker's log tells more; `manage.py reindex --failed` tries it again"
        )
    try:
        if interrupted:
            _clear_interrupted(asset)
        if asset.kind == Asset.Kind.IMAGE:
            faces = _index_photo(asset)
        elif asset.kind == Asset.Kind.VIDEO:
            faces = _index_video(asset)
            if faces is None:
                return None
        else:
            return _finish(asset, Asset.Status.UNSUPPORTED, f"{asset.path}: not a photo or video")
    except FileNotFoundError:
        return _fail(asset, f"{asset.path} is gone; it was moved or deleted after it arrived")
    except (UnreadablePhoto, video.UnreadableVideo, inbox.Escape) as error:
        return _fail(asset, f"{asset.path}: {error}")
    except vector_store.VectorStoreUnavailable as error:
        Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.RETRYING, error=str(error))
        logger.warning("asset %s retrying: %s", asset.pk, error)
        raise
    except SoftTimeLimitExceeded:
        return fail_cut_short(
            f"{asset.path}: indexing it took longer than the task's time limit of"
            f" {settings.CELERY_TASK_SOFT_TIME_LIMIT:.0f} s, so it was stopped (a video's slice is"
            " REVSEARCH_VIDEO_SLICE_SECONDS, plus REVSEARCH_TASK_TIME_MARGIN for its last chunk)"
        )
    except IntegrityError:
        # Two deliveries of one video's task met on the same frame: the other one carries on.
        logger.warning("asset %s is being indexed by another task; this one stops", asset.pk)
        return None
    except Exception as error:
        # Whatever else goes wrong is this file's problem: record it, and let the queue go on.
        logger.exception("asset %s failed unexpectedly", asset.pk)
        return _fail(asset, f"{asset.path}: unexpected {type(error).__name__}: {error}")
    status = Asset.Status.INDEXED if faces else Asset.Status.NO_FACES
    return _finish(asset, status, "", faces=faces)


def _claim(asset_id: int, task_id: str | None) -> tuple[Asset | None, bool]:
    """Mark the asset processing if this run may index it; also says whether an earlier run was cut short.

    A task may claim the asset while its id is the asset's current one: queued; retrying after Milvus was down
    (a Celery retry keeps the id); or processing, for a video's next slice (a new id) or when the same task is
    delivered again because the process running it died (killed, out of memory, over the hard time limit):
    that is counted in worker_deaths. A run in this process (no task id) claims only a queued asset, and voids
    the task sent for it. A queued asset that kept nothing of an earlier run starts afresh: no deaths, no warning.
    """
    seen = ("status", "task_id", "claimed_by", "worker_deaths", "frames_done")
    before = Asset.objects.filter(pk=asset_id).values(*seen).first()
    if before is None:
        return None, False
    if task_id is None:
        may_claim = before["status"] == Asset.Status.QUEUED
        fields = {"task_id": "", "task_sent": True, "claimed_by": ""}
    else:
        claimable = (Asset.Status.QUEUED, Asset.Status.RETRYING, Asset.Status.PROCESSING)
        may_claim = before["task_id"] == task_id and before["status"] in claimable
        fields = {"claimed_by": task_id}
    if not may_claim:
        return None, False
    fresh = before["status"] == Asset.Status.QUEUED and not before["frames_done"]
    died = task_id is not None and before["status"] == Asset.Status.PROCESSING and before["claimed_by"] == task_id
    if fresh:
        fields |= {"worker_deaths": 0, "warning": ""}
    elif died:
        fields |= {"worker_deaths": before["worker_deaths"] + 1}
    # Compare and set: nothing seen above may have changed, or another delivery got there first.
    if not Asset.objects.filter(pk=asset_id, **before).update(status=Asset.Status.PROCESSING, **fields):
        return None, False
    if died:
        logger.warning(
            "asset %s: the worker indexing it died (%d of at most %d deaths); task %s was delivered again",
            asset_id, before["worker_deaths"] + 1, settings.WORKER_DEATH_LIMIT, task_id,
        )  # fmt: skip
    return Asset.objects.get(pk=asset_id), not fresh


def _clear_interrupted(asset: Asset) -> None:
    """Drop the vectors an interrupted run stored past the asset's last committed face (killed mid-commit)."""
    last_face = asset.faces.order_by("-pk").values_list("pk", flat=True).first()
    vector_store.delete_asset(asset.pk, after_face_id=last_face or 0)
    logger.info("asset %s: an earlier run was cut short; carrying on from what it committed", asset.pk)


def give_up(asset_id: int, error: Exception) -> str:
    """The retries are spent: the asset fails with the error, and `reindex --failed` recovers it later."""
    asset = Asset.objects.get(pk=asset_id)
    return _finish(
        asset, Asset.Status.FAILED, f"{error}; gave up retrying: run `manage.py reindex --failed` once it is back"
    )


def _index_photo(asset: Asset) -> int:
    path = Path(asset.path)
    if path.stat().st_size == 0:
        raise UnreadablePhoto("the file is empty (0 bytes): the copy failed or has not begun; copy it again")
    with inbox.open_inside(path, inbox.inbox_of(path)) as stream:
        photo = open_photo(stream)
    faces = face_engine.find_faces(photo)
    _store_faces(asset, faces, photo)
    return len(faces)


def _index_video(asset: Asset) -> int | None:
    """Index a video's sampled frames from where the last run stopped; None when a new task carries on.

    Damage that costs only some frames (see video.sample_frames) is kept in the asset's warning, after that of
    earlier slices, chunk by chunk.
    """
    # ffmpeg opens the file by its name: it is checked just before, as the photo's open descriptor is.
    with inbox.open_inside(Path(asset.path), inbox.inbox_of(Path(asset.path))):
        info = video.probe(Path(asset.path))
    fps = settings.VIDEO_SAMPLE_FPS
    # Frames past frames_done are an earlier run's, kept searchable until this run replaces them.
    last = asset.frames.filter(index__lt=asset.frames_done).order_by("-index").first()
    Asset.objects.filter(pk=asset.pk).update(
        duration=info.duration, frames_total=video.expected_frames(info, fps), width=info.width, height=info.height
    )
    if last:
        logger.info("asset %s resumes after frame %d at %.2f s", asset.pk, last.index, last.timestamp)
    frames = video.sample_frames(
        Path(asset.path), info, fps, after=last.timestamp if last else None, first_index=last.index + 1 if last else 0
    )
    earlier = asset.warning.splitlines()

    def keep_warnings() -> None:
        if frames.warnings:
            Asset.objects.filter(pk=asset.pk).update(warning="\n".join(earlier + frames.warnings))

    deadline = time.monotonic() + settings.VIDEO_SLICE_SECONDS
    try:
        while chunk := list(itertools.islice(frames, settings.VIDEO_CHUNK_FRAMES)):
            _store_frames(asset, chunk)
            keep_warnings()
            if time.monotonic() > deadline:
                enqueue(asset)  # outside a transaction, sent at once
                logger.info("asset %s: slice over, a new task carries on", asset.pk)
                return None
        keep_warnings()
        _drop_frames(asset.frames.filter(index__gte=asset.frames_done))  # an earlier run's, past this run's end
    finally:
        frames.close()
        for warning in frames.warnings:
            logger.warning("asset %s: %s", asset.pk, warning)
    return asset.faces.count()


def _store_frames(asset: Asset, frames: list[video.SampledFrame]) -> None:
    """Store one chunk of frames with their faces and vectors at once, so a crash never half-stores a chunk."""
    found = face_engine.find_faces_batch([frame.image for frame in frames])
    model_name = face_engine.model_name()
    with transaction.atomic():
        _drop_frames(asset.frames.filter(index__in=[frame.index for frame in frames]))  # an earlier run's
        rows: list[Face] = []
        faces: list[face_engine.Face] = []
        for frame, frame_faces in zip(frames, found, strict=True):
            row = Frame(asset=asset, index=frame.index, timestamp=frame.timestamp)
            if frame_faces:
                row.thumbnail.save(f"asset{asset.pk}.jpg", ContentFile(_jpeg(frame.image, FRAME_SIDE)), save=False)
            row.save()
            rows += [_face_row(asset, face, model_name, frame=row) for face in frame_faces]
            faces += frame_faces
        if not asset.preview:
            asset.preview.save(f"asset{asset.pk}.jpg", ContentFile(_jpeg(frames[0].image, PREVIEW_SIDE)), save=False)
        asset.model_name = model_name
        asset.frames_done = frames[-1].index + 1
        asset.save(update_fields=["preview", "model_name", "frames_done"])
        vector_store.insert(
            [
                vector_store.FaceVector(row.pk, face.embedding, asset.pk, asset.kind, row.frame.timestamp)
                for row, face in zip(rows, faces, strict=True)
            ]
        )
    logger.info("asset %s: frames %d-%d stored, %d faces", asset.pk, frames[0].index, frames[-1].index, len(faces))


def _store_faces(asset: Asset, faces: list[face_engine.Face], photo: Image.Image) -> None:
    """Write the faces, their crops and the photo's preview, then the vectors: if Milvus refuses, nothing is left."""
    model_name = face_engine.model_name()
    with transaction.atomic():
        clear_index(asset)
        rows = [_face_row(asset, face, model_name) for face in faces]
        asset.preview.save(f"asset{asset.pk}.jpg", ContentFile(_jpeg(photo, PREVIEW_SIDE)), save=False)
        asset.model_name = model_name
        asset.width, asset.height = photo.size
        asset.save(update_fields=["model_name", "preview", "width", "height"])
        try:
            vector_store.insert(
                [
                    vector_store.FaceVector(row.pk, face.embedding, asset.pk, asset.kind)
                    for row, face in zip(rows, faces, strict=True)
                ]
            )
        except Exception:
            _delete_files(asset)
            raise


def _face_row(asset: Asset, face: face_engine.Face, model_name: str, frame: Frame | None = None) -> Face:
    left, top, right, bottom = face.box
    row = Face(
        asset=asset, frame=frame, left=left, top=top, right=right, bottom=bottom,
        probability=face.probability, model_name=model_name,
    )  # fmt: skip
    row.crop.save(f"asset{asset.pk}.jpg", ContentFile(_jpeg(face.crop)), save=False)
    row.save()
    return row


def _finish(asset: Asset, status: str, error: str, faces: int = 0) -> str:
    Asset.objects.filter(pk=asset.pk).update(
        status=status, error=error, indexed_at=timezone.now(), updated_at=timezone.now()
    )
    if status == Asset.Status.FAILED:
        promote_duplicate(asset)
    if error:
        logger.warning("asset %s %s: %s", asset.pk, status, error)
    else:
        logger.info("asset %s %s with %d faces", asset.pk, status, faces)
    return status


def _fail(asset: Asset, error: str) -> str:
    """A failed asset keeps nothing half-indexed: what it had is cleared, and the reason recorded."""
    clear_index(asset)
    return _finish(asset, Asset.Status.FAILED, error)


def clear_index(asset: Asset) -> None:
    """Drop an asset's faces and frames; their vectors and files go once that commits (and stay if it rolls back)."""
    face_ids = list(asset.faces.values_list("pk", flat=True))
    files = _stored_files(asset)
    asset.faces.all().delete()
    asset.frames.all().delete()
    Asset.objects.filter(pk=asset.pk).update(preview="", frames_done=0)
    transaction.on_commit(lambda: _forget_vectors_and_files(face_ids, files), robust=True)


def _drop_frames(frames) -> None:
    """Delete these frames and their faces; their vectors and files go once that commits."""
    faces = Face.objects.filter(frame__in=frames)
    face_ids = list(faces.values_list("pk", flat=True))
    files = [name for name in faces.values_list("crop", flat=True) if name]
    files += [name for name in frames.values_list("thumbnail", flat=True) if name]
    if not (face_ids or files or frames.exists()):
        return
    faces.delete()
    frames.delete()
    transaction.on_commit(lambda: _forget_vectors_and_files(face_ids, files), robust=True)


def delete_faces(faces: Iterable[Face]) -> int:
    """Delete Face rows (the admin's delete), then, once that commits, their vectors and crops."""
    faces = list(faces)
    with transaction.atomic():
        Face.objects.filter(pk__in=[face.pk for face in faces]).delete()
        ids, files = [face.pk for face in faces], [face.crop.name for face in faces if face.crop]
        transaction.on_commit(lambda: _forget_vectors_and_files(ids, files), robust=True)
    logger.info("deleted %d faces and their vectors", len(faces))
    return len(faces)


def _stored_files(asset: Asset) -> list[str]:
    """The names, in the media storage, of the asset's crops, frame thumbnails and preview."""
    names = [name for name in asset.faces.values_list("crop", flat=True) if name]
    names += [name for name in asset.frames.values_list("thumbnail", flat=True) if name]
    return names + ([asset.preview.name] if asset.preview else [])


def _forget_vectors_and_files(face_ids: list[int], files: list[str]) -> None:
    """After a commit: the vectors and files of faces the database no longer has (`check_index` finds any left)."""
    if face_ids:
        vector_store.delete_faces(face_ids)
    for name in files:
        default_storage.delete(name)


def _delete_files(asset: Asset) -> None:
    for name in _stored_files(asset):
        default_storage.delete(name)


def _jpeg(image: Image.Image, longest_side: int | None = None) -> bytes:
    """A JPEG of the image, shrunk to longest_side when given."""
    if longest_side:
        image = image.copy()
        image.thumbnail((longest_side, longest_side))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def status_counts() -> dict[str, int]:
    """How many assets are in each status (for the command line and health pages)."""
    counts = {status: 0 for status in Asset.Status.values}
    for row in Asset.objects.values("status").order_by().annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


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
    unread = [Asset.Status.MISSING, Asset.Status.UNSUPPORTED, *UNFINISHED]
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

    Milvus Lite searches vectors that are not flushed yet one by one in Python: 10k of them made every search
    take 0.4 s and 100k 2 s, where flushed and indexed they took 40 ms. A flush per asset would seal a tiny
    segment each time; one per VECTOR_FLUSH_ROWS faces took about 90 ms and kept searches near 40 ms.
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
