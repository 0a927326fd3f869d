"""Indexing: one task claims one asset, finds and embeds its faces, and stores rows, crops and vectors together."""

import logging
from collections.abc import Callable
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from people import assignment, reindexing

from . import face_engine, inbox, stretches, vector_store, video_indexing, video_probe
from .imaging import UnreadablePhoto, jpeg, open_photo, taken_at
from .intake import EMPTY_FILE, promote_duplicate
from .models import Asset, Stretch
from .removal import clear_index, delete_files
from .storing import PREVIEW_SIDE, face_row, without_forgotten

logger = logging.getLogger(__name__)

# A photo and the faces found in it.
FoundFaces = tuple[Image.Image, list[face_engine.Face]]


def index_asset(asset_id: int, task_id: str | None = None) -> str | None:
    """Find, embed and store every face of one asset; returns the final status, or None if it did not end.

    1. Claim the asset (see `claim`); a task that is not the asset's current one claims nothing.
    2. Photos: decode, find the faces, store them. Videos: sample frames from where the last run stopped,
       store them chunk by chunk, and hand over to a new task after VIDEO_SLICE_SECONDS (returns None).
    3. Mark the asset indexed or no_faces. A bad file ends `failed` with the reason and nothing stored;
       Milvus being down leaves it `retrying` and raises VectorStoreUnavailable for the task to retry. A file
       that killed the process indexing it WORKER_DEATH_LIMIT times, or ran past the task's soft time limit,
       ends `failed` too.
    """
    asset, interrupted = claim(asset_id, task_id)
    if asset is None:
        logger.info("asset %s is not this task's to index; nothing to do", asset_id)
        return None
    return index_claimed(asset, interrupted)


def index_claimed(asset: Asset, interrupted: bool, found: FoundFaces | None = None) -> str | None:
    """index_asset after the claim; `found` is a photo and its faces when they were found with others' (photo_batch)."""
    logger.info("indexing asset %s %s", asset.pk, asset.path)
    if asset.worker_deaths >= settings.WORKER_DEATH_LIMIT:
        return _fail_cut_short(asset, _died_too_often(asset, asset.worker_deaths, "it"))
    if asset.kind not in (Asset.Kind.IMAGE, Asset.Kind.VIDEO):
        return _finish(asset, Asset.Status.UNSUPPORTED, f"{asset.path}: not a photo or video")

    def index() -> int | None:
        if interrupted:
            _clear_interrupted(asset)
        if asset.kind == Asset.Kind.IMAGE:
            return _index_photo(asset, found)
        return video_indexing.index_video(asset)

    return _guarded(asset, index)


def index_stretch(stretch_id: int, task_id: str) -> str | None:
    """Index one stretch of a long video (stretches.py) if it is this task's; what goes wrong fails the video, as in
    index_asset. Returns the video's status if that ended it, else None."""
    stretch = stretches.claim(stretch_id, task_id)
    if stretch is None:
        logger.info("video stretch %s is not this task's to index; nothing to do", stretch_id)
        return None
    asset = stretch.asset
    logger.info("indexing asset %s, %s", asset.pk, stretch.describe())
    if stretch.worker_deaths >= settings.WORKER_DEATH_LIMIT:
        return _fail_cut_short(asset, _died_too_often(asset, stretch.worker_deaths, f"its {stretch.describe()}"))
    return _guarded(asset, lambda: video_indexing.index_stretch(asset, stretch))


