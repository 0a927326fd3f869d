"""The review queue "Is this <name>?" on the real Milvus: which faces it asks about, and that every answer is
remembered and never asked again."""

import pytest
from django.urls import reverse

from media_index import vector_store
from media_index.models import Asset, Calibration, Face, Frame
from people import review
from people.models import Person, Verdict
from tests.people.conftest import make_asset, make_face
from tests.search.test_video_results import QUERY, at_distance

pytestmark = pytest.mark.django_db

IDENTIFICATION = 0.8


def stored(face: Face, distance: float) -> Face:
    timestamp = face.frame.timestamp if face.frame else 0.0
    vector = QUERY if distance == 0 else at_distance(distance, face.pk)
    vector_store.insert([vector_store.FaceVector(face.pk, vector, face.asset_id, face.asset.kind, timestamp)])
    return face


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reviewer", password="a-long-password-1"))
    return client


@pytest.fixture
def queue(vector_store_on, media_root) -> dict:
    """Ada and the faces around her, each a case the queue must or must not ask about."""
    Calibration.objects.create(
        model_name="test-model", threshold=1.0, midpoint=1.0, slope=10.0, accuracy=0.9,
        identification_threshold=IDENTIFICATION, pairs=1, source="test",
    )  # fmt: skip
    ada, unnamed, bob = Person.objects.create(name="Ada"), Person.objects.create(), Person.objects.create(name="Bob")
    her_photo, her_video = make_asset(), make_asset(Asset.Kind.VIDEO)
    her_frame = Frame.objects.create(asset=her_video, index=0, timestamp=0.0)
    stored(make_face(her_photo, ada, crop=True), 0)
    stored(make_face(make_asset(), ada), 0.05)
    stored(make_face(her_video, ada, frame=her_frame), 0.1)
    clip = make_asset(Asset.Kind.VIDEO)
    frames = [Frame.objects.create(asset=clip, index=index, timestamp=float(index)) for index in range(2)]
    track = stored(make_face(clip, frame=frames[0], crop=True), 0.45)
    Face.objects.filter(pk=track.pk).update(track=track.pk)
    faces = {
        "free": stored(make_face(make_asset(), crop=True), 0.3),
        "track": track,
        "track_mate": stored(make_face(clip, frame=frames[1], track=track.pk), 0.6),
        "weak": stored(make_face(make_asset(), unnamed, crop=True), 0.6),
        "strong": stored(make_face(make_asset(), unnamed), 0.6),
        "far": stored(make_face(make_asset()), 1.0),
        "named_other": stored(make_face(make_asset(), bob), 0.3),
        "taken_out": stored(make_face(make_asset(), pinned=True), 0.3),
        "answered": stored(make_face(make_asset()), 0.3),
        "same_photo": stored(make_face(her_photo), 0.3),
        "same_frame": stored(make_face(her_video, frame=her_frame), 0.3),
    }
    Face.objects.filter(pk=faces["weak"].pk).update(person_distance=0.9)  # closer to Ada than to its group
    Face.objects.filter(pk=faces["strong"].pk).update(person_distance=0.2)
    Verdict.objects.create(face=faces["answered"], person=ada, same=False)
    return {"ada": ada, "bob": bob, **faces}


def test_the_queue_asks_about_open_faces_near_her_within_the_identification_threshold(queue):
    found = review.suggestions(queue["ada"])
    assert [suggestion.face.pk for suggestion in found] == [queue[name].pk for name in ("free", "track", "weak")]
    assert found[0].distance == pytest.approx(0.3, abs=1e-3)
    assert all(suggestion.distance < IDENTIFICATION for suggestion in found)


def test_answers_are_remembered_and_never_asked_again(queue, signed_in):
    ada = queue["ada"]
    page = signed_in.get(reverse("people:review", args=[ada.pk])).content.decode()
    assert "Is this Ada?" in page
    assert page.count('type="checkbox" name="faces"') == 3 and page.count(" checked>") == 3
    assert 'key === "y"' in page  # the keyboard

    confirm = {"faces": [queue["free"].pk, queue["track"].pk], "decision": "confirm"}
    answer = signed_in.post(reverse("people:review", args=[ada.pk]), confirm, follow=True)
    assert "3 faces confirmed as Ada." in answer.content.decode()  # the track's other face with it
    for name in ("free", "track", "track_mate"):
        face = Face.objects.get(pk=queue[name].pk)
        assert face.person == ada and face.person_pinned, name
        assert Verdict.objects.get(face=face, person=ada).same, name
    assert [s.face.pk for s in answer.context["suggestions"]] == [queue["weak"].pk]

    reject = {"faces": [queue["weak"].pk], "decision": "reject"}
    answer = signed_in.post(reverse("people:review", args=[ada.pk]), reject, follow=True)
    assert not Verdict.objects.get(face=queue["weak"], person=ada).same
    assert Face.objects.get(pk=queue["weak"].pk).person_id is not None  # still with its own group
    assert answer.context["suggestions"] == []
    assert "Nothing to ask about Ada now" in answer.content.decode()


def test_the_queue_refuses_unknown_faces_and_faces_a_user_placed_elsewhere(queue, signed_in):
    ada, bob = queue["ada"], queue["bob"]
    Face.objects.filter(pk=queue["named_other"].pk).update(person_pinned=True)
    review_url = reverse("people:review", args=[ada.pk])
    assert signed_in.post(review_url, {"faces": [987654], "decision": "confirm"}).status_code == 404
    answer = signed_in.post(review_url, {"faces": [queue["named_other"].pk], "decision": "confirm"})
    assert answer.status_code == 400 and "placed face" in answer.content.decode()
    assert signed_in.post(review_url, {"faces": [queue["free"].pk], "decision": "maybe"}).status_code == 400
    assert Face.objects.get(pk=queue["named_other"].pk).person == bob
    assert not Verdict.objects.filter(face=queue["free"]).exists()


def test_the_entry_picks_the_next_named_person_with_something_to_ask(queue, signed_in):
    ada = queue["ada"]
    answer = signed_in.get(reverse("people:review_next"))
    assert answer.status_code == 302 and answer["Location"] == reverse("people:review", args=[ada.pk])
    after = signed_in.get(reverse("people:review_next") + f"?after={queue['bob'].pk}")
    assert after.status_code == 200 and "Nothing to review" in after.content.decode()


def test_a_hostile_name_is_escaped_on_the_review_page(queue, signed_in):
    Person.objects.filter(pk=queue["ada"].pk).update(name='<script>alert("x")</script>')
    page = signed_in.get(reverse("people:review", args=[queue["ada"].pk])).content.decode()
    assert "<script>alert" not in page and "Is this &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;?" in page
