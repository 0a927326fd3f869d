"""What indexing is doing: assets by stage, the broker's queue, workers, throughput, running videos, failures."""

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django_celery_results.models import TaskResult
from kombu.transport.redis import PRIORITY_STEPS, Channel

from revsearch_site import supervisor
from revsearch_site.celery import app as celery_app

from . import dispatch, upkeep
from .models import Asset

logger = logging.getLogger(__name__)

S = Asset.Status
# Each stage of the queue, by the statuses it gathers.
STAGES = {
    "waiting": (S.QUEUED, S.RETRYING),
    "running": (S.PROCESSING,),
    "done": (S.INDEXED, S.NO_FACES),
    "failed": (S.FAILED, S.UNSUPPORTED),
}
# Statuses that stamp indexed_at when an asset gets there: what throughput counts.
FINISHED = (S.INDEXED, S.NO_FACES, S.FAILED)
HISTORY_MINUTES = 60
LIST_LIMIT = 50
ERROR_CHARS = 1000
BROKER_TIMEOUT_SECONDS = 1.0
# A ping waits its whole timeout for replies, so its answer is kept a while: polling the page stays quick.
WORKERS_PING_SECONDS = 0.5
WORKERS_CACHE_SECONDS = 15


def stage_counts(counts: dict[str, int]) -> dict[str, int]:
    """Assets per stage of the queue, from the counts per status."""
    return {stage: sum(counts[status] for status in statuses) for stage, statuses in STAGES.items()}


def broker_queue() -> dict:
    """Messages waiting in the broker's queue and those taken by workers but not acknowledged; None if unreachable."""
    queue = celery_app.conf.task_default_queue
    # The Redis transport keeps one list per priority step (kombu's `_q_for_pri`), and the messages delivered to a
    # worker but not yet acknowledged (acks_late: the ones running and the ones prefetched) in one hash.
    keys = [queue] + [f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS if step]
    try:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL,
            socket_timeout=BROKER_TIMEOUT_SECONDS,
            socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        )
        try:
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.llen(key)
                pipe.hlen(Channel.unacked_key)
                *lengths, taken = pipe.execute()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as error:
        return {"messages": None, "taken": None, "error": f"Redis is unreachable: {error}"}
    return {"messages": sum(lengths), "taken": taken, "error": ""}


def worker_count() -> int | None:
    """How many Celery workers answer a ping (None when the ping fails); asked at most every WORKERS_CACHE_SECONDS."""
    key = "monitoring-workers-" + hashlib.sha256(settings.CELERY_BROKER_URL.encode()).hexdigest()[:16]
    cached = cache.get(key)
    if cached is not None:
        return cached["count"]
    try:
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
            replies = celery_app.control.ping(timeout=WORKERS_PING_SECONDS, connection=connection)
        count = len({name for reply in replies for name in reply})
    except Exception as error:  # kombu raises several kinds when the broker goes away mid-ping
        logger.warning("could not ping the Celery workers: %s", error)
        count = None
    cache.set(key, {"count": count}, WORKERS_CACHE_SECONDS)
    return count


def throughput(now: datetime | None = None) -> dict:
    """Assets finished in the last minute and the last hour, and how many in each of the last 60 clock minutes."""
    now = now or timezone.now()
    finished = Asset.objects.filter(status__in=FINISHED)
    last_hour = finished.filter(indexed_at__gt=now - timedelta(hours=1), indexed_at__lte=now).count()
    last_minute = finished.filter(indexed_at__gt=now - timedelta(minutes=1), indexed_at__lte=now).count()
    this_minute = now.replace(second=0, microsecond=0)
    first_minute = this_minute - timedelta(minutes=HISTORY_MINUTES - 1)
    minutes = [first_minute + timedelta(minutes=n) for n in range(HISTORY_MINUTES)]
    history = {minute: {"done": 0, "failed": 0} for minute in minutes}
    rows = (
        finished.filter(indexed_at__gte=first_minute, indexed_at__lte=now)
        .annotate(minute=TruncMinute("indexed_at", tzinfo=timezone.get_current_timezone()))
        .values("minute", "status")
        .order_by()
        .annotate(n=Count("id"))
    )
    for row in rows:
        if row["minute"] in history:  # aware datetimes: equal instants match whatever their zone
            history[row["minute"]]["failed" if row["status"] == S.FAILED else "done"] += row["n"]
    return {
        "last_minute": last_minute,
        "last_hour": last_hour,
        "per_minute": round(last_hour / 60, 1),
        "busiest_minute": max(counts["done"] + counts["failed"] for counts in history.values()),
        "history": [{"minute": timezone.localtime(minute).strftime("%H:%M")} | history[minute] for minute in minutes],
    }


