"""Ingestion services on a real database and a real Milvus Lite server; the face engine is faked."""

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from media_index import dispatch, face_engine, imaging, indexing, intake
from media_index.models import Asset, Face
from tests.conftest import SAMPLES
from tests.media_index.conftest import fake_face, put

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.shared_data
def test_a_photo_is_registered_and_queued_after_commit(inbox, sent):
    asset = intake.register_path(put(inbox, "person_a_1.jpg"))
    assert asset.status == Asset.Status.QUEUED
    assert asset.kind == Asset.Kind.IMAGE
    assert asset.size == (SAMPLES / "person_a_1.jpg").stat().st_size
    assert len(asset.sha256) == 64
    assert sent == [asset.pk]


def test_other_files_are_unsupported_and_not_queued(inbox, sent):
    notes = inbox / "notes.txt"
    notes.write_text("not a photo")
    asset = intake.register_path(notes)
    assert asset.status == Asset.Status.UNSUPPORTED
    assert ".txt" in asset.error
    assert sent == []


@pytest.mark.shared_data
def test_same_content_twice_is_indexed_once(inbox, sent):
    first = intake.register_path(put(inbox, "person_b.jpg"))
    second = intake.register_path(put(inbox, "person_b.jpg", "copy of biden.jpg"))
    assert second.status == Asset.Status.DUPLICATE
    assert second.duplicate_of == first
    assert sent == [first.pk]


@pytest.mark.shared_data
def test_unchanged_file_is_left_alone_and_a_changed_one_is_queued_again(inbox, sent):
    path = put(inbox, "person_a_1.jpg", "photo.jpg")
    asset = intake.register_path(path)
    assert intake.register_path(path).pk == asset.pk
    assert sent == [asset.pk]
    shutil.copy(SAMPLES / "person_a_2.jpg", path)
    again = intake.register_path(path)
    assert again.pk == asset.pk
    assert again.sha256 != asset.sha256
    assert sent == [asset.pk, asset.pk]


@pytest.mark.shared_data
def test_hidden_and_partial_files_are_skipped(inbox):
    (inbox / ".hidden.jpg").write_bytes(b"x")
    (inbox / "photo.jpg.part").write_bytes(b"x")
    (inbox / "sub").mkdir()
    put(inbox / "sub", "person_b.jpg")
    assert [p.name for p in intake.walk_files([inbox])] == ["person_b.jpg"]


@pytest.mark.shared_data
def test_indexing_stores_faces_crops_and_vectors(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1), fake_face(2, box=(100.0, 100.0, 180.0, 190.0))]
    asset = intake.register_path(put(inbox, "two_people.jpg"))
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    asset.refresh_from_db()
    assert asset.model_name == "test-model"
    assert asset.indexed_at is not None
    faces = list(asset.faces.all())
    assert [face.box for face in faces] == [[10.0, 20.0, 60.0, 80.0], [100.0, 100.0, 180.0, 190.0]]
    assert all(Path(face.crop.path).is_file() for face in faces)
    with Image.open(asset.preview.path) as preview:
        assert max(preview.size) == indexing.PREVIEW_SIDE
    assert vector_store_on.count() == 2
    hit = vector_store_on.search(engine.faces[1].embedding, 1)[0]
    assert (hit.face_id, hit.asset_id) == (faces[1].pk, asset.pk)
    # A second delivery of the same task finds nothing to claim.
    assert indexing.index_asset(asset.pk) is None


@pytest.mark.shared_data
def test_a_photo_without_faces_is_marked_so(inbox, sent, engine, vector_store_on, media_root):
    asset = intake.register_path(put(inbox, "no_face.jpg"))
    assert indexing.index_asset(asset.pk) == Asset.Status.NO_FACES
    assert Face.objects.count() == 0


