"""A long video's stretches: parts of its timeline indexed by several tasks at once, then joined into one run.

A video at least two stretches long (REVSEARCH_VIDEO_STRETCH_SECONDS) is split when its indexing starts afresh, so
that every worker can take part of it. Each stretch has the claim rules of an asset (one current task id, deaths
counted, retried while Milvus is down) and stores its frames with indexes from its own range (Stretch.FRAME_RANGE),
so no two meet. When the last is done, the asset's next task joins them (video_indexing): frames renumbered in time
order, tracks linked across each boundary, and the edges left open there settled, as if one task had done it all.
"""

import logging
import math

from django.db import transaction
from django.db.models import F, Q, Sum

from . import dispatch, vector_store
from .models import Asset, Stretch
from .removal import drop_frames
from .video_probe import VideoInfo

logger = logging.getLogger(__name__)

# At most this many stretches a video (longer ones get longer stretches), so frame indexes stay in their column.
MAX_STRETCHES = 2_000


class Superseded(Exception):
    """The stretch is no longer this task's: the video failed or was queued again, or a newer task took it over."""


def plan(info: VideoInfo, sample_fps: float, stretch_seconds: float) -> list[tuple[float, float | None]]:
    """(start, end) of each stretch: whole sampling intervals, about stretch_seconds each, the last running to the
    end; none for a video shorter than two stretches (or stretch_seconds 0), which one task indexes in order."""
    if stretch_seconds <= 0 or info.duration < 2 * stretch_seconds:
        return []
    total = info.duration * sample_fps  # sampling intervals in the video
    intervals = max(math.ceil(stretch_seconds * sample_fps), math.ceil(total / MAX_STRETCHES))
    count = math.floor(total / intervals)
    if count < 2:
        return []
    starts = [number * intervals / sample_fps for number in range(count)]
    return list(zip(starts, [*starts[1:], None], strict=True))


def begin(asset: Asset, parts: list[tuple[float, float | None]]) -> None:
    """Create the video's stretches and send a task for each (once this commits)."""
    with transaction.atomic():
        rows = Stretch.objects.bulk_create(
            Stretch(asset=asset, number=number, start=start, end=end) for number, (start, end) in enumerate(parts)
        )
        for row in rows:
            dispatch.enqueue_stretch(row)
    logger.info("asset %s: split into %d stretches of %.0f s for the workers", asset.pk, len(rows), parts[0][1])


def send_unfinished(asset: Asset) -> int:
    """Send the asset's unfinished stretches again under new ids (the service restarted, or a task was lost)."""
    with transaction.atomic():
        unfinished = list(asset.stretches.exclude(status=Stretch.Status.DONE))
        for stretch in unfinished:
            dispatch.enqueue_stretch(stretch)
    if unfinished:
        logger.info("asset %s: %d stretches sent again", asset.pk, len(unfinished))
    return len(unfinished)


def claim(stretch_id: int, task_id: str) -> Stretch | None:
    """Mark the stretch processing if this task may index it (its current id, its video not ended), as
    indexing.claim does for an asset: the same task beginning again means its worker died, which is counted."""
    seen = ("status", "task_id", "claimed_by", "worker_deaths")
    before = Stretch.objects.filter(pk=stretch_id).values(*seen).first()
    if before is None or before["task_id"] != task_id or before["status"] == Stretch.Status.DONE:
        return None
    died = before["status"] == Stretch.Status.PROCESSING and before["claimed_by"] == task_id
    fields = {"status": Stretch.Status.PROCESSING, "claimed_by": task_id, "worker_deaths": before["worker_deaths"]}
    fields["worker_deaths"] += died
    ongoing = Q(asset__status__in=Asset.UNFINISHED)
    if not Stretch.objects.filter(ongoing, pk=stretch_id, **before).update(**fields):
        return None
    stretch = Stretch.objects.select_related("asset").get(pk=stretch_id)
    Asset.objects.filter(pk=stretch.asset_id, status=Asset.Status.RETRYING).update(status=Asset.Status.PROCESSING)
    if died:
        logger.warning(
            "asset %s: the worker indexing its %s died (%d deaths); task %s was delivered again",
            stretch.asset_id, stretch.describe(), stretch.worker_deaths, task_id,
        )  # fmt: skip
    return stretch


