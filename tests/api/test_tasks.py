"""GET /api/v1/tasks and POST /api/v1/tasks/retry: the tasks page's figures and its Retry buttons, for tokens."""

import pytest

from media_index.models import Asset
from tests.media_index.test_task_monitoring import make

pytestmark = pytest.mark.django_db(transaction=True)

S = Asset.Status


def test_the_figures_are_the_tasks_pages(api, admin_client, archive, no_redis):
    answer = api.get("/api/v1/tasks")
    assert answer.status_code == 200
    figures = answer.json()
    assert figures["stages"] == {"waiting": 3, "running": 2, "done": 3, "failed": 2}
    assert figures["unsent"] == 1 and figures["broker"]["messages"] is None and figures["workers"] is None
    assert [failure["path"] for failure in figures["failures"]] == ["/archive/notes.txt", "/archive/bad.jpg"]
    page = admin_client.get("/tasks/status.json").json()
    assert {key: value for key, value in figures.items() if key != "generated_at"} == {
        key: value for key, value in page.items() if key != "generated_at"
    }


def test_retry_queues_one_failed_asset_and_nothing_else(api, archive, sent, no_redis):
    failed, other = archive["failed"], make("other-bad.jpg", S.FAILED, error="truncated")
    answer = api.post("/api/v1/tasks/retry", {"asset": failed.pk}, content_type="application/json")
    assert answer.status_code == 200 and answer.json() == {"queued": 1}
    failed.refresh_from_db()
    assert (failed.status, failed.error) == (S.QUEUED, "") and sent == [failed.pk]

    # Not failed (any more), never read, or no such asset: nothing is queued, and the answer says so.
    for target in (failed.pk, archive["unsupported"].pk, archive["indexed"].pk, 10**9):
        again = api.post("/api/v1/tasks/retry", {"asset": target}, content_type="application/json")
        assert again.status_code == 200 and again.json() == {"queued": 0}
    assert sent == [failed.pk] and Asset.objects.get(pk=other.pk).status == S.FAILED
    assert Asset.objects.get(pk=archive["indexed"].pk).status == S.INDEXED


def test_retry_all_queues_every_failed_asset(api, archive, sent, no_redis):
    other = make("other-bad.jpg", S.FAILED, error="truncated")
    answer = api.post("/api/v1/tasks/retry", {"asset": "all"}, content_type="application/json")
    assert answer.json() == {"queued": 2} and sorted(sent) == sorted([archive["failed"].pk, other.pk])
    assert not Asset.objects.filter(status=S.FAILED).exists()
    assert api.get("/api/v1/tasks").json()["stages"]["failed"] == 1  # the unsupported file stays a failure shown


def test_retry_refuses_what_is_no_asset_id(api, archive, sent, no_redis):
    for body in ({}, {"asset": "some"}, {"asset": [1, 2]}, {"asset": None}):
        answer = api.post("/api/v1/tasks/retry", body, content_type="application/json")
        assert answer.status_code == 400 and answer.json()["message"].startswith("The request is not valid"), body
    assert sent == [] and Asset.objects.get(pk=archive["failed"].pk).status == S.FAILED
