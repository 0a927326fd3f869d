"""Nothing is lost on the way: re-indexing keeps old faces until new ones replace them, vectors and files go only
after the database commits, deleting a face deletes its vector and crop, and a copy stands in for a lost original."""

import os
from pathlib import Path

import pytest

from media_index import dispatch, indexing, intake, upkeep, vector_store
from media_index.models import Asset, Face
from tests.media_index.conftest import fake_face, put

pytestmark = pytest.mark.django_db(transaction=True)


def indexed(inbox, engine, sample: str, seeds: list[int], name: str | None = None) -> Asset:
    engine.faces = [fake_face(seed) for seed in seeds]
    asset = intake.register_path(put(inbox, sample, name))
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    asset.refresh_from_db()
    return asset


@pytest.mark.shared_data
def test_a_photo_queued_again_stays_searchable_until_its_new_faces_are_stored(
    inbox, sent, engine, vector_store_on, media_root
):
    asset = indexed(inbox, engine, "person_b.jpg", [1])
    old_face, old_crop = asset.faces.get(), Path(asset.faces.get().crop.path)
    assert dispatch.requeue([asset]) == 1
    # Queued, not yet indexed again: its face and vector are still there to be found.
    assert list(asset.faces.all()) == [old_face] and old_crop.exists()
    assert vector_store_on.search(fake_face(1).embedding, 1)[0].face_id == old_face.pk

    engine.faces = [fake_face(2)]
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    new_face = asset.faces.get()
    assert new_face.pk != old_face.pk and not old_crop.exists()
    assert [hit.face_id for hit in vector_store_on.search(fake_face(2).embedding, 5)] == [new_face.pk]


@pytest.mark.shared_data
def test_when_storing_the_new_faces_fails_the_old_ones_are_kept(inbox, sent, engine, vector_store_on, monkeypatch):
    asset = indexed(inbox, engine, "person_b.jpg", [1])
    old_face = asset.faces.get()
    dispatch.requeue([asset])

    def refused(vectors):
        raise vector_store.VectorStoreUnavailable("Milvus went away")

    monkeypatch.setattr(vector_store, "insert", refused)
    engine.faces = [fake_face(2)]
    with pytest.raises(vector_store.VectorStoreUnavailable):
        indexing.index_asset(asset.pk)
    # The transaction rolled back, and the old vector was never deleted: the photo is still found.
    assert list(asset.faces.all()) == [old_face] and Path(old_face.crop.path).exists()
    assert vector_store_on.search(fake_face(1).embedding, 1)[0].face_id == old_face.pk
    assert upkeep.check_index().faces_without_vectors == []


