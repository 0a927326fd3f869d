"""The people endpoints: the list and one person read as the people pages show them; every change goes through
people.actions (one PeopleEvent with the token's user); a read-only token changes nothing; no token reads nothing."""

from urllib.parse import quote

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from media_index import vector_store
from media_index.models import Asset, Face, Frame, Track
from people.models import ForgottenPerson, PeopleEvent, Person, Verdict
from tests.people.conftest import make_asset, make_face, unit

pytestmark = pytest.mark.django_db

PEOPLE = "/api/v1/people"


def person_url(person: Person | int, tail: str = "") -> str:
    return f"{PEOPLE}/{getattr(person, 'pk', person)}{tail}"


def crop_url(face: Face) -> str:
    return "/api/v1/media/" + quote(face.crop.name)


def message(answer) -> str:
    assert answer["Content-Type"].startswith("application/json")
    return answer.json()["message"]


@pytest.fixture
def ada(media_root) -> Person:
    ada = Person.objects.create(name="Ada")
    make_face(make_asset(), ada, crop=True)
    make_face(make_asset(), ada, crop=True, probability=0.999)
    return ada


@pytest.fixture
def grace(media_root) -> Person:
    grace = Person.objects.create(name="Grace")
    make_face(make_asset(), grace, crop=True)
    return grace


@pytest.fixture
def fake_vectors(monkeypatch) -> dict[int, np.ndarray]:
    """The vector store, faked as tests/people/test_forget.py does: these tests are about the API, not Milvus."""
    stored: dict[int, np.ndarray] = {}
    monkeypatch.setattr(vector_store, "vectors_of", lambda ids: {pk: stored[pk] for pk in ids if pk in stored})
    monkeypatch.setattr(vector_store, "delete_faces", lambda ids: None)
    monkeypatch.setattr(vector_store, "delete_asset", lambda *args: None)
    return stored


def ids(answer) -> list[int]:
    assert answer.status_code == 200, answer.content
    return [item["id"] for item in answer.json()["items"]]


# Listing


def test_the_list_leaves_hidden_people_out_unless_asked(api, ada, grace, media_root):
    unnamed = Person.objects.create()
    for _ in range(3):
        make_face(make_asset(), unnamed)
    Person.objects.filter(pk=grace.pk).update(hidden=True)

    assert ids(api.get(PEOPLE)) == [ada.pk, unnamed.pk]
    assert ids(api.get(PEOPLE, {"hidden": "true"})) == [ada.pk, grace.pk, unnamed.pk]

    row = api.get(PEOPLE).json()["items"][0]
    clearest = ada.faces.get(probability=0.999)
    assert row["url"] == f"/people/{ada.pk}/" and row["label"] == "Ada" and row["hidden"] is False
    assert (row["faces"], row["photos"], row["moments"]) == (2, 2, 0)
    assert row["cover_face"] == clearest.pk and row["cover"] == crop_url(clearest)
    assert api.get(PEOPLE).json()["items"][1]["cover"] is None  # no crop stored


def test_a_name_finds_named_people_holding_it_case_aside_hidden_ones_too(api, ada, grace):
    adam = Person.objects.create(name="Adam", hidden=True)
    Person.objects.create()  # unnamed: "Person N" is no name
    assert ids(api.get(PEOPLE, {"name": " aDA "})) == [ada.pk, adam.pk]
    assert ids(api.get(PEOPLE, {"name": "person"})) == []


def test_pages_cut_the_list_in_order(api):
    everyone = [Person.objects.create(name=f"Person {letter}") for letter in "EDCBA"][::-1]
    seen = []
    for page in (1, 2, 3):
        answer = api.get(PEOPLE, {"page": page, "per_page": 2}).json()
        assert (answer["count"], answer["page"], answer["per_page"], answer["pages"]) == (5, page, 2, 3)
        seen += [item["id"] for item in answer["items"]]
    assert seen == [person.pk for person in everyone]
    assert len(api.get(PEOPLE).json()["items"]) == 5 and api.get(PEOPLE).json()["per_page"] == 50
    assert api.get(PEOPLE, {"page": 4, "per_page": 2}).json()["items"] == []  # past the last page: empty


@pytest.mark.parametrize(
    "query",
    [
        {"page": "0"},
        {"page": "two"},
        {"per_page": "0"},
        {"per_page": "201"},
        {"hidden": "maybe"},
        {"name": "  "},
        {"name": "x" * 201},
    ],
)
def test_bad_list_values_are_400_with_a_message(api, ada, query):
    answer = api.get(PEOPLE, query)
    assert answer.status_code == 400 and message(answer)


