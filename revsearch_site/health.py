"""GET /healthz: whether the database, Redis, Milvus and the Celery workers answer (no login needed)."""

import logging

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from media_index import vector_store
from revsearch_site.celery import app as celery_app

logger = logging.getLogger(__name__)


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def check_redis() -> dict:
    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
    return {"ok": True}


def check_milvus() -> dict:
    vector_store.ping()
    return {"ok": True, "vectors": vector_store.count()}


def check_workers() -> dict:
    check_redis()  # without the broker, a ping would wait on reconnects instead of failing
    replies = celery_app.control.ping(timeout=1.0)
    workers = sorted(name for reply in replies for name in reply)
    return {"ok": bool(workers), "workers": workers}


CHECKS = {"database": check_database, "redis": check_redis, "milvus": check_milvus, "workers": check_workers}


def run_checks() -> dict[str, dict]:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as error:
            logger.warning("health check %s failed: %s", name, error)
            results[name] = {"ok": False, "error": str(error)}
    return results


@login_not_required
@require_GET
def healthz(request):
    results = run_checks()
    healthy = all(result["ok"] for result in results.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", **results}, status=200 if healthy else 503)
