"""Indexing: one task claims one asset, finds and embeds its faces, and stores rows, crops and vectors together."""

import itertools
import logging
import time
from pathlib import Path
from typing import cast

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from people import assignment, blocklist, reindexing

from . import calibration, face_engine, inbox, shots, spans, tracks, vector_store, video, video_probe
from .dispatch import enqueue
from .imaging import UnreadablePhoto, jpeg, open_photo, taken_at
from .intake import EMPTY_FILE, promote_duplicate
from .models import Asset, Face, Frame, Track
from .removal import clear_index, delete_files, drop_frames

logger = logging.getLogger(__name__)

PREVIEW_SIDE = 480
FRAME_SIDE = 480
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
    faces: int | None
    try:
        if interrupted:
            _clear_interrupted(asset)
        if asset.kind == Asset.Kind.IMAGE:
            faces = _index_photo(asset, found)
        elif asset.kind == Asset.Kind.VIDEO:
            faces = _index_video(asset)
            if faces is None:
                return None
        else:
            return _finish(asset, Asset.Status.UNSUPPORTED, f"{asset.path}: not a photo or video")
    except FileNotFoundError:
        return _fail(asset, f"{asset.path} is gone; it was moved or deleted after it arrived")
    except (UnreadablePhoto, video_probe.UnreadableVideo, inbox.Escape) as error:
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
    faces = _without_forgotten(asset, detected + reindexing.drawn_again(photo, remembered, detected))
    _store_faces(asset, faces, photo, remembered)
    return len(faces)


def _index_video(asset: Asset) -> int | None:
    """Index a video's sampled frames from where the last run stopped; None when a new task carries on.

    Damage that costs only some frames (see video.sample_frames) is kept in the asset's warning, after that of
    earlier slices, chunk by chunk.
    """
    # ffmpeg opens the file by its name: it is checked just before, as the photo's open descriptor is.
    with inbox.open_inside(Path(asset.path), inbox.inbox_of(Path(asset.path))):
        info = video_probe.probe(Path(asset.path))
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
            # Frames sampled at shot cuts come on top of the grid's estimate: progress stays at most 100%.
            Asset.objects.filter(pk=asset.pk, frames_total__lt=asset.frames_done).update(frames_total=asset.frames_done)
            spans.settle(asset, Path(asset.path), info)
            keep_warnings()
            if time.monotonic() > deadline:
                enqueue(asset)  # outside a transaction, sent at once
                logger.info("asset %s: slice over, a new task carries on", asset.pk)
                return None
        keep_warnings()
        drop_frames(asset.frames.filter(index__gte=asset.frames_done))  # an earlier run's, past this run's end
        spans.settle(asset, Path(asset.path), info, finished=True)
        Asset.objects.filter(pk=asset.pk).update(frames_total=asset.frames_done)  # shot cuts add to the estimate
    finally:
        frames.close()
        for warning in frames.warnings:
            logger.warning("asset %s: %s", asset.pk, warning)
    return asset.faces.count()


def _store_frames(asset: Asset, frames: list[video.SampledFrame]) -> None:
    """Store one chunk of frames with their faces and vectors at once, so a crash never half-stores a chunk."""
    found = [_without_forgotten(asset, faces) for faces in face_engine.find_faces_batch([f.image for f in frames])]
    model_name = face_engine.model_name()
    with transaction.atomic():
        indexes = [frame.index for frame in frames]
        remembered = reindexing.remember(Face.objects.filter(asset=asset, frame__index__in=indexes))
        drop_frames(asset.frames.filter(index__in=indexes))  # an earlier run's
        rows: list[Face] = []
        faces: list[face_engine.Face] = []
        by_frame: list[list[Face]] = []
        for frame, frame_faces in zip(frames, found, strict=True):
            row = Frame(asset=asset, index=frame.index, timestamp=frame.timestamp)
            if frame_faces:
                row.thumbnail.save(f"asset{asset.pk}.jpg", ContentFile(jpeg(frame.image, FRAME_SIDE)), save=False)
            row.save()
            by_frame.append([_face_row(asset, face, model_name, frame=row) for face in frame_faces])
            rows += by_frame[-1]
            faces += frame_faces
        if not asset.preview:
            asset.preview.save(f"asset{asset.pk}.jpg", ContentFile(jpeg(frames[0].image, PREVIEW_SIDE)), save=False)
        asset.model_name = model_name
        asset.frames_done = frames[-1].index + 1
        asset.save(update_fields=["preview", "model_name", "frames_done"])
        vector_store.insert(
            [
                vector_store.FaceVector(row.pk, face.embedding, asset.pk, asset.kind, cast(Frame, row.frame).timestamp)
                for row, face in zip(rows, faces, strict=True)
            ]
        )
        reindexing.restore(rows, remembered)
        vectors = {row.pk: face.embedding for row, face in zip(rows, faces, strict=True)}
        touched = _link_tracks(asset, frames, by_frame, vectors)
        assignment.assign_new_faces(rows, list(vectors.values()))
        assignment.unify_tracks(touched)
    logger.info("asset %s: frames %d-%d stored, %d faces", asset.pk, frames[0].index, frames[-1].index, len(faces))


