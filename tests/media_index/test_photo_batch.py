"""Photos sent together in one task: each is still claimed once, stored on its own, and fails alone."""

import numpy as np
import pytest

from media_index import dispatch, face_engine, indexing, intake, photo_batch, tasks, vector_store
from media_index.models import Asset, Face
from tests.media_index.conftest import fake_face, put

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.shared_data]

PHOTOS = ("person_a_1.jpg", "person_b.jpg", "two_people.jpg")


class Killed(BaseException):
    """Stands for the pool process killed while it indexes: not an error the service may catch."""


@pytest.fixture
def faces(monkeypatch):
    """A fake engine that gives each photo one face of its own (known by its size), alone or in a batch; a size in
    `kills` kills the run that detects it, one in `breaks` raises; `batches` records the sizes detected together."""
    fake = type("FakeEngine", (), {"kills": set(), "breaks": set(), "batches": []})()

    def face_of(image):
        width, height = image.size
        return fake_face(width * 10_000 + height)

    def judge(images):
        sizes = {image.size for image in images}
        if sizes & fake.kills:
            raise Killed
        if sizes & fake.breaks:
            raise RuntimeError("MTCNN broke on this photo")

    def detect_faces(images):
        judge(images)
        fake.batches.append([image.size for image in images])
        return [[(face_of(image).box, 0.99)] for image in images]

    def embed_faces(images, detections):
        return [[face_of(image)] * len(found) for image, found in zip(images, detections, strict=True)]

    def find_faces(image):
        judge([image])
        return [face_of(image)]

    monkeypatch.setattr(face_engine, "detect_faces", detect_faces)
    monkeypatch.setattr(face_engine, "embed_faces", embed_faces)
    monkeypatch.setattr(face_engine, "find_faces", find_faces)
    monkeypatch.setattr(face_engine, "model_name", lambda: "test-model")
    return fake


@pytest.fixture
def batches(monkeypatch, settings):
    """The (asset ids, task id) of each task sent, single or batched; PHOTO_BATCH is 8."""
    settings.PHOTO_BATCH = 8
    sent: list[tuple[list[int], str]] = []
    monkeypatch.setattr(dispatch, "_queue_down_until", 0.0)
    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda args, task_id: sent.append(([args[0]], task_id)))
    monkeypatch.setattr(tasks.index_photos_task, "apply_async", lambda args, task_id: sent.append((args[0], task_id)))
    return sent


def arrive_together(inbox, names=PHOTOS) -> list[Asset]:
    """The photos registered as the watcher registers those that settle together."""
    with dispatch.photos_together():
        return [intake.register_path(put(inbox, name)) for name in names]


def stored(asset: Asset) -> list[np.ndarray]:
    """The vectors Milvus holds for the asset's faces."""
    vectors = vector_store.vectors_of(list(asset.faces.values_list("pk", flat=True)))
    return list(vectors.values())


def test_photos_that_arrive_together_go_in_one_task_under_its_id(inbox, batches, faces):
    assets = arrive_together(inbox)
    ids = [asset.pk for asset in assets]
    assert len(batches) == 1 and batches[0][0] == ids
    task_id = batches[0][1]
    assert {(a.task_id, a.task_sent, a.status) for a in Asset.objects.filter(pk__in=ids)} == {
        (task_id, True, Asset.Status.QUEUED)
    }


def test_two_deliveries_of_one_batch_index_each_photo_once(inbox, batches, faces, vector_store_on, media_root):
    assets = arrive_together(inbox)
    ids, task_id = batches[0]
    assert photo_batch.index_photos(ids, task_id) == dict.fromkeys(ids, Asset.Status.INDEXED)
    # Photos of three sizes: detected a size at a time, embedded together.
    assert sorted(map(len, faces.batches)) == [1, 1, 1]
    assert photo_batch.index_photos(ids, task_id) == dict.fromkeys(ids), "the second delivery claims nothing"
    assert Face.objects.count() == 3 and vector_store_on.count() == 3
    for asset in assets:
        [vector] = stored(asset)
        width, height = Asset.objects.get(pk=asset.pk).width, Asset.objects.get(pk=asset.pk).height
        assert np.allclose(vector, fake_face(width * 10_000 + height).embedding, atol=1e-6), "each its own faces"


def test_a_photo_re_queued_alone_after_batching_is_claimed_only_by_its_own_task(
    inbox, batches, faces, vector_store_on, media_root
):
    first, second, third = arrive_together(inbox)
    ids, batch_id = batches[0]
    dispatch.requeue([second])  # e.g. the admin's re-index, while the batch still sits in Redis
    alone_id = Asset.objects.get(pk=second.pk).task_id
    assert batches[-1] == ([second.pk], alone_id)
    assert photo_batch.index_photos(ids, batch_id) == {
        first.pk: Asset.Status.INDEXED,
        second.pk: None,
        third.pk: Asset.Status.INDEXED,
    }
    assert Asset.objects.get(pk=second.pk).status == Asset.Status.QUEUED
    assert indexing.index_asset(second.pk, task_id=alone_id) == Asset.Status.INDEXED
    assert indexing.index_asset(second.pk, task_id=batch_id) is None
    assert Face.objects.count() == 3 and vector_store_on.count() == 3


def test_a_photo_re_queued_before_its_batch_is_sent_goes_once(inbox, batches, faces):
    with dispatch.photos_together():
        first, second = (intake.register_path(put(inbox, name)) for name in PHOTOS[:2])
        dispatch.requeue([first])  # queued again with a new id before the batch left
        assert batches == []
    assert len(batches) == 1 and batches[0][0] == [first.pk, second.pk]
    assert Asset.objects.get(pk=first.pk).task_id == batches[0][1]


