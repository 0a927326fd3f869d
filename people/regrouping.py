"""The full rebuild runs by itself: once the queue is idle and enough faces came since the last one, the watcher
sends the regroup task, so faces that indexing left alone (people/assignment.py) find their people."""

import logging

from django.conf import settings
from django.db.models import Count, Max

from media_index.models import Asset, Face
from revsearch_site.celery import app as celery_app

from .models import PeopleEvent

logger = logging.getLogger(__name__)

REGROUP_TASK = "people.tasks.regroup_task"


def newest_regrouped_face() -> int:
    """The newest face id the last rebuild saw (0 before the first)."""
    last = PeopleEvent.objects.filter(action=PeopleEvent.Action.REBUILD).order_by("-id").first()
    return int(last.detail.get("newest_face", 0)) if last else 0


class Regrouper:
    """Sends the regroup task when no asset is waiting or being indexed and PEOPLE_REGROUP_AFTER_FACES new faces
    came since the last rebuild (or since the task was last sent); the watcher calls check() every few seconds."""

    def __init__(self) -> None:
        self.sent_up_to = 0

    def check(self) -> bool:
        if not settings.PEOPLE_REGROUP_AFTER_FACES or not settings.PEOPLE_ASSIGN_ON_INDEX:
            return False
        since = max(newest_regrouped_face(), self.sent_up_to)
        came = Face.objects.filter(id__gt=since).aggregate(newest=Max("id"), count=Count("id"))
        new = came["newest"]
        if new is None or came["count"] < settings.PEOPLE_REGROUP_AFTER_FACES:
            return False
        if Asset.objects.filter(status__in=Asset.UNFINISHED).exists():
            return False  # indexing first: the rebuild sees every face once the queue is idle
        celery_app.tasks[REGROUP_TASK].apply_async()
        self.sent_up_to = new
        logger.info("regrouping people: faces up to %d, the newest since face %d", new, since)
        return True
