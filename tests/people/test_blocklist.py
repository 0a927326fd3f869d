"""A forgotten person's face is dropped at indexing, before it is stored; anybody else's is kept."""

import numpy as np
import pytest
from PIL import Image

from media_index import face_engine, storing, vector_store
from people import actions
from people.models import ForgottenPerson, Person
from tests.people.conftest import make_asset, make_face, unit

pytestmark = pytest.mark.django_db


def detected(vector: np.ndarray) -> face_engine.Face:
    return face_engine.Face((1.0, 2.0, 30.0, 40.0), 0.99, vector, Image.new("RGB", (160, 160), "gray"))


@pytest.fixture
def forgotten(monkeypatch, settings) -> ForgottenPerson:
    """Ada, forgotten, with a template of two faces (the vector store faked: it is not what this is about)."""
    settings.MATCH_DISTANCE = 1.0  # "test-model" has no calibration: this is its identification threshold
    monkeypatch.setattr(face_engine, "model_name", lambda: "test-model")
    person = Person.objects.create(name="Ada")
    asset = make_asset()
    faces = [make_face(asset, person), make_face(asset, person)]
    stored = {face.pk: unit(seed) for seed, face in enumerate(faces)}
    monkeypatch.setattr(vector_store, "vectors_of", lambda ids: {pk: stored[pk] for pk in ids if pk in stored})
    monkeypatch.setattr(vector_store, "delete_faces", lambda ids: None)
    return actions.forget(person)


def test_a_face_matching_a_forgotten_template_is_dropped_and_counted(forgotten):
    near = unit(0) + 0.02 * unit(100)  # Ada again, a little different
    stranger = unit(200)
    kept = storing.without_forgotten(make_asset(), [detected(near / np.linalg.norm(near)), detected(stranger)])
    assert [face.embedding is stranger for face in kept] == [True]
    forgotten.refresh_from_db()
    assert forgotten.faces_dropped == 1


def test_faces_of_another_model_are_not_compared_with_the_template(forgotten, monkeypatch):
    monkeypatch.setattr(face_engine, "model_name", lambda: "another-model")
    assert len(storing.without_forgotten(make_asset(), [detected(unit(0))])) == 1
    forgotten.refresh_from_db()
    assert forgotten.faces_dropped == 0
