"""The watcher sends the regroup task once the queue is idle and enough faces came since the last rebuild."""

import pytest

from media_index.models import Asset
from people import regrouping
from people.models import PeopleEvent
from revsearch_site.celery import app as celery_app
from tests.people.conftest import make_asset, make_face

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch, settings):
    settings.PEOPLE_REGROUP_AFTER_FACES = 3
    calls: list[tuple] = []
    monkeypatch.setattr(celery_app.tasks[regrouping.REGROUP_TASK], "apply_async", lambda *a, **k: calls.append(a))
    return calls


def faces(count: int) -> list:
    asset = make_asset()
    return [make_face(asset) for _ in range(count)]


def test_sent_once_enough_new_faces_came_and_the_queue_is_idle(sent):
    regrouper = regrouping.Regrouper()
    faces(2)
    assert not regrouper.check()
    busy = make_asset()
    Asset.objects.filter(pk=busy.pk).update(status=Asset.Status.PROCESSING)
    faces(1)
    assert not regrouper.check() and sent == []  # indexing first
    Asset.objects.filter(pk=busy.pk).update(status=Asset.Status.INDEXED)
    assert regrouper.check() and len(sent) == 1
    assert not regrouper.check() and len(sent) == 1  # not again for the same faces


def test_counts_from_the_last_rebuild(sent):
    newest = faces(5)[-1]
    PeopleEvent.objects.create(action=PeopleEvent.Action.REBUILD, detail={"newest_face": newest.pk})
    regrouper = regrouping.Regrouper()
    faces(2)
    assert not regrouper.check()
    faces(1)
    assert regrouper.check()


def test_off_when_set_to_zero(sent, settings):
    settings.PEOPLE_REGROUP_AFTER_FACES = 0
    faces(5)
    assert not regrouping.Regrouper().check() and sent == []
