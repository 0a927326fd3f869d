"""The tasks page (/tasks/): queue figures, throughput, retries, the broker's queue on a real Redis, task results."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django_celery_results.backends import DatabaseBackend
from django_celery_results.models import TaskResult

from media_index import dispatch, monitoring, tasks
from media_index.models import Asset
from revsearch_site import processes
from revsearch_site.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)

S = Asset.Status


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """No worker count kept from another test, and no pause on sending left by one that saw the queue down."""
    cache.clear()
    monkeypatch.setattr(dispatch, "_queue_down_until", 0.0)


@pytest.fixture
def no_redis(settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{processes.free_port()}/0"
    return settings.CELERY_BROKER_URL


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real redis-server of this module's own."""
    port = processes.free_port()
    server = processes.redis(port, tmp_path_factory.mktemp("redis")).start()
    try:
        server.wait_ready()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.stop()


@pytest.fixture
def user_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("operator", password="a-long-password-1"))
    return client


def make(name: str, status: str, kind: str = Asset.Kind.IMAGE, **fields) -> Asset:
    """An asset in the given status; fields the model sets itself (updated_at) are written afterwards."""
    later = {key: fields.pop(key) for key in ("updated_at",) if key in fields}
    fields = {"task_sent": True} | fields
    asset = Asset.objects.create(
        path=f"/archive/{name}", sha256=name, kind=kind, size=1, mtime=0, status=status, **fields
    )
    Asset.objects.filter(pk=asset.pk).update(**later)
    return asset


@pytest.fixture
def archive() -> dict[str, Asset]:
    """Assets in every status: 3 waiting (one never sent), 2 running (a video 40% done), 3 done, 2 failed."""
    now = timezone.now()
    return {
        "queued": make("queued.jpg", S.QUEUED),
        "unsent": make("unsent.jpg", S.QUEUED, task_sent=False),
        "retrying": make("retrying.jpg", S.RETRYING, error="Milvus is unreachable"),
        "photo": make("photo.jpg", S.PROCESSING),
        "video": make("clip.mp4", S.PROCESSING, kind=Asset.Kind.VIDEO, frames_done=4, frames_total=10),
        "indexed": make("indexed.jpg", S.INDEXED, indexed_at=now),
        "indexed2": make("indexed2.jpg", S.INDEXED, indexed_at=now),
        "no_faces": make("empty.jpg", S.NO_FACES, indexed_at=now),
        "failed": make("bad.jpg", S.FAILED, error="cannot decode the photo", updated_at=now - timedelta(minutes=5)),
        "unsupported": make("notes.txt", S.UNSUPPORTED, kind=Asset.Kind.OTHER, error="not a photo or video"),
        "duplicate": make("copy.jpg", S.DUPLICATE),
    }


def test_the_tasks_pages_need_a_login(client):
    for answer in (client.get("/tasks/"), client.get("/tasks/status.json"), client.post("/tasks/retry", {"asset": 1})):
        assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")


def test_the_figures_match_the_assets_in_each_status(user_client, archive, no_redis):
    data = user_client.get("/tasks/status.json").json()
    assert data["stages"] == {"waiting": 3, "running": 2, "done": 3, "failed": 2}
    assert data["statuses"]["duplicate"] == 1 and data["unsent"] == 1
    running = {item["path"]: item for item in data["running"]}
    assert running.keys() == {"/archive/photo.jpg", "/archive/clip.mp4"}
    assert running["/archive/clip.mp4"]["percent"] == 40 and running["/archive/clip.mp4"]["progress"] == "4/10 (40%)"
    assert running["/archive/photo.jpg"]["percent"] is None
    # Newest first: the unsupported file was recorded after the failure five minutes ago; only a failure is retried.
    assert [(item["path"], item["retry"]) for item in data["failures"]] == [
        ("/archive/notes.txt", False),
        ("/archive/bad.jpg", True),
    ]
    assert data["failures"][1]["error"] == "cannot decode the photo"
    assert data["throughput"]["last_hour"] == 3