def test_a_full_batch_is_sent_at_once_and_the_rest_at_the_end(inbox, batches, faces, settings):
    settings.PHOTO_BATCH = 2
    with dispatch.photos_together():
        assets = [intake.register_path(put(inbox, name)) for name in PHOTOS]
        assert [ids for ids, _ in batches] == [[assets[0].pk, assets[1].pk]]
    assert [ids for ids, _ in batches] == [[assets[0].pk, assets[1].pk], [assets[2].pk]]
    assert Asset.objects.get(pk=assets[2].pk).task_id == batches[1][1]


def test_with_a_batch_of_one_each_photo_has_a_task_of_its_own(inbox, batches, faces, settings):
    settings.PHOTO_BATCH = 1
    assets = arrive_together(inbox)
    assert batches == [([asset.pk], Asset.objects.get(pk=asset.pk).task_id) for asset in assets]


def test_a_bad_photo_in_a_batch_fails_alone(inbox, batches, faces, vector_store_on, media_root):
    (inbox / "broken.jpg").write_bytes(b"not a jpeg at all")
    with dispatch.photos_together():
        good = [intake.register_path(put(inbox, name)) for name in PHOTOS]
        broken = intake.register_path(inbox / "broken.jpg")
    ids, task_id = batches[0]
    assert broken.pk in ids
    statuses = photo_batch.index_photos(ids, task_id)
    assert statuses == dict.fromkeys([a.pk for a in good], Asset.Status.INDEXED) | {broken.pk: Asset.Status.FAILED}
    assert "broken.jpg" in Asset.objects.get(pk=broken.pk).error
    assert vector_store_on.count() == 3


def test_a_photo_that_breaks_detection_fails_alone(inbox, batches, faces, vector_store_on, media_root):
    faces.breaks = {(970, 2204)}  # person_b.jpg
    arrive_together(inbox)
    ids, task_id = batches[0]
    statuses = photo_batch.index_photos(ids, task_id)
    person_b = Asset.objects.get(path__endswith="person_b.jpg")
    assert statuses == dict.fromkeys(ids, Asset.Status.INDEXED) | {person_b.pk: Asset.Status.FAILED}
    assert "MTCNN broke on this photo" in person_b.error
    assert vector_store_on.count() == 2


def test_a_photo_that_kills_the_worker_fails_alone_at_the_limit(
    inbox, batches, faces, vector_store_on, media_root, settings
):
    settings.WORKER_DEATH_LIMIT = 3
    faces.kills = {(970, 2204)}  # person_b.jpg
    arrive_together(inbox)
    ids, task_id = batches[0]
    deliveries = 0
    while True:  # acks_late with reject_on_worker_lost: the same task comes again after each death
        deliveries += 1
        try:
            statuses = photo_batch.index_photos(ids, task_id)
            break
        except Killed:
            continue
    person_b = Asset.objects.get(path__endswith="person_b.jpg")
    assert statuses[person_b.pk] == Asset.Status.FAILED and "the worker died 3 times" in person_b.error
    assert deliveries == 4  # together once, then person_b alone until its third death
    others = Asset.objects.filter(pk__in=ids).exclude(pk=person_b.pk)
    assert {(a.status, a.worker_deaths) for a in others} == {(Asset.Status.INDEXED, 1)}
    assert Face.objects.count() == 2 and vector_store_on.count() == 2


def test_milvus_down_leaves_the_whole_batch_retrying_and_the_retry_counts_no_death(
    inbox, batches, faces, vector_store_on, media_root, monkeypatch
):
    arrive_together(inbox)
    ids, task_id = batches[0]
    insert = vector_store.insert

    def milvus_down(vectors):
        raise vector_store.VectorStoreUnavailable("Milvus at http://127.0.0.1:1 is unreachable")

    monkeypatch.setattr(vector_store, "insert", milvus_down)
    with pytest.raises(vector_store.VectorStoreUnavailable):
        photo_batch.index_photos(ids, task_id)
    assert set(Asset.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Asset.Status.RETRYING}
    monkeypatch.setattr(vector_store, "insert", insert)
    assert photo_batch.index_photos(ids, task_id) == dict.fromkeys(ids, Asset.Status.INDEXED)  # Celery's retry
    assert set(Asset.objects.filter(pk__in=ids).values_list("worker_deaths", flat=True)) == {0}


def test_the_batch_task_gives_up_on_milvus_like_the_single_one(inbox, batches, faces, settings, monkeypatch):
    settings.RETRY_LIMIT = 0
    arrive_together(inbox)
    ids, task_id = batches[0]

    def milvus_down(vectors):
        raise vector_store.VectorStoreUnavailable("Milvus at http://127.0.0.1:1 is not answering")

    monkeypatch.setattr(vector_store, "insert", milvus_down)
    tasks.index_photos_task.apply((ids,), task_id=task_id)
    failed = Asset.objects.filter(pk__in=ids)
    assert {a.status for a in failed} == {Asset.Status.FAILED}
    assert all("reindex --failed" in a.error for a in failed)


def test_photos_of_one_size_are_detected_together(faces):
    from PIL import Image

    images = [Image.new("RGB", (250, 250), shade) for shade in ("red", "green", "blue")]
    images.append(Image.new("L", (100, 80)))
    found = photo_batch.find_faces_together(images)
    assert faces.batches == [[(250, 250)] * 3, [(100, 80)]]
    assert [len(image_faces) for image_faces in found] == [1, 1, 1, 1]
    assert np.allclose(found[3][0].embedding, fake_face(100 * 10_000 + 80).embedding)