# One person


def test_a_person_comes_with_their_photos_and_video_moments(api, ada, media_root):
    video = make_asset(Asset.Kind.VIDEO, mtime=1_800_000_000.0)
    frames = [Frame.objects.create(asset=video, index=index, timestamp=3.0 + index) for index in range(2)]
    first = make_face(video, ada, frame=frames[0])
    make_face(video, ada, frame=frames[1], track=first.pk)
    Face.objects.filter(pk=first.pk).update(track=first.pk)
    Track.objects.create(face=first, asset=video, start=2.5, end=4.5)
    cover = ada.faces.filter(frame=None).order_by("pk").first()
    Person.objects.filter(pk=ada.pk).update(cover=cover)

    answer = api.get(person_url(ada))

    assert answer.status_code == 200
    person = answer.json()
    assert (person["id"], person["name"], person["label"], person["hidden"]) == (ada.pk, "Ada", "Ada", False)
    assert person["faces"] == 4 and person["cover_face"] == cover.pk and person["cover"] == crop_url(cover)
    assert person["url"] == f"/people/{ada.pk}/"
    photos = person["photos"]
    assert sorted(photo["face"] for photo in photos) == sorted(face.pk for face in ada.faces.filter(frame=None))
    assert all(photo["url"] == reverse("search:asset", args=[photo["asset"]]) for photo in photos)
    [moment] = person["moments"]
    assert (moment["asset"], moment["start"], moment["end"], moment["face"]) == (video.pk, 2.5, 4.5, first.pk)
    assert moment["url"] == reverse("search:asset", args=[video.pk]) + "?t=2.50"


@pytest.mark.parametrize("person_id", ["0", "-1", "x", str(2**63)])
def test_an_id_that_cannot_be_a_person_s_is_400(api, person_id):
    answer = api.get(f"{PEOPLE}/{person_id}")
    assert answer.status_code == 400 and message(answer)


def test_unknown_ids_are_404(api, ada):
    gone = Person.objects.create().pk
    Person.objects.filter(pk=gone).delete()
    face = ada.faces.first()
    for answer in [
        api.get(person_url(gone)),
        api.patch(person_url(gone), {"name": "Bob"}, content_type="application/json"),
        api.post(person_url(gone, "/merge"), {"into": ada.pk}, content_type="application/json"),
        api.post(person_url(ada, "/merge"), {"into": gone}, content_type="application/json"),
        api.post(person_url(ada, "/faces/move"), {"faces": [face.pk], "to": gone}, content_type="application/json"),
        api.post(person_url(gone, "/forget"), {}, content_type="application/json"),
        api.get(f"{PEOPLE}/forgotten/{gone}"),
    ]:
        assert answer.status_code == 404 and str(gone) in message(answer)
    assert not PeopleEvent.objects.exists() and ada.faces.count() == 2


# Changes


def the_event(action: str) -> PeopleEvent:
    [event] = PeopleEvent.objects.filter(action=action)
    return event


