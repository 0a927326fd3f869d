"""Exactly one run indexes an asset: stale and duplicate tasks do nothing, a redelivered one carries on cleanly."""

import os

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from media_index import dispatch, face_engine, indexing, intake, tasks, vector_store
from media_index.models import Asset, Face
from tests.media_index.conftest import fake_face, put

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.shared_data]


def test_only_the_assets_current_task_may_index_it(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1)]
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    first = Asset.objects.get(pk=asset.pk).task_id
    dispatch.requeue([asset])  # e.g. `serve` re-queued it, while the first task still sits in Redis
    current = Asset.objects.get(pk=asset.pk).task_id
    assert current != first
    assert indexing.index_asset(asset.pk, task_id=first) is None
    assert Asset.objects.get(pk=asset.pk).status == Asset.Status.QUEUED
    assert indexing.index_asset(asset.pk, task_id=current) == Asset.Status.INDEXED
    # A second delivery of the same task once the asset is done changes nothing.
    assert indexing.index_asset(asset.pk, task_id=current) is None
    assert vector_store_on.count() == 1


def test_a_run_in_this_process_voids_the_task_sent_for_the_asset(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1)]
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    sent_task = Asset.objects.get(pk=asset.pk).task_id
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED  # `ingest --inline`
    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.PROCESSING)
    assert indexing.index_asset(asset.pk, task_id=sent_task) is None


def test_a_redelivered_task_drops_what_the_killed_run_left_in_milvus(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1), fake_face(2)]
    other = intake.register_path(put(inbox, "person_a_1.jpg"))
    indexing.index_asset(other.pk)
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    task_id = Asset.objects.get(pk=asset.pk).task_id
    # The killed run had claimed the asset and stored vectors, but its rows were never committed.
    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.PROCESSING)
    vector_store.insert(
        [vector_store.FaceVector(10_000 + n, fake_face(n).embedding, asset.pk, "image") for n in (1, 2)]
    )
    assert vector_store_on.count() == 4

    assert indexing.index_asset(asset.pk, task_id=task_id) == Asset.Status.INDEXED
    stored = vector_store.stored_faces()
    assert sorted(stored) == sorted(Face.objects.values_list("pk", flat=True))
    assert sorted(stored.values()) == [other.pk, other.pk, asset.pk, asset.pk]


def test_a_task_that_could_not_be_sent_is_sent_when_the_queue_is_back(inbox, engine, monkeypatch):
    sent = []

    def queue_down(args, task_id):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(dispatch, "_queue_down_until", 0.0)
    monkeypatch.setattr(tasks.index_asset_task, "apply_async", queue_down)
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    unsent = Asset.objects.get(pk=asset.pk)
    assert unsent.status == Asset.Status.QUEUED and not unsent.task_sent
    assert dispatch.send_unsent() == 0, "tried again while the queue is still down"

    monkeypatch.setattr(dispatch, "_queue_down_until", 0.0)
    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda args, task_id: sent.append((args[0], task_id)))
    assert dispatch.send_unsent() == 1
    resent = Asset.objects.get(pk=asset.pk)
    assert resent.task_sent and sent == [(asset.pk, resent.task_id)]
    assert resent.task_id != unsent.task_id, "a late delivery of the first attempt must not count"
    assert dispatch.send_unsent() == 0


def test_a_file_touched_but_not_changed_is_not_indexed_again(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1)]
    path = put(inbox, "person_b.jpg")
    asset = intake.register_path(path)
    indexing.index_asset(asset.pk)
    face = asset.faces.get()
    os.utime(path, (1_000_000_000, 1_000_000_000))  # what `cp -p` or a sync tool does after writing
    sent.clear()
    intake.register_path(path)
    touched = Asset.objects.get(pk=asset.pk)
    assert touched.status == Asset.Status.INDEXED and touched.mtime == 1_000_000_000
    assert list(touched.faces.all()) == [face] and sent == []


class Killed(BaseException):
    """Stands for the pool process killed while it indexes: not an error the service may catch."""


def killing_engine(monkeypatch) -> list[int]:
    """find_faces kills the run that calls it; returns the list that counts the runs that got that far."""
    runs: list[int] = []

    def find_faces(image):
        runs.append(1)
        raise Killed

    monkeypatch.setattr(face_engine, "find_faces", find_faces)
    return runs


