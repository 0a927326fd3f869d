"""Celery tasks of the people app: thin wrappers (they import the work when they run, as media_index/tasks.py says)."""

from celery import shared_task
from django.conf import settings


@shared_task(soft_time_limit=settings.PEOPLE_REGROUP_TIME_LIMIT, time_limit=settings.PEOPLE_REGROUP_TIME_LIMIT + 30)
def regroup_task() -> str:
    """Group every face again (people/rebuild.py); the watcher sends it when the queue is idle."""
    from . import rebuild

    return rebuild.rebuild().as_text()