def _guarded(asset: Asset, index: Callable[[], int | None]) -> str | None:
    """Run the indexing; it returns the faces stored, or None when another task carries on. What it raises decides
    the asset's status: a bad file fails it with the reason, Milvus down leaves it retrying (re-raised)."""
    try:
        faces = index()
        if faces is None:
            return None
    except FileNotFoundError:
        return _fail(asset, f"{asset.path} is gone; it was moved or deleted after it arrived")
    except (UnreadablePhoto, video_probe.UnreadableVideo, inbox.Escape) as error:
        return _fail(asset, f"{asset.path}: {error}")
    except vector_store.VectorStoreUnavailable as error:
        Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.RETRYING, error=str(error))
        logger.warning("asset %s retrying: %s", asset.pk, error)
        raise
    except SoftTimeLimitExceeded:
        return _fail_cut_short(
            asset,
            f"{asset.path}: indexing it took longer than the task's time limit of"
            f" {settings.CELERY_TASK_SOFT_TIME_LIMIT:.0f} s, so it was stopped (a video's slice is"
            " REVSEARCH_VIDEO_SLICE_SECONDS, plus REVSEARCH_TASK_TIME_MARGIN for its last chunk)",
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


def _died_too_often(asset: Asset, deaths: int, what: str) -> str:
    return (
        f"{asset.path}: the worker died {deaths} times while indexing {what} (killed, out of memory,"
        f" or stopped at the {settings.CELERY_TASK_TIME_LIMIT:.0f} s time limit), so it is not tried again:"
        " the worker's log tells more; `manage.py reindex --failed` tries it again"
    )


def _fail_cut_short(asset: Asset, error: str) -> str:
    """Fail a run that was cut short: it may have stored vectors that no committed face points to."""
    status = _fail(asset, error)
    try:
        vector_store.delete_asset(asset.pk)
    except vector_store.VectorStoreUnavailable as down:
        logger.warning("asset %s: stray vectors stay until `manage.py check_index --fix`: %s", asset.pk, down)
    return status


def claim(asset_id: int, task_id: str | None) -> tuple[Asset | None, bool]:
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
        may_claim = before["task_id"] == task_id and before["status"] in Asset.UNFINISHED
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
    """Drop the vectors an interrupted run stored past the asset's last committed face (killed mid-commit).

    Not while a long video's stretches run: faces being stored by the others come after it; the join clears them."""
    if asset.stretches.exists():
        return
    last_face = asset.faces.order_by("-pk").values_list("pk", flat=True).first()
    vector_store.delete_asset(asset.pk, after_face_id=last_face or 0)
    logger.info("asset %s: an earlier run was cut short; carrying on from what it committed", asset.pk)


def give_up_stretch(stretch_id: int, error: Exception) -> str | None:
    """A stretch's retries are spent: its video fails, as give_up says (unless it ended meanwhile)."""
    asset_id = Stretch.objects.filter(pk=stretch_id).values_list("asset_id", flat=True).first()
    return give_up(asset_id, error) if asset_id is not None else None


def give_up(asset_id: int, error: Exception) -> str:
    """The retries are spent: the asset fails with the error, and `reindex --failed` recovers it later."""
    asset = Asset.objects.get(pk=asset_id)
    return _finish(
        asset, Asset.Status.FAILED, f"{error}; gave up retrying: run `manage.py reindex --failed` once it is back"
    )


def read_photo(asset: Asset) -> Image.Image:
    """The asset's photo, decoded from inside its inbox; raises what index_claimed turns into a failure."""
    path = Path(asset.path)
    if path.stat().st_size == 0:
        raise UnreadablePhoto(EMPTY_FILE)
    with inbox.open_inside(path, inbox.inbox_of(path)) as stream:
        return open_photo(stream)


def _index_photo(asset: Asset, found: FoundFaces | None = None) -> int:
    photo, detected = found if found else (read_photo(asset), None)
    remembered = reindexing.remember(asset.faces.all())
    if detected is None:
        detected = face_engine.find_faces(photo)
    faces = without_forgotten(asset, detected + reindexing.drawn_again(photo, remembered, detected))
    _store_faces(asset, faces, photo, remembered)
    return len(faces)


def _store_faces(
    asset: Asset, faces: list[face_engine.Face], photo: Image.Image, remembered: list[reindexing.Remembered]
) -> None:
    """Write the faces, their crops and the photo's preview, then the vectors: if Milvus refuses, nothing is left.
    Faces in the place of earlier ones keep what users decided about those (people/reindexing.py)."""
    model_name = face_engine.model_name()
    with transaction.atomic():
        clear_index(asset)
        rows = [face_row(asset, face, model_name) for face in faces]
        asset.preview.save(f"asset{asset.pk}.jpg", ContentFile(jpeg(photo, PREVIEW_SIDE)), save=False)
        asset.model_name = model_name
        asset.width, asset.height = photo.size
        asset.taken_at = taken_at(photo)
        asset.save(update_fields=["model_name", "preview", "width", "height", "taken_at"])
        try:
            vector_store.insert(
                [
                    vector_store.FaceVector(row.pk, face.embedding, asset.pk, asset.kind)
                    for row, face in zip(rows, faces, strict=True)
                ]
            )
            reindexing.restore(rows, remembered)
            assignment.assign_new_faces(rows, [face.embedding for face in faces])
        except Exception:
            delete_files(asset)
            raise


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
