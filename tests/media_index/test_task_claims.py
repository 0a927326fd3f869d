"""Exactly one run indexes an asset: stale and duplicate tasks do nothing, a redelivered one carries on cleanly."""

import os

import pytest

from media_index import services, tasks, vector_store
from media_index.models import Asset
from tests.media_index.conftest import fake_face, put

pytestmark = pytest.mark.django_db(transaction=True)


def test_only_the_assets_current_task_may_index_it(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1)]
    asset = services.register_path(put(inbox, "person_b.jpg"))
    first = Asset.objects.get(pk=asset.pk).task_id
    services.requeue([asset])  # e.g. `serve` re-queued it, while the first task still sits in Redis
    current = Asset.objects.get(pk=asset.pk).task_id
    assert current != first
    assert services.index_asset(asset.pk, task_id=first) is None
    assert Asset.objects.get(pk=asset.pk).status == Asset.Status.QUEUED
    assert services.index_asset(asset.pk, task_id=current) == Asset.Status.INDEXED
    # A second delivery of the same task once the asset is done changes nothing.
    assert services.index_asset(asset.pk, task_id=current) is None
    assert vector_store_on.count() == 1


def test_a_run_in_this_process_voids_the_task_sent_for_the_asset(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1)]
    asset = services.register_path(put(inbox, "person_b.jpg"))
    sent_task = Asset.objects.get(pk=asset.pk).task_id
    assert services.index_asset(asset.pk) == Asset.Status.INDEXED  # `ingest --inline`
    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.PROCESSING)
    assert services.index_asset(asset.pk, task_id=sent_task) is None


def test_a_redelivered_task_drops_what_the_killed_run_left_in_milvus(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1), fake_face(2)]
    other = services.register_path(put(inbox, "person_a_1.jpg"))
    services.index_asset(other.pk)
    asset = services.register_path(put(inbox, "person_b.jpg"))
    task_id = Asset.objects.get(pk=asset.pk).task_id
    # The killed run had claimed the asset and stored vectors, but its rows were never committed.
    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.PROCESSING)
    vector_store.insert(
        [vector_store.FaceVector(10_000 + n, fake_face(n).embedding, asset.pk, "image") for n in (1, 2)]
    )
    assert vector_store_on.count() == 4

    assert services.index_asset(asset.pk, task_id=task_id) == Asset.Status.INDEXED
    stored = vector_store.stored_faces()
    assert sorted(stored) == sorted(services.Face.objects.values_list("pk", flat=True))
    assert sorted(stored.values()) == [other.pk, other.pk, asset.pk, asset.pk]


def test_a_task_that_could_not_be_sent_is_sent_when_the_queue_is_back(inbox, engine, monkeypatch):
    sent = []

    def queue_down(args, task_id):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(services, "_queue_down_until", 0.0)
    monkeypatch.setattr(tasks.index_asset_task, "apply_async", queue_down)
    asset = services.register_path(put(inbox, "person_b.jpg"))
    unsent = Asset.objects.get(pk=asset.pk)
    assert unsent.status == Asset.Status.QUEUED and not unsent.task_sent
    assert services.send_unsent() == 0, "tried again while the queue is still down"

    monkeypatch.setattr(services, "_queue_down_until", 0.0)
    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda args, task_id: sent.append((args[0], task_id)))
    assert services.send_unsent() == 1
    resent = Asset.objects.get(pk=asset.pk)
    assert resent.task_sent and sent == [(asset.pk, resent.task_id)]
    assert resent.task_id != unsent.task_id, "a late delivery of the first attempt must not count"
    assert services.send_unsent() == 0


def test_a_file_touched_but_not_changed_is_not_indexed_again(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1)]
    path = put(inbox, "person_b.jpg")
    asset = services.register_path(path)
    services.index_asset(asset.pk)
    face = asset.faces.get()
    os.utime(path, (1_000_000_000, 1_000_000_000))  # what `cp -p` or a sync tool does after writing
    sent.clear()
    services.register_path(path)
    touched = Asset.objects.get(pk=asset.pk)
    assert touched.status == Asset.Status.INDEXED and touched.mtime == 1_000_000_000
    assert list(touched.faces.all()) == [face] and sent == []