@pytest.mark.parametrize(
    "content, message",
    [
        (b"GIF89a not really", "cannot decode"),
        (b"\xff\xd8\xff\xe0 truncated", "cannot decode"),
    ],
)
def test_a_broken_photo_fails_with_its_name_and_reason(inbox, sent, engine, vector_store_on, content, message):
    path = inbox / "broken.jpg"
    path.write_bytes(content)
    asset = intake.register_path(path)
    assert indexing.index_asset(asset.pk) == Asset.Status.FAILED
    asset.refresh_from_db()
    assert str(path) in asset.error and message in asset.error


def test_an_empty_file_fails_at_once_without_a_task(inbox, sent):
    path = inbox / "empty.jpg"
    path.write_bytes(b"")
    asset = intake.register_path(path)
    assert (asset.status, sent) == (Asset.Status.FAILED, [])
    assert str(path) in asset.error and "the file is empty" in asset.error


@pytest.mark.shared_data
def test_an_unexpected_error_fails_the_asset_and_the_next_one_goes_on(
    inbox, sent, engine, vector_store_on, monkeypatch
):
    def broken(image):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(face_engine, "find_faces", broken)
    first = intake.register_path(put(inbox, "person_b.jpg"))
    assert indexing.index_asset(first.pk) == Asset.Status.FAILED
    first.refresh_from_db()
    assert "RuntimeError: model exploded" in first.error and first.path in first.error

    monkeypatch.setattr(face_engine, "find_faces", lambda image: [])
    second = intake.register_path(put(inbox, "no_face.jpg"))
    assert indexing.index_asset(second.pk) == Asset.Status.NO_FACES


def test_paths_are_shown_relative_to_the_inbox(settings, tmp_path):
    settings.INBOX_DIR = tmp_path
    assert Asset(path=str(tmp_path / "trip" / "a.jpg")).display_path == "trip/a.jpg"
    assert Asset(path="/elsewhere/b.jpg").display_path == "/elsewhere/b.jpg"


@pytest.mark.shared_data
def test_a_file_removed_before_indexing_fails_clearly(inbox, sent, engine, vector_store_on):
    path = put(inbox, "person_b.jpg")
    asset = intake.register_path(path)
    path.unlink()
    assert indexing.index_asset(asset.pk) == Asset.Status.FAILED
    asset.refresh_from_db()
    assert "is gone" in asset.error


@pytest.fixture
def milvus_down(settings):
    from media_index import vector_store
    from revsearch_site import processes

    settings.MILVUS_URI = f"http://127.0.0.1:{processes.free_port()}"
    vector_store.reset_client()
    yield
    vector_store.reset_client()


@pytest.mark.shared_data
def test_milvus_down_leaves_no_face_rows_and_the_asset_retrying(inbox, sent, engine, milvus_down, media_root):
    from media_index import vector_store

    engine.faces = [fake_face(1)]
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    with pytest.raises(vector_store.VectorStoreUnavailable):
        indexing.index_asset(asset.pk)
    asset.refresh_from_db()
    assert asset.status == Asset.Status.RETRYING
    assert "Milvus at http://127.0.0.1:" in asset.error and "is not answering" in asset.error
    assert Face.objects.count() == 0
    assert not list(media_root.rglob("*.jpg"))


@pytest.mark.shared_data
def test_the_task_retries_then_fails_and_reindex_failed_recovers(inbox, sent, engine, milvus_down, settings):
    from django.core.management import call_command

    from media_index import tasks

    settings.RETRY_LIMIT = 2
    engine.faces = [fake_face(1)]
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    attempts = []
    claim = indexing.claim
    # Count the attempts; in eager mode Celery runs each retry at once, in this process.
    services_claim = lambda *args: attempts.append(args) or claim(*args)  # noqa: E731
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(indexing, "claim", services_claim)
        tasks.index_asset_task.apply((asset.pk,), task_id=Asset.objects.get(pk=asset.pk).task_id)
    asset.refresh_from_db()
    assert len(attempts) == 1 + settings.RETRY_LIMIT
    assert asset.status == Asset.Status.FAILED
    assert "is not answering" in asset.error and "reindex --failed" in asset.error

    sent.clear()
    call_command("reindex", "--failed", stdout=io.StringIO())
    asset.refresh_from_db()
    assert asset.status == Asset.Status.QUEUED and asset.error == "" and sent == [asset.pk]