def test_a_file_that_kills_its_worker_is_tried_up_to_the_limit_then_fails(
    inbox, sent, engine, vector_store_on, media_root, settings, monkeypatch
):
    settings.WORKER_DEATH_LIMIT = 3
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    task_id = Asset.objects.get(pk=asset.pk).task_id
    runs = killing_engine(monkeypatch)
    for deaths in range(3):
        # acks_late with reject_on_worker_lost: the queue delivers the same task again after each death.
        with pytest.raises(Killed):
            indexing.index_asset(asset.pk, task_id=task_id)
        killed = Asset.objects.get(pk=asset.pk)
        assert (killed.status, killed.claimed_by, killed.worker_deaths) == (Asset.Status.PROCESSING, task_id, deaths)
    # The last run was killed between storing a vector and committing its face.
    vector_store.insert([vector_store.FaceVector(10_000, fake_face(1).embedding, asset.pk, "image")])
    assert indexing.index_asset(asset.pk, task_id=task_id) == Asset.Status.FAILED
    failed = Asset.objects.get(pk=asset.pk)
    assert len(runs) == 3 and failed.worker_deaths == 3
    assert failed.error.startswith(f"{failed.path}: the worker died 3 times while indexing it (")
    assert "reindex --failed" in failed.error
    assert vector_store_on.count() == 0 and not failed.faces.exists()

    # The queue goes on; and indexed again on purpose, the file starts with a clean count.
    engine.faces = [fake_face(1)]
    monkeypatch.setattr(face_engine, "find_faces", lambda image: engine.faces)
    good = intake.register_path(put(inbox, "person_a_1.jpg"))
    assert indexing.index_asset(good.pk, task_id=Asset.objects.get(pk=good.pk).task_id) == Asset.Status.INDEXED
    dispatch.requeue([failed])
    assert indexing.index_asset(asset.pk, task_id=Asset.objects.get(pk=asset.pk).task_id) == Asset.Status.INDEXED
    assert Asset.objects.get(pk=asset.pk).worker_deaths == 0


def test_a_retry_after_milvus_was_down_is_not_a_death(inbox, sent, engine, vector_store_on, media_root, monkeypatch):
    engine.faces = [fake_face(1)]
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    task_id = Asset.objects.get(pk=asset.pk).task_id
    insert = vector_store.insert

    def milvus_down(vectors):
        raise vector_store.VectorStoreUnavailable("Milvus at http://127.0.0.1:1 is unreachable")

    monkeypatch.setattr(vector_store, "insert", milvus_down)
    with pytest.raises(vector_store.VectorStoreUnavailable):
        indexing.index_asset(asset.pk, task_id=task_id)
    assert Asset.objects.get(pk=asset.pk).status == Asset.Status.RETRYING
    monkeypatch.setattr(vector_store, "insert", insert)
    # Celery's retry keeps the task id.
    assert indexing.index_asset(asset.pk, task_id=task_id) == Asset.Status.INDEXED
    assert Asset.objects.get(pk=asset.pk).worker_deaths == 0


def test_a_run_past_the_soft_time_limit_fails_with_the_reason(
    inbox, sent, engine, vector_store_on, media_root, settings, monkeypatch
):
    engine.faces = [fake_face(1)]
    insert = vector_store.insert

    def cut_off(vectors):
        insert(vectors)
        raise SoftTimeLimitExceeded  # what Celery raises in the task when the soft limit passes: here, before commit

    monkeypatch.setattr(vector_store, "insert", cut_off)
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    assert indexing.index_asset(asset.pk, task_id=Asset.objects.get(pk=asset.pk).task_id) == Asset.Status.FAILED
    failed = Asset.objects.get(pk=asset.pk)
    assert failed.error == (
        f"{failed.path}: indexing it took longer than the task's time limit of"
        f" {settings.CELERY_TASK_SOFT_TIME_LIMIT:.0f} s, so it was stopped (a video's slice is"
        " REVSEARCH_VIDEO_SLICE_SECONDS, plus REVSEARCH_TASK_TIME_MARGIN for its last chunk)"
    )
    assert failed.worker_deaths == 0 and vector_store_on.count() == 0
