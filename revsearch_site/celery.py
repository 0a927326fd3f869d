"""The Celery app: configured from Django settings (CELERY_*), tasks found in the apps."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revsearch_site.settings")

app = Celery("revsearch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _load_models(**_kwargs) -> None:
    """Each pool process loads the face models once, before its first task, not during it."""
    from media_index import face_engine

    face_engine.load()