def running_assets(limit: int = LIST_LIMIT) -> list[dict]:
    """The assets being indexed now; videos with how many of their sampled frames are done, and of a long video's
    stretches (media_index/stretches.py) how many are done."""
    processing = (
        Asset.objects.filter(status=S.PROCESSING)
        .annotate(
            stretch_count=Count("stretches"), stretches_done=Count("stretches", filter=Q(stretches__status="done"))
        )
        .order_by("pk")[:limit]
    )
    return [
        {
            "id": asset.pk,
            "path": asset.display_path,
            "kind": asset.kind,
            "frames_done": asset.frames_done,
            "frames_total": asset.frames_total,
            "percent": 100 * asset.frames_done // asset.frames_total if asset.frames_total else None,
            "stretches": asset.stretch_count,
            "stretches_done": asset.stretches_done,
            "progress": asset.progress
            + (f", {asset.stretches_done} of {asset.stretch_count} stretches done" if asset.stretch_count else ""),
        }
        for asset in processing
    ]


def recent_failures(limit: int = LIST_LIMIT) -> list[dict]:
    """Failed and unsupported assets, the newest first, with why; only failed ones can be retried."""
    failures = Asset.objects.filter(status__in=STAGES["failed"]).order_by("-updated_at", "-pk")[:limit]
    return [
        {
            "id": asset.pk,
            "path": asset.display_path,
            "status": asset.status,
            "error": asset.error[:ERROR_CHARS],
            "when": timezone.localtime(asset.updated_at).strftime("%Y-%m-%d %H:%M:%S"),
            "retry": asset.status == S.FAILED and asset.kind != Asset.Kind.OTHER,
        }
        for asset in failures
    ]


def snapshot() -> dict:
    """Everything the tasks page shows, ready for JSON."""
    counts = upkeep.status_counts()
    broker = broker_queue()
    reachable = broker["messages"] is not None
    return {
        "generated_at": timezone.localtime().strftime("%Y-%m-%d %H:%M:%S"),
        "stages": stage_counts(counts),
        "statuses": counts,
        # Queued while Redis was down: the watcher sends these once it is back.
        "unsent": Asset.objects.filter(status=S.QUEUED, task_sent=False).count(),
        "broker": broker,
        # Without the broker a ping would wait on reconnects instead of failing.
        "workers": worker_count() if reachable else None,
        "throughput": throughput(),
        "running": running_assets(),
        "failures": recent_failures(),
        "failing_processes": failing_processes(),
    }


def failing_processes() -> list[dict]:
    """The processes of `serve` that are down or keep dying, each with its last error (none under compose)."""
    states = supervisor.read_states() or []
    return [{"name": state.name, "summary": state.summary()} for state in states if state.failing()]


def retry_failed(asset_ids: Iterable[int] | None = None) -> int:
    """Queue failed assets again from scratch (all of them, or those given); returns how many."""
    failed = Asset.objects.filter(status=S.FAILED).exclude(kind=Asset.Kind.OTHER).order_by("pk")
    if asset_ids is not None:
        failed = failed.filter(pk__in=list(asset_ids))
    count = dispatch.requeue(failed)
    if count:
        logger.info("queued %d failed assets again", count)
    return count


def delete_old_results(now: datetime | None = None) -> int:
    """Delete the stored task results older than CELERY_RESULT_EXPIRES, so the table does not grow forever."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CELERY_RESULT_EXPIRES)
    deleted, _ = TaskResult.objects.filter(date_done__lt=cutoff).delete()
    if deleted:
        logger.info("deleted %d task results from before %s", deleted, cutoff)
    return deleted