def test_a_long_video_in_stretches_shows_how_many_are_done(user_client, archive, no_redis):
    from media_index.models import Stretch

    for number, status in enumerate(["done", "done", "processing", "queued"]):
        Stretch.objects.create(asset=archive["video"], number=number, start=60.0 * number, status=status)
    running = {item["path"]: item for item in user_client.get("/tasks/status.json").json()["running"]}
    video = running["/archive/clip.mp4"]
    assert (video["stretches"], video["stretches_done"]) == (4, 2)
    assert video["progress"] == "4/10 (40%), 2 of 4 stretches done"
    assert (
        running["/archive/photo.jpg"]["stretches"] == 0 and "stretches" not in running["/archive/photo.jpg"]["progress"]
    )


def test_the_page_shows_the_figures_and_the_header_links_to_it(user_client, archive, no_redis):
    page = user_client.get("/tasks/").content.decode()
    assert 'data-key="stages.waiting">3<' in page and 'data-key="stages.running">2<' in page
    assert 'data-key="stages.done">3<' in page and 'data-key="stages.failed">2<' in page
    assert 'style="width:40%"' in page  # the video's progress bar
    # The failure's Retry shows; the unsupported file's and the one in the row the page clones for new rows do not.
    assert page.count('data-if="retry">') == 1 and page.count('data-if="retry" hidden>') == 2
    assert f'name="asset" data-value="id" value="{archive["failed"].pk}"' in page
    assert "Retry all failed (" in page
    assert page.count('name="csrfmiddlewaretoken"') >= 3
    assert page.count('class="done" style="height:') == 60
    assert '<a href="/tasks/">Tasks</a>' in user_client.get("/").content.decode()


def test_throughput_counts_only_the_last_hour(settings):
    settings.TIME_ZONE = "UTC"
    now = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
    for name, status, ago in [
        ("now.jpg", S.INDEXED, timedelta(seconds=10)),
        ("half.jpg", S.NO_FACES, timedelta(minutes=30)),
        ("half-bad.jpg", S.FAILED, timedelta(minutes=30)),
        ("edge.jpg", S.INDEXED, timedelta(minutes=59)),
        ("old.jpg", S.INDEXED, timedelta(minutes=61)),
        ("older.jpg", S.FAILED, timedelta(hours=3)),
        ("future.jpg", S.INDEXED, timedelta(minutes=-5)),
    ]:
        make(name, status, indexed_at=now - ago)
    make("requeued.jpg", S.QUEUED)  # re-queued assets lose indexed_at; a stale one must not count anyway
    Asset.objects.filter(path="/archive/requeued.jpg").update(indexed_at=now - timedelta(minutes=1))

    figures = monitoring.throughput(now)
    assert figures["last_hour"] == 4 and figures["last_minute"] == 1
    assert figures["per_minute"] == round(4 / 60, 1)
    history = figures["history"]
    assert len(history) == 60 and (history[0]["minute"], history[-1]["minute"]) == ("11:01", "12:00")
    assert history[-1] | {"minute": ""} == {"minute": "", "done": 1, "failed": 0}
    assert history[0]["done"] == 1  # 59 minutes ago, at 11:01:30
    assert [item for item in history if item["minute"] == "11:30"] == [{"minute": "11:30", "done": 1, "failed": 1}]
    assert sum(item["done"] + item["failed"] for item in history) == 4
    assert figures["busiest_minute"] == 2


def test_the_retry_button_queues_a_failed_asset_again(user_client, archive, sent, no_redis):
    failed = archive["failed"]
    answer = user_client.post("/tasks/retry", {"asset": failed.pk}, follow=True)
    assert answer.redirect_chain == [("/tasks/", 302)]
    assert "Queued 1 failed asset again." in answer.content.decode()
    failed.refresh_from_db()
    assert (failed.status, failed.error, failed.indexed_at) == (S.QUEUED, "", None)
    assert sent == [failed.pk]

    # Unsupported files, and an asset no longer failed (a second click), are not queued.
    for target in (archive["unsupported"], failed):
        answer = user_client.post("/tasks/retry", {"asset": target.pk}, follow=True)
        assert "Nothing to retry" in answer.content.decode()
    assert sent == [failed.pk]
    assert Asset.objects.get(pk=archive["unsupported"].pk).status == S.UNSUPPORTED


