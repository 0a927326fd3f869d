"""Re-indexing keeps what users decided: the new face in an old face's place takes its person, pin and answers,
and faces drawn by hand are embedded again. Real Milvus; the face engine is faked (tests/media_index/conftest)."""

import numpy as np
import pytest

from media_index import dispatch, face_engine, indexing, intake
from media_index.models import Asset, Face
from people import reindexing
from people.models import Person, Verdict
from tests.media_index.conftest import fake_face, put

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.shared_data]

LEFT, RIGHT, DRAWN = (10.0, 20.0, 60.0, 80.0), (200.0, 20.0, 250.0, 80.0), (300.0, 100.0, 340.0, 150.0)


def test_a_photo_indexed_again_keeps_people_pins_answers_and_drawn_faces(
    inbox,
    sent,
    engine,
    vector_store_on,
    media_root,
    monkeypatch,
):
    engine.faces = [fake_face(1, LEFT), fake_face(2, RIGHT)]
    asset = intake.register_path(put(inbox, "person_b.jpg"))
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    alice, bob = Person.objects.create(name="Alice"), Person.objects.create(name="Bob")
    left, right = asset.faces.order_by("left")
    Face.objects.filter(pk=left.pk).update(person=alice, person_pinned=True)
    Verdict.objects.create(face=right, person=bob, same=False)
    drawn = Face.objects.create(
        asset=asset, left=DRAWN[0], top=DRAWN[1], right=DRAWN[2], bottom=DRAWN[3], probability=1.0,
        model_name="test-model", added_by_hand=True, person=bob, person_pinned=True,
    )  # fmt: skip
    embedded = []

    def embed_faces(images, detections, model=None):
        embedded.extend(box for box, _ in detections[0])
        return [[fake_face(3, box) for box, _ in detections[0]]]

    monkeypatch.setattr(face_engine, "embed_faces", embed_faces)
    dispatch.requeue([asset])
    engine.faces = [fake_face(4, (12.0, 22.0, 61.0, 79.0)), fake_face(5, RIGHT)]  # found again, a little moved
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED

    assert embedded == [DRAWN]
    new_left, new_right, new_drawn = asset.faces.order_by("left")
    assert left.pk != new_left.pk and drawn.pk != new_drawn.pk
    assert (new_left.person, new_left.person_pinned) == (alice, True)
    assert list(Verdict.objects.filter(face=new_right).values_list("person", "same")) == [(bob.pk, False)]
    assert (new_drawn.person, new_drawn.added_by_hand, new_drawn.box) == (bob, True, list(DRAWN))
    assert vector_store_on.count() == 3


def test_a_drawn_face_the_detector_now_finds_is_not_added_twice():
    remembered = [reindexing.Remembered(LEFT, None, None, True, True)]
    detected = [face_engine.Face((11.0, 21.0, 60.0, 80.0), 0.99, np.zeros(512, np.float32), None)]
    assert reindexing.drawn_again(None, remembered, detected) == []


def test_overlap_is_intersection_over_union():
    assert reindexing.overlap((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert reindexing.overlap((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert reindexing.overlap((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
