"""GET /healthz: whether the database, Redis, Milvus and the Celery workers answer (no login needed).

Anonymous callers (load balancers, container health checks, anyone who can reach the port) learn only whether the
service is healthy; signed-in users also see each check's result and the reason of a 503.
"""

import logging
import threading
import time

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.signals import setting_changed
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from media_index import vector_store
from revsearch_site import supervisor
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
    if not workers:
        return {"ok": False, "workers": [], "error": "no Celery worker answered a ping within 1 s"}
    return {"ok": True, "workers": workers}


# Name -> check. A check returns a dict with "ok" (and "error" when not ok); one that raises counts as not ok.
CHECKS = {"database": check_database, "redis": check_redis, "milvus": check_milvus, "workers": check_workers}
CHECKS["processes"] = supervisor.health  # serve's processes: none down, none dying again and again

# One run of the checks at a time in each process, and its result reused for HEALTH_CACHE_SECONDS: a flood of
# health checks costs one round of pings (Redis, Milvus, every worker) per interval, not one per request. While a run
# is under way, other callers get the last result rather than wait for it (the checks can take seconds when something
# is down), so health checks never hold more than one of the web server's threads.
_lock = threading.Lock()
_last: tuple[float, dict[str, dict]] | None = None
clock = time.monotonic


def run_checks() -> dict[str, dict]:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as error:
            logger.warning("health check %s failed: %s", name, error)
            results[name] = {"ok": False, "error": str(error)}
    return results


def recent_results() -> dict[str, dict]:
    """The checks' results, run again only when the last run started HEALTH_CACHE_SECONDS ago or more."""
    global _last
    last = _last
    if last is not None and clock() - last[0] < settings.HEALTH_CACHE_SECONDS:
        return last[1]
    # Only the first call in a process, with no result to give, waits for a run under way.
    if not _lock.acquire(blocking=last is None):
        assert last is not None  # a blocking acquire does not fail
        return last[1]
    try:
        current = _last
        if current is None or clock() - current[0] >= settings.HEALTH_CACHE_SECONDS:
            started = clock()
            current = _last = (started, run_checks())
        return current[1]
    finally:
        _lock.release()


def forget_results(**_kwargs) -> None:
    """Drop the kept result, so that the next call runs the checks (e.g. after a test changed a setting)."""
    global _last
    _last = None


setting_changed.connect(forget_results)


@login_not_required
@require_GET
def healthz(request):
    results = recent_results()
    healthy = all(result["ok"] for result in results.values())
    body: dict[str, object] = {"status": "ok" if healthy else "degraded"}
    if request.user.is_authenticated:
        failing = {name: result for name, result in results.items() if not result["ok"]}
        if failing:
            body["reason"] = "; ".join(f"{name}: {result.get('error') or 'not ok'}" for name, result in failing.items())
        body |= results
    return JsonResponse(body, status=200 if healthy else 503)
