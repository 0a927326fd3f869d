"""Adding a face the detector missed: the box drawn on the photo's page is checked, cropped as a detected face is,
embedded (the embedder faked), and stored with its crop and vector on the real Milvus."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from media_index import face_engine, vector_store
from media_index.models import Asset, Face
from people.models import ForgottenPerson, PeopleEvent, Person
from tests.people.conftest import make_asset, make_face, unit

pytestmark = pytest.mark.django_db

# The photo: blue, with a red square where the missed face is.
SIZE, FACE = (400, 300), (100, 50, 200, 150)
EMBEDDING = unit(7)


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reviewer", password="a-long-password-1"))
    return client


@pytest.fixture
def embedded(monkeypatch) -> list:
    """The embedder, faked below face_engine.embed_faces (whose cropping runs): the crops it was given."""
    crops: list = []

    def embed(images, boxes, all_crops):
        crops.extend(all_crops)
        return [EMBEDDING for _ in all_crops]

    monkeypatch.setattr(face_engine, "_models", lambda model=None: SimpleNamespace(embed=embed))
    monkeypatch.setattr(face_engine, "model_name", lambda model=None: "test-model")
    return crops


@pytest.fixture
def photo(settings, tmp_path, media_root, vector_store_on) -> Asset:
    settings.INBOX_DIR = tmp_path / "inbox"
    settings.INBOX_DIR.mkdir()
    image = Image.new("RGB", SIZE, "blue")
    image.paste("red", FACE)
    path = settings.INBOX_DIR / "group.jpg"
    image.save(path, quality=95)
    asset = make_asset(path=str(path))
    Asset.objects.filter(pk=asset.pk).update(width=SIZE[0], height=SIZE[1], preview="previews/group.jpg")
    return Asset.objects.get(pk=asset.pk)


def box(left, top, right, bottom, **more) -> dict:
    return {"left": left, "top": top, "right": right, "bottom": bottom, **more}


def add_url(asset: Asset) -> str:
    return reverse("people:add_face", args=[asset.pk])


def test_the_photo_page_offers_to_draw_a_face(signed_in, photo):
    page = signed_in.get(reverse("search:asset", args=[photo.pk])).content.decode()
    assert 'id="draw-area" data-width="400" data-height="300"' in page
    assert f'action="{add_url(photo)}"' in page and "pointerdown" in page


def test_a_drawn_face_is_cropped_embedded_and_stored_for_the_person_chosen(signed_in, photo, embedded):
    ada = Person.objects.create(name="Ada")
    answer = signed_in.post(add_url(photo), box(*FACE, person="ada"), follow=True)
    assert answer.redirect_chain == [(reverse("search:asset", args=[photo.pk]), 302)]
    assert "Face added (Ada)." in answer.content.decode() and "(drawn by hand)" in answer.content.decode()
    face = Face.objects.get()
    assert (face.box, face.probability, face.added_by_hand) == ([100, 50, 200, 150], 1.0, True)
    assert (face.person, face.person_pinned, face.model_name) == (ada, True, "test-model")
    # Cropped as a detected face is: the box and FaceNet's margin (12.5 px here), 160x160.
    [crop] = embedded
    assert crop.size == (160, 160)
    pixels = np.asarray(crop)
    assert pixels[80, 80, 0] > 200 and pixels[80, 80, 2] < 60  # the face
    assert pixels[2, 2, 2] > 200 and pixels[2, 2, 0] < 60  # the margin around it
    with Image.open(face.crop.path) as stored_crop:
        assert stored_crop.size == (160, 160)
    assert np.allclose(vector_store.vectors_of([face.pk])[face.pk], EMBEDDING, atol=1e-6)
    event = PeopleEvent.objects.get(action=PeopleEvent.Action.ADD_FACE)
    assert event.detail == {"face": face.pk, "asset": photo.pk, "box": [100, 50, 200, 150], "pinned": True}
    assert event.user.username == "reviewer"


def test_without_a_person_clustering_places_the_face(signed_in, photo, embedded):
    grace = Person.objects.create(name="Grace")
    hers = make_face(make_asset(), grace)
    vector_store.insert([vector_store.FaceVector(hers.pk, EMBEDDING, hers.asset_id, "image")])
    assert signed_in.post(add_url(photo), box(*FACE)).status_code == 302
    face = Face.objects.get(added_by_hand=True)
    assert face.person == grace and not face.person_pinned


@pytest.mark.parametrize(
    "edges, message",
    [
        ((-5, 50, 100, 150), "is not inside the photo, which is 400x300 pixels"),
        ((300, 200, 401, 300), "is not inside the photo"),
        ((0, 0, 400, 301), "is not inside the photo"),
        ((100, 100, 119, 200), "a face needs at least 20x20"),
        ((100, 100, 50, 200), "a face needs at least 20x20"),
        (("nan", 0, 100, 100), "Enter a number"),
        (("1e999", 0, 100, 100), "Enter a number"),
        (("", 0, 100, 100), "This field is required"),
    ],
)
def test_a_box_that_is_not_a_face_of_the_photo_is_refused(signed_in, photo, embedded, edges, message):
    answer = signed_in.post(add_url(photo), box(*edges))
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert not Face.objects.exists() and embedded == []


def test_the_whole_photo_is_the_largest_box(signed_in, photo, embedded):
    assert signed_in.post(add_url(photo), box(0, 0, 400, 300)).status_code == 302
    assert Face.objects.get().box == [0, 0, 400, 300]


def test_only_indexed_photos_that_are_still_there_take_a_face(signed_in, photo, embedded):
    video = make_asset(Asset.Kind.VIDEO)
    answer = signed_in.post(add_url(video), box(*FACE))
    assert answer.status_code == 400 and "is not an indexed photo" in answer.content.decode()
    Asset.objects.filter(pk=photo.pk).update(status=Asset.Status.QUEUED)
    assert signed_in.post(add_url(photo), box(*FACE)).status_code == 400
    Asset.objects.filter(pk=photo.pk).update(status=Asset.Status.INDEXED)
    Path(photo.path).unlink()
    answer = signed_in.post(add_url(photo), box(*FACE))
    assert answer.status_code == 400 and "is gone" in answer.content.decode()
    assert not Face.objects.exists()


def test_a_face_of_a_forgotten_person_is_not_stored(signed_in, photo, embedded):
    ForgottenPerson.objects.create(
        label="Eve", model_name="test-model", dimension=512, template=EMBEDDING[None, :].tobytes()
    )
    answer = signed_in.post(add_url(photo), box(*FACE))
    assert answer.status_code == 400 and "forgotten on request" in answer.content.decode()
    assert not Face.objects.exists() and ForgottenPerson.objects.get().faces_dropped == 1


def test_an_unknown_person_is_refused(signed_in, photo, embedded):
    assert signed_in.post(add_url(photo), box(*FACE, person="Nobody")).status_code == 400
    assert signed_in.post(add_url(photo), box(*FACE, person="#987654")).status_code == 404
    assert not Face.objects.exists()
