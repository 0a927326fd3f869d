"""Celery tasks: thin wrappers that own only the retry policy."""

from celery import shared_task

from . import services
from .vector_store import VectorStoreUnavailable


@shared_task(autoretry_for=(VectorStoreUnavailable,), retry_backoff=5, retry_backoff_max=300, max_retries=10)
def index_asset_task(asset_id: int, resume: bool = False) -> str | None:
    return services.index_asset(asset_id, resume=resume)
