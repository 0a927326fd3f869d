"""Forgetting a person: a template is kept, every face of theirs goes (rows, crops, vectors), files only on request
and only inside the inbox, and the erasure report counts it all."""

import os
from pathlib import Path

import numpy as np
import pytest

from media_index import inbox as media_inbox
from media_index import vector_store
from media_index.models import Asset, Face, Frame
from people import actions
from people.models import ForgottenPerson, PeopleEvent, Person
from tests.people.conftest import make_asset, make_face, unit

pytestmark = pytest.mark.django_db(transaction=True)


def holds(template: np.ndarray, vector: np.ndarray) -> bool:
    return bool(np.abs(template - vector).max(axis=1).min() < 1e-5)


def store(face: Face, vector: np.ndarray) -> None:
    vector_store.insert([vector_store.FaceVector(face.pk, vector, face.asset_id, face.asset.kind)])


def test_forget_keeps_a_template_and_deletes_faces_crops_and_vectors(vector_store_on, media_root, user):
    person, other = Person.objects.create(name="Ada"), Person.objects.create(name="Grace")
    photo, video = make_asset(), make_asset(Asset.Kind.VIDEO)
    lonely = Frame.objects.create(asset=video, index=0, timestamp=0.0, thumbnail="frames/lonely.jpg")
    shared = Frame.objects.create(asset=video, index=1, timestamp=0.5, thumbnail="frames/shared.jpg")
    for name in ("frames/lonely.jpg", "frames/shared.jpg"):
        (media_root / name).parent.mkdir(parents=True, exist_ok=True)
        (media_root / name).write_bytes(b"jpeg")
    theirs = [
        make_face(photo, person, crop=True),
        make_face(video, person, frame=lonely, crop=True),
        make_face(video, person, frame=shared, crop=True),
    ]
    kept = make_face(video, other, frame=shared, crop=True)
    vectors = {face.pk: unit(index) for index, face in enumerate([*theirs, kept])}
    for face in [*theirs, kept]:
        store(face, vectors[face.pk])
    crops = [Path(face.crop.path) for face in theirs]

    forgotten = actions.forget(person, user=user)

    assert forgotten.label == "Ada" and forgotten.model_name == "test-model" and forgotten.forgotten_by == user
    template = ForgottenPerson.objects.get().vectors()
    assert template.shape == (3, 512) and template.dtype == np.float32
    assert np.allclose(np.linalg.norm(template, axis=1), 1.0, atol=1e-5)
    assert all(holds(template, vectors[face.pk]) for face in theirs)
    assert list(Face.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not Person.objects.filter(pk=person.pk).exists()
    assert set(vector_store.stored_faces()) == {kept.pk}
    assert not any(crop.exists() for crop in crops) and Path(kept.crop.path).exists()
    # Both frames stay; the one left without a face loses the thumbnail that showed the person.
    assert dict(Frame.objects.values_list("pk", "thumbnail")) == {lonely.pk: "", shared.pk: "frames/shared.jpg"}
    assert not (media_root / "frames/lonely.jpg").exists() and (media_root / "frames/shared.jpg").exists()
    assert Asset.objects.count() == 2

    report = forgotten.report
    assert report["faces_deleted"] == forgotten.faces_deleted == 3
    assert (report["photos"], report["videos"], report["vectors_deleted"], report["crops_deleted"]) == (1, 1, 3, 3)
    assert report["frame_thumbnails_deleted"] == 1 and report["template_faces"] == 3
    assert report["files_deleted"] == 0 and report["by"] == "editor" and report["when"]
    assert sorted(entry["faces"] for entry in report["assets"]) == [1, 2]
    [event] = PeopleEvent.objects.filter(action=PeopleEvent.Action.FORGET)
    assert event.detail == report and event.person_label == "Ada" and event.user == user and event.person is None


@pytest.fixture
def fake_vectors(monkeypatch):
    """The vector store, faked where Milvus is not what a test is about: vectors_of answers from this dict."""
    stored: dict[int, np.ndarray] = {}
    deleted: list[int] = []
    monkeypatch.setattr(vector_store, "vectors_of", lambda ids: {pk: stored[pk] for pk in ids if pk in stored})
    monkeypatch.setattr(vector_store, "delete_faces", lambda ids: deleted.extend(ids))
    monkeypatch.setattr(vector_store, "delete_asset", lambda *args: None)
    return stored


def test_the_template_takes_at_most_64_faces_spread_over_photos_and_tracks(fake_vectors):
    person = Person.objects.create()
    video = make_asset(Asset.Kind.VIDEO)
    frame = Frame.objects.create(asset=video, index=0, timestamp=0.0)
    long_track = [make_face(video, person, frame=frame, track=1, probability=0.999) for _ in range(70)]
    photos = [make_face(make_asset(), person, probability=0.5) for _ in range(5)]
    for index, face in enumerate(long_track + photos):
        fake_vectors[face.pk] = 3 * unit(index)  # stored vectors are made unit length in the template
    forgotten = actions.forget(person)
    template = forgotten.vectors()
    assert template.shape == (64, 512)
    assert np.allclose(np.linalg.norm(template, axis=1), 1.0, atol=1e-5)
    # Every photo is in it, though the track's faces are all clearer.
    assert all(holds(template, fake_vectors[face.pk] / 3) for face in photos)


def test_a_person_without_stored_vectors_is_forgotten_with_a_template_no_model_loads(fake_vectors):
    person = Person.objects.create(name="Ada")
    make_face(make_asset(), person)
    forgotten = actions.forget(person)
    assert forgotten.model_name == "" and forgotten.dimension == 0 and forgotten.report["template_faces"] == 0
    assert not Face.objects.exists()


@pytest.fixture
def inbox(settings, tmp_path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    settings.INBOX_DIR = folder
    return folder


def test_files_are_deleted_on_request_only_inside_the_inbox_and_never_through_a_link(
    fake_vectors, inbox, tmp_path, media_root
):
    person = Person.objects.create(name="Ada")
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (inbox / "sub").mkdir()
    inside = inbox / "sub" / "a.jpg"
    inside.write_bytes(b"photo")
    copy = inbox / "copy of a.jpg"
    copy.write_bytes(b"photo")
    beyond = outside / "b.jpg"
    beyond.write_bytes(b"photo")
    through = outside / "folder" / "c.jpg"
    through.write_bytes(b"photo")
    (inbox / "linked").symlink_to(outside / "folder")
    held = make_asset(path=str(inside))
    Asset.objects.create(
        path=str(copy), sha256="0" * 64, kind=Asset.Kind.IMAGE, size=5, mtime=0, status=Asset.Status.DUPLICATE,
        duplicate_of=held,
    )  # fmt: skip
    make_face(held, person)
    other = make_face(held, Person.objects.create(name="Grace"))
    make_face(make_asset(path=str(beyond)), person)
    # Stored as the path it had when registered; a folder on the way was swapped for a link since.
    make_face(make_asset(path=str(inbox / "linked" / "c.jpg")), person)

    report = actions.forget(person, delete_files=True).report

    assert not inside.exists() and not copy.exists()
    assert beyond.exists() and through.exists()
    assert set(Asset.objects.values_list("path", flat=True)) == {str(beyond), str(inbox / "linked" / "c.jpg")}
    assert not Face.objects.filter(pk=other.pk).exists()
    assert report["files_deleted"] == 2 and report["other_faces_deleted"] == 1
    reasons = {entry["path"]: entry["reason"] for entry in report["files_kept"]}
    assert "outside the inbox" in reasons[str(beyond)]
    assert "link" in reasons[os.path.join("linked", "c.jpg")]


def test_a_link_in_the_inbox_is_neither_deleted_nor_followed(inbox, tmp_path):
    target = tmp_path / "elsewhere.jpg"
    target.write_bytes(b"photo")
    (inbox / "link.jpg").symlink_to(target)
    assert "a link" in media_inbox.unlink_inside(inbox / "link.jpg", inbox)
    assert target.exists() and (inbox / "link.jpg").is_symlink()
    assert media_inbox.unlink_inside(inbox / ".." / "elsewhere.jpg", inbox) != "" and target.exists()
