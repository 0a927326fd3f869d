"""Celery tasks: thin wrappers that own only the retry policy."""

from celery import shared_task
from django.conf import settings

from . import indexing
from .vector_store import VectorStoreUnavailable


@shared_task(bind=True, max_retries=None)
def index_asset_task(self, asset_id: int) -> str | None:
    """Index one asset; while Milvus is down, retry with doubling waits, then fail the asset."""
    try:
        return indexing.index_asset(asset_id, task_id=self.request.id)
    except VectorStoreUnavailable as error:
        if self.request.retries >= settings.RETRY_LIMIT:
            return indexing.give_up(asset_id, error)
        wait = min(settings.RETRY_BACKOFF_SECONDS * 2**self.request.retries, settings.RETRY_BACKOFF_MAX_SECONDS)
        raise self.retry(exc=error, countdown=wait) from error
