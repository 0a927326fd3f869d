"""Queue dispatch: every indexing task is sent once its asset's row is committed, under an id only it holds."""

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from revsearch_site.celery import app as celery_app

from .models import Asset, Stretch

logger = logging.getLogger(__name__)

# By name, so that sending needs none of the worker's code (media_index.tasks imports the indexing, which sends).
INDEX_TASK = "media_index.tasks.index_asset_task"
INDEX_PHOTOS_TASK = "media_index.tasks.index_photos_task"
INDEX_STRETCH_TASK = "media_index.tasks.index_stretch_task"
# Inside photos_together: the (asset, task id) of the photos committed and not sent yet, per thread.
_gathering = threading.local()


def enqueue(asset: Asset) -> None:
    """Give the asset a new task id, and send that task once the transaction commits.

    Only the task with the asset's current id may work on it, so a task sent earlier for the same asset, or
    sent twice, does nothing. If the queue cannot be reached the asset keeps `task_sent` false and the
    watcher's `send_unsent` sends it when the queue is back.
    """
    task_id = str(uuid.uuid4())
    Asset.objects.filter(pk=asset.pk).update(task_id=task_id, task_sent=False)
    photos = getattr(_gathering, "photos", None)
    if photos is not None and asset.kind == Asset.Kind.IMAGE:
        transaction.on_commit(lambda: _gather(photos, asset.pk, task_id))
    else:
        transaction.on_commit(lambda: _send([asset.pk], task_id))


def enqueue_stretch(stretch: Stretch) -> None:
    """Give a long video's stretch (stretches.py) a new task id, sent once the transaction commits, as enqueue does."""
    task_id = str(uuid.uuid4())
    Stretch.objects.filter(pk=stretch.pk).update(task_id=task_id, task_sent=False)
    transaction.on_commit(lambda: _send_stretch(stretch.pk, task_id))


@contextlib.contextmanager
def photos_together() -> Iterator[None]:
    """Photos queued inside the block are sent PHOTO_BATCH to a task (the watcher's arrivals); others as they come.

    Each photo first gets a task id of its own (enqueue); a batch's task then takes over the ids of those whose id is
    still that one, each by a compare-and-set, so a photo re-queued meanwhile stays with its own task. Those never
    sent (the watcher stopped, the queue down) keep `task_sent` false, and send_unsent sends them one by one.
    """
    if getattr(_gathering, "photos", None) is not None or settings.PHOTO_BATCH <= 1:
        yield
        return
    _gathering.photos = []
    try:
        yield
    finally:
        photos, _gathering.photos = _gathering.photos, None
        _send_together(photos)


def _gather(photos: list[tuple[int, str]], asset_id: int, task_id: str) -> None:
    """Hold a committed photo for its batch; a full batch goes at once, so a long catch-up keeps the workers busy."""
    if photos is not getattr(_gathering, "photos", None):
        _send([asset_id], task_id)  # committed after its block ended
        return
    photos.append((asset_id, task_id))
    if len(photos) >= settings.PHOTO_BATCH:
        _send_together(photos[:])
        photos.clear()


def _send_together(photos: list[tuple[int, str]]) -> None:
    """Send the photos PHOTO_BATCH to a task, under the task's id (a photo alone keeps its own task)."""
    for start in range(0, len(photos), settings.PHOTO_BATCH):
        batch = photos[start : start + settings.PHOTO_BATCH]
        if len(batch) == 1:
            _send([batch[0][0]], batch[0][1])
            continue
        task_id = str(uuid.uuid4())
        queued_with = Q()
        for asset_id, own_id in batch:
            queued_with |= Q(pk=asset_id, task_id=own_id)
        Asset.objects.filter(queued_with).update(task_id=task_id)
        joined = Asset.objects.filter(pk__in=[asset_id for asset_id, _ in batch], task_id=task_id)
        if asset_ids := sorted(joined.values_list("pk", flat=True)):
            _send(asset_ids, task_id)


# After a failed send, others are not tried for a while: each failure waits out the broker's own retries.
QUEUE_DOWN_PAUSE_SECONDS = 5.0
_queue_down_until = 0.0


def _send(asset_ids: list[int], task_id: str) -> bool:
    """Put one indexing task on the queue, for one asset or several photos; says whether it got there."""
    one = len(asset_ids) == 1
    what = f"asset {asset_ids[0]}" if one else f"photos {', '.join(map(str, asset_ids))}"
    if not _apply(INDEX_TASK if one else INDEX_PHOTOS_TASK, asset_ids[0] if one else asset_ids, task_id, what):
        return False
    Asset.objects.filter(pk__in=asset_ids, task_id=task_id).update(task_sent=True)
    return True


def _send_stretch(stretch_id: int, task_id: str) -> bool:
    if not _apply(INDEX_STRETCH_TASK, stretch_id, task_id, f"video stretch {stretch_id}"):
        return False
    Stretch.objects.filter(pk=stretch_id, task_id=task_id).update(task_sent=True)
    return True


def _apply(task: str, argument: int | list[int], task_id: str, what: str) -> bool:
    """Send one task by name; while the queue is unreachable, say so once a pause and send nothing."""
    global _queue_down_until
    if time.monotonic() < _queue_down_until:
        return False
    try:
        celery_app.tasks[task].apply_async((argument,), task_id=task_id)
    except Exception as error:  # kombu raises several kinds when Redis is down; all mean "not sent"
        _queue_down_until = time.monotonic() + QUEUE_DOWN_PAUSE_SECONDS
        logger.warning("%s: the task queue is unreachable (%s); sent when the queue is back", what, error)
        return False
    return True


def send_unsent() -> int:
    """Send again, under new ids, the tasks that never reached the queue; returns how many got there."""
    sent = 0
    unsent = Asset.objects.filter(status__in=[Asset.Status.QUEUED, Asset.Status.PROCESSING], task_sent=False)
    for asset in unsent.only("pk").order_by("pk"):
        task_id = str(uuid.uuid4())
        Asset.objects.filter(pk=asset.pk).update(task_id=task_id)
        if not _send([asset.pk], task_id):
            break
        sent += 1
    stretches = Stretch.objects.filter(task_sent=False, asset__status__in=Asset.UNFINISHED)
    for stretch in stretches.exclude(status=Stretch.Status.DONE).only("pk").order_by("pk"):
        task_id = str(uuid.uuid4())
        Stretch.objects.filter(pk=stretch.pk).update(task_id=task_id)
        if not _send_stretch(stretch.pk, task_id):
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
            # A run split into stretches starts over: its stretches' tasks find theirs gone and stop.
            Stretch.objects.filter(asset=asset).delete()
            Asset.objects.filter(pk=asset.pk).update(
                status=Asset.Status.QUEUED, error="", indexed_at=None, frames_done=0
            )
            enqueue(asset)
        count += 1
    return count


def requeue_unfinished() -> int:
    """Queue again the assets left unfinished when the service stopped (run before workers start)."""
    unfinished = Asset.objects.filter(status__in=Asset.UNFINISHED)
    with transaction.atomic():
        assets = list(unfinished.select_for_update())
        unfinished.update(status=Asset.Status.QUEUED)
        for asset in assets:
            enqueue(asset)
    return len(assets)