def hold(stretch: Stretch) -> None:
    """Inside the transaction that stores a chunk: lock the stretch, or raise Superseded if it is not ours any more.

    Failing or re-queueing the video deletes its stretches first (removal.clear_index, dispatch.requeue), so they
    wait for a chunk being stored, and a stretch gone means nothing more is stored.
    """
    ours = Stretch.objects.select_for_update(of=("self",)).filter(
        pk=stretch.pk, task_id=stretch.claimed_by, asset__status__in=Asset.UNFINISHED
    )
    if not ours.exists():
        raise Superseded(f"asset {stretch.asset_id}: its {stretch.describe()} is no longer task {stretch.claimed_by}'s")


def stored(stretch: Stretch, frames_done: int) -> int:
    """Note a chunk stored (inside its transaction); returns the asset's frames done, over all its stretches."""
    stretch.frames_done = frames_done
    Stretch.objects.filter(pk=stretch.pk).update(frames_done=frames_done)
    return Stretch.objects.filter(asset_id=stretch.asset_id).aggregate(done=Sum("frames_done"))["done"]


def retrying(stretch: Stretch, error: Exception) -> None:
    Stretch.objects.filter(pk=stretch.pk, task_id=stretch.claimed_by).update(status=Stretch.Status.RETRYING)
    logger.warning("asset %s: %s retrying: %s", stretch.asset_id, stretch.describe(), error)


def finish(stretch: Stretch) -> None:
    """Mark the stretch done; the last one done sends the asset's task that joins them."""
    with transaction.atomic():
        # Stretches ending at once take turns here, so exactly one of them sees that none is left.
        Asset.objects.select_for_update().filter(pk=stretch.asset_id).first()
        if not Stretch.objects.filter(pk=stretch.pk, task_id=stretch.claimed_by).update(status=Stretch.Status.DONE):
            raise Superseded(f"asset {stretch.asset_id}: its {stretch.describe()} was taken over")
        logger.info("asset %s: %s done, %d frames", stretch.asset_id, stretch.describe(), stretch.frames_done)
        if not Stretch.objects.filter(asset_id=stretch.asset_id).exclude(status=Stretch.Status.DONE).exists():
            dispatch.enqueue(stretch.asset)


def keep_warnings(asset: Asset, warnings: list[str]) -> None:
    """Add a stretch's damage to the asset's warning; stretches write in turn, and a warning seen again is not."""
    if not warnings:
        return
    with transaction.atomic():
        current = Asset.objects.select_for_update().filter(pk=asset.pk).values_list("warning", flat=True).first()
        lines = (current or "").splitlines()
        added = [warning for warning in warnings if warning not in lines]
        if added:
            Asset.objects.filter(pk=asset.pk).update(warning="\n".join(lines + added))


def renumber(asset: Asset) -> list[int]:
    """Inside the join's transaction: number the stretches' frames 0, 1, 2... in time order, as one task would have,
    drop what an earlier run left that this one did not replace, and delete the stretches. Returns the new index of
    each stretch's first frame after the first: the boundaries where tracks are joined."""
    Asset.objects.select_for_update().filter(pk=asset.pk).first()
    parts = [part for part in asset.stretches.order_by("number") if part.frames_done]
    ours = Q(pk__in=[])
    for part in parts:
        ours |= Q(index__gte=part.first_index, index__lt=part.first_index + part.frames_done)
    drop_frames(asset.frames.exclude(ours))
    offset, boundaries = 0, []
    for part in parts:
        if offset:
            boundaries.append(offset)
        frames = asset.frames.filter(index__gte=part.first_index, index__lt=part.first_index + part.frames_done)
        shift = part.first_index - offset
        if shift and part.first_index >= offset + part.frames_done:
            frames.update(index=F("index") - shift)  # the new range is free and does not overlap the old
        else:
            # Row by row from the first: each new index is free by then (earlier rows moved down, later rows are
            # above it), which one UPDATE does not promise on every database.
            for frame in frames.order_by("index").only("pk", "index"):
                asset.frames.filter(pk=frame.pk).update(index=frame.index - shift)
        offset += part.frames_done
    asset.stretches.all().delete()
    Asset.objects.filter(pk=asset.pk).update(frames_done=offset, frames_total=offset)
    asset.frames_done = offset
    return boundaries


def drop_stray_vectors(asset: Asset) -> int:
    """Delete the asset's vectors with no face: stored by a stretch whose worker died before its chunk committed."""
    kept = set(asset.faces.values_list("pk", flat=True))
    stray = [face_id for face_id in vector_store.stored_faces(asset.pk) if face_id not in kept]
    vector_store.delete_faces(stray)
    if stray:
        logger.info("asset %s: %d vectors of interrupted stretches deleted", asset.pk, len(stray))
    return len(stray)
