"""Faces find their person as they are stored, and `cluster_faces --full` regroups them keeping users' decisions.

Real Milvus (the neighbours come from it); the vectors are made by hand, so no face model runs.
"""

import numpy as np
import pytest
from django.core.management import call_command

from media_index import face_engine
from media_index.models import Asset, Face
from people import assignment, rebuild
from people.models import PeopleEvent, Person, Verdict

pytestmark = pytest.mark.django_db

MODEL = "test-model"


@pytest.fixture
def store(vector_store_on, settings, monkeypatch):
    monkeypatch.setattr(face_engine, "model_name", lambda: MODEL)
    settings.PEOPLE_CLUSTER_DISTANCE = 0.8
    settings.PEOPLE_MIN_FACES = 3
    return vector_store_on


def person_vectors(people: int, each: int, seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 512))
    made = []
    for centre in centres:
        rows = centre / np.linalg.norm(centre) + rng.normal(scale=0.01, size=(each, 512))
        made.append([(row / np.linalg.norm(row)).astype(np.float32) for row in rows])
    return made


def add_photo(store, vector: np.ndarray, assign: bool = True) -> Face:
    """One photo with one face, stored as indexing stores it (the vector inserted, then assigned)."""
    number = Asset.objects.count()
    asset = Asset.objects.create(path=f"/inbox/p{number}.jpg", sha256=f"{number:064x}", kind="image", size=1, mtime=0)
    face = Face.objects.create(asset=asset, left=0, top=0, right=10, bottom=10, probability=0.99, model_name=MODEL)
    store.insert([store.FaceVector(face.pk, vector, asset.pk, "image")])
    if assign:
        assignment.assign_new_faces([face], [vector])
        face.refresh_from_db()
    return face


def test_a_person_forms_at_the_third_close_face_and_later_faces_join(store):
    alice = person_vectors(1, 5)[0]
    first, second = add_photo(store, alice[0]), add_photo(store, alice[1])
    assert first.person is None and second.person is None
    third = add_photo(store, alice[2])
    assert third.person is not None
    first.refresh_from_db(), second.refresh_from_db()
    assert first.person == second.person == third.person
    assert add_photo(store, alice[3]).person == third.person
    assert Person.objects.count() == 1


def test_a_stranger_and_faces_a_user_took_out_stay_out(store):
    alice, stranger = person_vectors(2, 4, seed=1)
    taken_out = add_photo(store, alice[0], assign=False)
    Face.objects.filter(pk=taken_out.pk).update(person_pinned=True)
    faces = [add_photo(store, vector) for vector in alice[1:4]]
    taken_out.refresh_from_db()
    assert taken_out.person is None
    assert faces[-1].person is not None
    assert add_photo(store, stranger[0]).person is None


def test_assignment_can_be_switched_off(store, settings):
    settings.PEOPLE_ASSIGN_ON_INDEX = False
    faces = [add_photo(store, vector) for vector in person_vectors(1, 4, seed=2)[0]]
    assert all(face.person is None for face in faces)


def test_full_rebuild_forms_the_people_and_keeps_names_pins_and_refusals(store, settings):
    settings.PEOPLE_ASSIGN_ON_INDEX = False
    alice, bob, carol = person_vectors(3, 5, seed=3)
    faces = {
        name: [add_photo(store, v) for v in vectors] for name, vectors in zip("abc", (alice, bob, carol), strict=True)
    }
    lonely = add_photo(store, person_vectors(1, 1, seed=4)[0][0])
    first = rebuild.rebuild(MODEL)
    assert first.people == 3 and first.grouped == 15
    people = {name: Face.objects.get(pk=group[0].pk).person for name, group in faces.items()}
    for name, group in faces.items():
        assert {Face.objects.get(pk=face.pk).person for face in group} == {people[name]}
    assert Face.objects.get(pk=lonely.pk).person is None

    people["a"].name = "Alice"
    people["a"].save()
    moved = faces["b"][0]  # a user says this one of Bob's is Alice's
    Face.objects.filter(pk=moved.pk).update(person=people["a"], person_pinned=True)
    refused = faces["c"][0]  # and that this one is not Carol
    Verdict.objects.create(face=refused, person=people["c"], same=False)
    Face.objects.filter(pk=refused.pk).update(person=None, person_pinned=True)
    unpinned_refusal = faces["c"][1]
    Verdict.objects.create(face=unpinned_refusal, person=people["c"], same=False)

    call_command("cluster_faces", "--full")
    alice_person = Person.objects.get(name="Alice")
    assert alice_person.pk == people["a"].pk
    assert set(alice_person.faces.values_list("pk", flat=True)) == {f.pk for f in faces["a"]} | {moved.pk}
    assert Face.objects.get(pk=refused.pk).person is None
    assert Face.objects.get(pk=unpinned_refusal.pk).person is None
    assert Face.objects.get(pk=faces["c"][2].pk).person == people["c"]  # the unnamed person kept its id
    assert PeopleEvent.objects.filter(action=PeopleEvent.Action.REBUILD).count() == 2  # one per rebuild


def test_full_rebuild_removes_unnamed_people_left_without_faces(store, settings):
    settings.PEOPLE_ASSIGN_ON_INDEX = False
    ghost, named = Person.objects.create(), Person.objects.create(name="Kept")
    stray = add_photo(store, person_vectors(1, 1, seed=5)[0][0])
    Face.objects.filter(pk=stray.pk).update(person=ghost)
    report = rebuild.rebuild(MODEL)
    assert report.removed_people == 1
    assert list(Person.objects.all()) == [named]


def test_one_close_face_of_a_person_is_not_enough_to_join_them(store, settings):
    settings.PEOPLE_MIN_FACES = 2
    basis = np.eye(512, dtype=np.float32)
    angle = 2 * np.arcsin(0.3)  # 0.6 from the first face; the second and third are 0.81 apart
    first = basis[0]
    second = np.cos(angle) * basis[0] + np.sin(angle) * basis[1]
    third = np.cos(angle) * basis[0] + np.sin(angle) * basis[2]
    a, b = add_photo(store, first), add_photo(store, second)
    a.refresh_from_db()
    assert a.person is not None and a.person == b.person
    assert add_photo(store, third).person is None  # close to one of their two faces only: left to the rebuild
