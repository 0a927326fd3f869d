"""Queue dispatch: every indexing task is sent once its asset's row is committed, under an id only it holds."""

import logging
import time
import uuid
from collections.abc import Iterable

from django.db import transaction

from revsearch_site.celery import app as celery_app

from .models import Asset

logger = logging.getLogger(__name__)

# By name, so that sending needs none of the worker's code (media_index.tasks imports the indexing, which sends).
INDEX_TASK = "media_index.tasks.index_asset_task"


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
    if time.monotonic() < _queue_down_until:
        return False
    try:
        celery_app.tasks[INDEX_TASK].apply_async((asset_id,), task_id=task_id)
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
    unfinished = Asset.objects.filter(status__in=Asset.UNFINISHED)
    with transaction.atomic():
        assets = list(unfinished.select_for_update())
        unfinished.update(status=Asset.Status.QUEUED)
        for asset in assets:
            enqueue(asset)
    return len(assets)