@pytest.mark.shared_data
def test_deleting_a_face_in_the_admin_deletes_its_vector_and_crop(
    inbox, sent, engine, vector_store_on, media_root, admin_client
):
    asset = indexed(inbox, engine, "two_people.jpg", [1, 2])
    gone, kept = asset.faces.all()
    crop = Path(gone.crop.path)
    answer = admin_client.post(f"/admin/media_index/face/{gone.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 302
    assert list(Face.objects.all()) == [kept] and not crop.exists()
    assert sorted(vector_store.stored_faces()) == [kept.pk] and upkeep.check_index().consistent


@pytest.mark.shared_data
def test_deleting_faces_in_bulk_in_the_admin_deletes_their_vectors(
    inbox, sent, engine, vector_store_on, media_root, admin_client
):
    indexed(inbox, engine, "two_people.jpg", [1, 2])
    ids = list(Face.objects.values_list("pk", flat=True))
    answer = admin_client.post(
        "/admin/media_index/face/", {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert answer.status_code == 302
    assert Face.objects.count() == 0 and not vector_store.stored_faces() and upkeep.check_index().consistent


@pytest.fixture
def original_and_copies(inbox, sent, engine, vector_store_on, media_root):
    original = indexed(inbox, engine, "person_b.jpg", [1])
    copies = [intake.register_path(put(inbox, "person_b.jpg", f"copy {n}.jpg")) for n in (1, 2)]
    assert {copy.status for copy in copies} == {Asset.Status.DUPLICATE}
    sent.clear()
    return original, copies


@pytest.mark.shared_data
def test_a_copy_takes_over_when_its_original_changes(original_and_copies, inbox, sent):
    original, (first, second) = original_and_copies
    Path(original.path).write_bytes((inbox / "copy 1.jpg").read_bytes()[:-10] + b"other tail")
    os.utime(original.path, (1, 1))
    intake.register_path(Path(original.path))
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, first.duplicate_of_id) == (Asset.Status.QUEUED, None)
    assert second.duplicate_of_id == first.pk and first.pk in sent


@pytest.mark.shared_data
def test_a_copy_takes_over_when_its_original_fails(original_and_copies, engine, sent):
    original, (first, _) = original_and_copies
    dispatch.requeue([original])
    Path(original.path).write_bytes(b"")  # the original file broke after it arrived
    engine.faces = []
    assert indexing.index_asset(original.pk) == Asset.Status.FAILED
    first.refresh_from_db()
    assert (first.status, first.duplicate_of_id) == (Asset.Status.QUEUED, None)


@pytest.mark.shared_data
def test_a_copy_takes_over_when_its_original_is_deleted(original_and_copies, sent):
    original, (first, second) = original_and_copies
    Asset.objects.get(pk=original.pk).delete()
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, first.duplicate_of_id, second.duplicate_of_id) == (Asset.Status.QUEUED, None, first.pk)
    assert sent == [first.pk] and vector_store.count() == 0


def test_unsupported_files_are_never_queued_again(inbox, sent):
    (inbox / "notes.txt").write_text("hello")
    unsupported = intake.register_path(inbox / "notes.txt")
    link = inbox / "out.jpg"
    link.symlink_to(Path(__file__))
    refused = intake.register_path(link, within=inbox)
    assert refused.status == Asset.Status.UNSUPPORTED and "outside the inbox" in refused.error
    assert dispatch.requeue([unsupported, refused]) == 0 and sent == []


@pytest.mark.shared_data
def test_a_link_swapped_in_for_an_indexed_photo_takes_its_faces_away(inbox, sent, engine, vector_store_on, media_root):
    asset = indexed(inbox, engine, "person_b.jpg", [1])
    path = Path(asset.path)
    path.unlink()
    path.symlink_to(Path(__file__))
    refused = intake.register_path(path, within=inbox)
    assert refused.pk == asset.pk and refused.status == Asset.Status.UNSUPPORTED
    assert Face.objects.count() == 0 and vector_store.count() == 0


@pytest.mark.shared_data
def test_many_empty_files_are_recorded_at_once(inbox, sent, engine, vector_store_on, media_root):
    truncated = indexed(inbox, engine, "person_b.jpg", [1])
    Path(truncated.path).write_bytes(b"")
    sent.clear()
    for number in range(1200):
        (inbox / f"{number:04d}.jpg").touch()
    paths = sorted(inbox.glob("*.jpg"))
    assert intake.record_empty_files(paths) == 1200
    assert intake.record_empty_files(paths) == 0  # known already: nothing new
    statuses = set(Asset.objects.values_list("status", flat=True))
    assert statuses == {Asset.Status.FAILED} and Asset.objects.count() == 1201 and sent == []
    # The photo truncated to nothing went through registration: its faces are gone.
    assert Face.objects.count() == 0 and vector_store.count() == 0


@pytest.mark.parametrize("swap", ["the file", "its folder"])
@pytest.mark.shared_data
def test_a_photo_swapped_for_a_link_out_before_its_task_runs_is_not_read(
    inbox, sent, engine, vector_store_on, media_root, settings, tmp_path, swap
):
    settings.INBOX_DIR = inbox
    outside = tmp_path / "outside"
    outside.mkdir()
    put(outside, "person_b.jpg", "secret.jpg")
    (inbox / "folder").mkdir()
    asset = intake.register_path(put(inbox / "folder", "person_a_1.jpg", "secret.jpg"), within=inbox)
    if swap == "the file":
        Path(asset.path).unlink()
        Path(asset.path).symlink_to(outside / "secret.jpg")
    else:
        (inbox / "folder" / "secret.jpg").unlink()
        (inbox / "folder").rmdir()
        (inbox / "folder").symlink_to(outside)
    engine.faces = [fake_face(1)]
    assert indexing.index_asset(asset.pk) == Asset.Status.FAILED
    asset.refresh_from_db()
    assert "it is not read" in asset.error and Face.objects.count() == 0 and not asset.preview