def _store_faces(
    asset: Asset, faces: list[face_engine.Face], photo: Image.Image, remembered: list[reindexing.Remembered]
) -> None:
    """Write the faces, their crops and the photo's preview, then the vectors: if Milvus refuses, nothing is left.
    Faces in the place of earlier ones keep what users decided about those (people/reindexing.py)."""
    model_name = face_engine.model_name()
    with transaction.atomic():
        clear_index(asset)
        rows = [_face_row(asset, face, model_name) for face in faces]
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


def _without_forgotten(asset: Asset, faces: list[face_engine.Face]) -> list[face_engine.Face]:
    """The faces that are not of a forgotten person: theirs are dropped here, never stored (people/blocklist.py)."""
    forgotten = blocklist.forgotten_mask([face.embedding for face in faces], face_engine.model_name())
    kept = [face for face, drop in zip(faces, forgotten, strict=True) if not drop]
    if len(kept) < len(faces):
        logger.info("asset %s: %d faces of forgotten people dropped", asset.pk, len(faces) - len(kept))
    return kept


def _link_tracks(asset: Asset, frames: list[video.SampledFrame], by_frame: list[list[Face]], vectors: dict) -> set[int]:
    """Link each frame's faces to those of the sampled frame before (the last chunk's, for the first frame);
    a face that continues none, or is in the first frame of a shot, starts its own track, its span settled later
    (spans.settle). Returns the tracks the chunk touched."""
    same_person = calibration.for_model(face_engine.model_name()).threshold
    before = list(Face.objects.filter(asset=asset, frame__index=frames[0].index - 1))
    stored = vector_store.vectors_of([face.pk for face in before]) if before else {}
    previous = [(face, tracks.TrackedFace(tuple(face.box), stored[face.pk])) for face in before if face.pk in stored]
    time_before = asset.frames.filter(index=frames[0].index - 1).values_list("timestamp", flat=True).first()
    touched: set[int] = set()
    for frame, frame_faces in zip(frames, by_frame, strict=True):
        if shots.is_cut(time_before, frame.timestamp, settings.VIDEO_SAMPLE_FPS):
            previous = []  # a new shot: whoever is in it came on screen at this frame
        time_before = frame.timestamp
        current = [tracks.TrackedFace(tuple(row.box), vectors[row.pk]) for row in frame_faces]
        links = tracks.link([tracked for _, tracked in previous], current, same_person)
        for row, link in zip(frame_faces, links, strict=True):
            row.track = row.pk if link is None else (previous[link][0].track or previous[link][0].pk)
            touched.add(row.track)
        previous = list(zip(frame_faces, current, strict=True))
    Face.objects.bulk_update([row for frame_faces in by_frame for row in frame_faces], ["track"])
    started = [row for frame_faces in by_frame for row in frame_faces if row.track == row.pk]
    Track.objects.bulk_create(
        Track(face=row, asset=asset, start=cast(Frame, row.frame).timestamp, end=cast(Frame, row.frame).timestamp)
        for row in started
    )
    return touched


def _face_row(asset: Asset, face: face_engine.Face, model_name: str, frame: Frame | None = None) -> Face:
    left, top, right, bottom = face.box
    row = Face(
        asset=asset, frame=frame, left=left, top=top, right=right, bottom=bottom,
        probability=face.probability, model_name=model_name,
    )  # fmt: skip
    row.crop.save(f"asset{asset.pk}.jpg", ContentFile(jpeg(face.crop)), save=False)
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