def test_patch_renames_and_hides(api, ada, api_user):
    answer = api.patch(person_url(ada), {"name": "  Ada Lovelace "}, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["name"] == "Ada Lovelace" and "photos" not in answer.json()
    assert Person.objects.get(pk=ada.pk).name == "Ada Lovelace"
    assert the_event("rename").user == api_user and the_event("rename").detail == {"old": "Ada", "new": "Ada Lovelace"}

    answer = api.patch(person_url(ada), {"name": "", "hidden": True}, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["label"] == f"Person {ada.pk}" and answer.json()["hidden"]
    ada.refresh_from_db()
    assert (ada.name, ada.hidden) == ("", True)
    assert the_event("hide").user == api_user and PeopleEvent.objects.filter(action="rename").count() == 2


@pytest.mark.parametrize(
    "body, says",
    [
        ({}, "Give `name`, `hidden` or both"),
        ({"name": None, "hidden": None}, "Give `name`, `hidden` or both"),
        ({"name": "x" * 201, "hidden": True}, "at most 200 characters"),
        ({"hiden": True}, "hiden"),
        ({"name": 12}, "name"),
    ],
)
def test_patch_refuses_bad_bodies_and_changes_nothing(api, ada, body, says):
    answer = api.patch(person_url(ada), body, content_type="application/json")
    assert answer.status_code == 400 and says in message(answer)
    assert Person.objects.filter(pk=ada.pk, name="Ada", hidden=False).exists() and not PeopleEvent.objects.exists()


def test_merge(api, ada, grace, api_user):
    answer = api.post(person_url(ada, "/merge"), {"into": grace.pk}, content_type="application/json")
    assert answer.status_code == 200
    assert answer.json()["id"] == grace.pk and answer.json()["faces"] == 3 and "photos" not in answer.json()
    assert not Person.objects.filter(pk=ada.pk).exists() and grace.faces.count() == 3
    event = the_event("merge")
    assert event.user == api_user and event.person == grace and event.detail["source"] == ada.pk


def test_merge_into_themselves_is_400(api, ada):
    answer = api.post(person_url(ada, "/merge"), {"into": ada.pk}, content_type="application/json")
    assert answer.status_code == 400 and "themselves" in message(answer)
    assert Person.objects.filter(pk=ada.pk).exists() and not PeopleEvent.objects.exists()


def test_move_faces_to_another_person_takes_their_track_mates_along(api, ada, grace, api_user):
    video = make_asset(Asset.Kind.VIDEO)
    frames = [Frame.objects.create(asset=video, index=index, timestamp=float(index)) for index in range(2)]
    first = make_face(video, ada, frame=frames[0], track=None)
    mate = make_face(video, ada, frame=frames[1], track=first.pk)
    Face.objects.filter(pk=first.pk).update(track=first.pk)

    answer = api.post(person_url(ada, "/faces/move"), {"faces": [first.pk], "to": grace.pk},
                      content_type="application/json")  # fmt: skip

    assert answer.status_code == 200
    assert answer.json()["moved"] == 2 and answer.json()["person"]["id"] == ada.pk
    assert answer.json()["person"]["faces"] == 2
    assert set(grace.faces.values_list("pk", flat=True)) >= {first.pk, mate.pk}
    assert Face.objects.filter(pk__in=[first.pk, mate.pk], person_pinned=True).count() == 2
    event = the_event("move")
    assert event.user == api_user and event.person == grace and sorted(event.detail["faces"]) == [first.pk, mate.pk]


def test_move_faces_out_deletes_an_unnamed_person_left_without_a_face(api, api_user):
    unnamed = Person.objects.create()
    face = make_face(make_asset(), unnamed)

    answer = api.post(person_url(unnamed, "/faces/move"), {"faces": [face.pk], "to": None},
                      content_type="application/json")  # fmt: skip

    assert answer.status_code == 200 and answer.json() == {"moved": 1, "person": None}
    face.refresh_from_db()
    assert face.person is None and face.person_pinned
    assert not Person.objects.filter(pk=unnamed.pk).exists()
    assert the_event("remove").user == api_user


@pytest.mark.parametrize(
    "make_body, status, says",
    [
        (lambda ada, grace: {"faces": [grace.faces.get().pk], "to": None}, 400, "is not one of Ada's faces"),
        (lambda ada, grace: {"faces": [999_999], "to": None}, 404, "No face has the number 999999"),
        (lambda ada, grace: {"faces": [ada.faces.first().pk], "to": ada.pk}, 400, "Ada's faces already"),
        (lambda ada, grace: {"faces": [], "to": None}, 400, "faces"),
        (lambda ada, grace: {"faces": list(range(1, 10_002)), "to": None}, 400, "faces"),
        (lambda ada, grace: {"faces": [ada.faces.first().pk]}, 400, "to"),  # no `to` must not take faces out
    ],
)
def test_move_refuses_and_changes_nothing(api, ada, grace, make_body, status, says):
    body = make_body(ada, grace)
    answer = api.post(person_url(ada, "/faces/move"), body, content_type="application/json")
    assert answer.status_code == status and says in message(answer)
    assert ada.faces.count() == 2 and grace.faces.count() == 1 and not PeopleEvent.objects.exists()


def test_review_answers_confirm_and_reject(api, ada, api_user):
    loose, wrong = make_face(make_asset()), make_face(make_asset())

    answer = api.post(person_url(ada, "/review"), {"faces": [loose.pk], "decision": "confirm"},
                      content_type="application/json")  # fmt: skip
    assert answer.status_code == 200 and answer.json()["faces"] == 1 and answer.json()["person"]["faces"] == 3
    assert Face.objects.filter(pk=loose.pk, person=ada, person_pinned=True).exists()
    assert the_event("confirm").user == api_user

    answer = api.post(person_url(ada, "/review"), {"faces": [wrong.pk], "decision": "reject"},
                      content_type="application/json")  # fmt: skip
    assert answer.status_code == 200 and answer.json()["faces"] == 1
    assert Verdict.objects.get(face=wrong, person=ada).same is False
    assert the_event("reject").user == api_user


def test_review_refuses_a_face_a_user_placed_with_someone_else(api, ada, grace):
    placed = make_face(make_asset(), grace, pinned=True)
    answer = api.post(person_url(ada, "/review"), {"faces": [placed.pk], "decision": "confirm"},
                      content_type="application/json")  # fmt: skip
    assert answer.status_code == 400 and "placed" in message(answer)
    answer = api.post(person_url(ada, "/review"), {"faces": [placed.pk], "decision": "maybe"},
                      content_type="application/json")  # fmt: skip
    assert answer.status_code == 400
    assert Face.objects.get(pk=placed.pk).person == grace and not PeopleEvent.objects.exists()


def test_forget_answers_the_erasure_report_kept_for_later(api, ada, api_user, fake_vectors):
    for index, face in enumerate(ada.faces.all()):
        fake_vectors[face.pk] = unit(index)

    answer = api.post(person_url(ada, "/forget"), {"delete_files": False}, content_type="application/json")

    assert answer.status_code == 200
    forgotten, report = answer.json()["forgotten"], answer.json()["report"]
    record = ForgottenPerson.objects.get()
    assert forgotten == record.pk and record.forgotten_by == api_user
    assert report["person"] == "Ada" and report["faces_deleted"] == 2 and report["photos"] == 2
    assert report["template_faces"] == 2 and report["by"] == "script" and report["files_deleted"] == 0
    assert not Person.objects.filter(pk=ada.pk).exists() and not Face.objects.exists()
    assert the_event("forget").user == api_user

    again = api.get(f"{PEOPLE}/forgotten/{forgotten}")
    assert again.status_code == 200 and again.json() == answer.json()


# Tokens

# Each change, as (method, path after the person's, body made from Ada and Grace).
WRITES = [
    ("patch", "", lambda ada, grace: {"name": "Bob", "hidden": True}),
    ("post", "/merge", lambda ada, grace: {"into": grace.pk}),
    ("post", "/faces/move", lambda ada, grace: {"faces": [ada.faces.first().pk], "to": None}),
    ("post", "/review", lambda ada, grace: {"faces": [ada.faces.first().pk], "decision": "reject"}),
    ("post", "/forget", lambda ada, grace: {"delete_files": True}),
]


def send(client: Client, method: str, ada: Person, tail: str, make_body, grace: Person):
    return getattr(client, method)(person_url(ada, tail), make_body(ada, grace), content_type="application/json")


@pytest.mark.parametrize("method, tail, make_body", WRITES)
def test_a_read_only_token_changes_nothing(read_api, ada, grace, fake_vectors, method, tail, make_body):
    answer = send(read_api, method, ada, tail, make_body, grace)
    assert answer.status_code == 403 and "read-only" in message(answer)
    assert Person.objects.filter(pk=ada.pk, name="Ada", hidden=False).exists() and ada.faces.count() == 2
    assert not PeopleEvent.objects.exists() and not Verdict.objects.exists() and not ForgottenPerson.objects.exists()


@pytest.mark.parametrize("method, tail, make_body", WRITES)
@pytest.mark.parametrize("token", [None, "rs_not-a-token"])
def test_without_a_valid_token_nothing_changes(ada, grace, fake_vectors, method, tail, make_body, token):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}") if token else Client()
    answer = send(client, method, ada, tail, make_body, grace)
    assert answer.status_code == 401 and "API token" in message(answer)
    assert Person.objects.filter(pk=ada.pk, name="Ada").exists() and not PeopleEvent.objects.exists()


def test_without_a_token_nothing_is_read(client, ada, fake_vectors):
    forgotten = ForgottenPerson.objects.create(label="Bob", model_name="", dimension=0, template=b"")
    for path in [PEOPLE, person_url(ada), f"{PEOPLE}/forgotten/{forgotten.pk}"]:
        answer = client.get(path)
        assert answer.status_code == 401 and "API token" in message(answer)