def test_retry_all_queues_every_failed_asset(user_client, archive, sent, no_redis):
    other = make("other-bad.jpg", S.FAILED, error="truncated")
    user_client.post("/tasks/retry", {"asset": "all"})
    assert sorted(sent) == sorted([archive["failed"].pk, other.pk])
    assert not Asset.objects.filter(status=S.FAILED).exists()
    assert Asset.objects.get(pk=archive["unsupported"].pk).status == S.UNSUPPORTED


def test_retry_needs_a_post_with_csrf_and_a_target(django_user_model, archive, sent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("operator", password="a-long-password-1"))
    assert client.post("/tasks/retry", {"asset": archive["failed"].pk}).status_code == 403
    assert client.get("/tasks/retry").status_code == 405
    token = client.get("/tasks/").context["csrf_token"]
    assert client.post("/tasks/retry", {"asset": "everything", "csrfmiddlewaretoken": token}).status_code == 400
    assert client.post("/tasks/retry", {"asset": archive["failed"].pk, "csrfmiddlewaretoken": token}).status_code == 302
    assert sent == [archive["failed"].pk]


def test_redis_unreachable_shows_as_unknown_with_the_reason(user_client, archive, no_redis):
    started = time.monotonic()
    data = user_client.get("/tasks/status.json").json()
    assert data["broker"]["messages"] is None and data["broker"]["taken"] is None
    assert data["broker"]["error"].startswith("Redis is unreachable: ") and data["workers"] is None
    assert data["stages"]["waiting"] == 3, "the database's figures are still there"
    page = user_client.get("/tasks/").content.decode()
    assert 'data-key="broker.messages">unknown<' in page and "Redis is unreachable: " in page
    assert time.monotonic() - started < 5, "an unreachable Redis must not make the page slow"


def test_the_broker_queue_counts_the_messages_celery_sent(user_client, settings, redis_url, monkeypatch):
    settings.CELERY_BROKER_URL = redis_url
    with celery_app.connection_for_write(redis_url) as connection:
        connection.default_channel.client.flushdb()
        for asset_id, priority in ((1, None), (2, None), (3, 9)):  # a priority goes to a list of its own
            tasks.index_asset_task.apply_async((asset_id,), connection=connection, priority=priority)
    pings = []
    monkeypatch.setattr(celery_app.control, "ping", lambda **kwargs: pings.append(kwargs) or [])

    data = user_client.get("/tasks/status.json").json()
    assert data["broker"] == {"messages": 3, "taken": 0, "error": ""}
    assert data["workers"] == 0
    user_client.get("/tasks/status.json")
    assert len(pings) == 1, "the worker count is kept a while, not asked on every poll"


def test_a_ping_to_the_workers_waits_a_short_time(settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    started = time.monotonic()
    assert monitoring.worker_count() == 0  # a real ping; nobody answers
    assert time.monotonic() - started < 3


def test_old_task_results_are_deleted(settings):
    settings.CELERY_RESULT_EXPIRES = 7 * 24 * 3600
    for task_id, age in (("old", timedelta(days=8)), ("recent", timedelta(days=1))):
        TaskResult.objects.create(task_id=task_id, task_name="media_index.tasks.index_asset_task", status="SUCCESS")
        TaskResult.objects.filter(task_id=task_id).update(date_done=timezone.now() - age)
    assert monitoring.delete_old_results() == 1
    assert list(TaskResult.objects.values_list("task_id", flat=True)) == ["recent"]


def test_tasks_store_results_that_the_admin_lists_and_the_admin_leads_to_tasks(admin_client):
    assert isinstance(celery_app.backend, DatabaseBackend) and not tasks.index_asset_task.ignore_result
    # What a worker stores when a task ends (the real worker does it in the flow test).
    celery_app.backend.store_result("abc-123", "indexed", "SUCCESS", request=None)
    assert TaskResult.objects.get(task_id="abc-123").result == '"indexed"'
    page = admin_client.get("/admin/django_celery_results/taskresult/").content.decode()
    assert "abc-123" in page
    assert 'href="/tasks/"' in admin_client.get("/admin/").content.decode()
