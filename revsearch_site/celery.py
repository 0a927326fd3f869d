"""The Celery app: configured from Django settings (CELERY_*), tasks found in the apps."""

import logging
import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revsearch_site.settings")

logger = logging.getLogger(__name__)

app = Celery("revsearch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Out of memory, the kernel kills the process with the highest score. When a file blows up the pool process indexing
# it (or its ffmpeg), that process should be the one to go: its death is counted against the file. Raising one's own
# score needs no privilege.
POOL_OOM_SCORE_ADJ = 500


@worker_process_init.connect
def _prepare_pool_process(**_kwargs) -> None:
    """Each pool process offers itself first to the OOM killer, and loads the face models before its first task."""
    try:
        Path("/proc/self/oom_score_adj").write_text(f"{POOL_OOM_SCORE_ADJ}\n")
    except OSError as error:  # not Linux, or /proc read-only in a container: the kernel's own choice stands
        logger.info("pool process %s keeps its OOM score: %s", os.getpid(), error)
    from media_index import face_engine

    face_engine.load()