@pytest.mark.shared_data
def test_deleting_an_asset_deletes_its_vectors_and_crops(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1)]
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    indexing.index_asset(asset.pk)
    crop = Path(asset.faces.get().crop.path)
    preview = Path(Asset.objects.get(pk=asset.pk).preview.path)
    Asset.objects.filter(pk=asset.pk).delete()
    assert vector_store_on.count() == 0
    assert not crop.exists() and not preview.exists()
    assert Face.objects.count() == 0


@pytest.mark.shared_data
def test_unfinished_assets_are_queued_again(inbox, sent):
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.PROCESSING)
    sent.clear()
    assert dispatch.requeue_unfinished() == 1
    asset.refresh_from_db()
    assert asset.status == Asset.Status.QUEUED
    assert sent == [asset.pk]


def test_photos_are_decoded_upright(tmp_path):
    wide = Image.new("RGB", (300, 100), "white")
    exif = wide.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    wide.save(tmp_path / "rotated.jpg", exif=exif)
    assert imaging.open_photo(tmp_path / "rotated.jpg").size == (100, 300)


def test_photos_over_the_pixel_limit_are_refused(tmp_path, settings):
    settings.MAX_IMAGE_PIXELS = 10_000
    Image.new("RGB", (200, 200)).save(tmp_path / "big.png")
    with pytest.raises(imaging.UnreadablePhoto, match="over the limit"):
        imaging.open_photo(tmp_path / "big.png")


@pytest.mark.shared_data
def test_a_renamed_file_keeps_its_asset_and_faces(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1)]
    path = put(inbox, "person_b.jpg")
    asset = intake.register_path(path)
    indexing.index_asset(asset.pk)
    moved = path.rename(inbox / "renamed.jpg")
    sent.clear()
    again = intake.register_path(moved)
    assert again.pk == asset.pk and again.path == str(moved)
    assert again.status == Asset.Status.INDEXED and again.faces.count() == 1
    assert sent == [] and vector_store_on.count() == 1
    assert intake.mark_missing([path]) == 0


@pytest.mark.parametrize("removes_faces", [False, True])
@pytest.mark.shared_data
def test_a_deleted_file_leaves_its_asset_missing(
    inbox, sent, engine, vector_store_on, media_root, settings, removes_faces
):
    settings.MISSING_REMOVES_FACES = removes_faces
    engine.faces = [fake_face(1)]
    path = put(inbox, "person_b.jpg")
    asset = intake.register_path(path)
    indexing.index_asset(asset.pk)
    path.unlink()
    assert intake.missing_under(inbox) == [path.resolve()]
    assert intake.mark_missing([path.resolve()]) == 1
    asset.refresh_from_db()
    assert asset.status == Asset.Status.MISSING and "deleted or moved" in asset.error
    assert vector_store_on.count() == (0 if removes_faces else 1)
    # Put back (under another name), it is found again; without its faces it is indexed again.
    sent.clear()
    back = intake.register_path(put(inbox, "person_b.jpg", "back.jpg"))
    assert back.pk == asset.pk
    assert back.status == (Asset.Status.QUEUED if removes_faces else Asset.Status.INDEXED)
    assert sent == ([asset.pk] if removes_faces else [])


@pytest.mark.shared_data
def test_when_a_file_goes_its_copy_takes_over_its_asset(inbox, sent, engine, vector_store_on, media_root):
    engine.faces = [fake_face(1)]
    original = intake.register_path(put(inbox, "person_b.jpg"))
    indexing.index_asset(original.pk)
    copy = intake.register_path(put(inbox, "person_b.jpg", "copy of person_b.jpg"))
    assert copy.status == Asset.Status.DUPLICATE
    face = original.faces.get()

    Path(original.path).unlink()
    intake.mark_missing([Path(original.path)])
    survivor = Asset.objects.get()
    assert (survivor.pk, survivor.path, survivor.status) == (original.pk, copy.path, Asset.Status.INDEXED)
    assert list(survivor.faces.all()) == [face] and vector_store_on.count() == 1
