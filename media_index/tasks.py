"""Celery tasks: thin wrappers that own only the retry policy.

Django imports this module in every process, to register the tasks, so the indexing pipeline (torch, ffmpeg) is
imported in each task instead: a management command that only reads or queues work never loads it. The
worker imports it once before it forks its pool (CELERY_IMPORTS in the settings).
"""

from celery import shared_task
from django.conf import settings

from .vector_store import VectorStoreUnavailable


@shared_task(bind=True, max_retries=None)
def index_asset_task(self, asset_id: int) -> str | None:
    """Index one asset; while Milvus is down, retry with doubling waits, then fail the asset."""
    from . import indexing

    try:
        return indexing.index_asset(asset_id, task_id=self.request.id)
    except VectorStoreUnavailable as error:
        if self.request.retries >= settings.RETRY_LIMIT:
            return indexing.give_up(asset_id, error)
        raise self.retry(exc=error, countdown=_wait(self.request.retries)) from error


@shared_task(bind=True, max_retries=None)
def index_photos_task(self, asset_ids: list[int]) -> dict[int, str | None]:
    """Index several photos together (dispatch.photos_together); Milvus down, retry them as index_asset_task does."""
    from . import photo_batch

    try:
        return photo_batch.index_photos(asset_ids, task_id=self.request.id)
    except VectorStoreUnavailable as error:
        if self.request.retries >= settings.RETRY_LIMIT:
            return photo_batch.give_up(asset_ids, self.request.id, error)
        raise self.retry(exc=error, countdown=_wait(self.request.retries)) from error


@shared_task(bind=True, max_retries=None)
def index_stretch_task(self, stretch_id: int) -> str | None:
    """Index one stretch of a long video (stretches.py); Milvus down, retry as index_asset_task does."""
    from . import indexing

    try:
        return indexing.index_stretch(stretch_id, task_id=self.request.id)
    except VectorStoreUnavailable as error:
        if self.request.retries >= settings.RETRY_LIMIT:
            return indexing.give_up_stretch(stretch_id, error)
        raise self.retry(exc=error, countdown=_wait(self.request.retries)) from error


def _wait(retries: int) -> float:
    """Doubling waits between retries, up to RETRY_BACKOFF_MAX_SECONDS."""
    return min(settings.RETRY_BACKOFF_SECONDS * 2**retries, settings.RETRY_BACKOFF_MAX_SECONDS)
