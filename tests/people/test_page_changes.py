"""Every form of a person's page changes what it says, through people.actions, and leads on to the right page."""

import pytest
from django.urls import reverse

from media_index import vector_store
from media_index.models import Asset, Face, Frame
from people.models import ForgottenPerson, PeopleEvent, Person, Verdict
from tests.people.conftest import make_asset, make_face, unit

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reviewer", password="a-long-password-1"))
    return client


@pytest.fixture
def ada(media_root) -> Person:
    ada = Person.objects.create(name="Ada")
    make_face(make_asset(), ada, crop=True)
    make_face(make_asset(), ada, crop=True)
    return ada


def url(name: str, person: Person) -> str:
    return reverse(f"people:{name}", args=[person.pk])


def test_rename(signed_in, ada):
    answer = signed_in.post(url("rename", ada), {"name": "  Ada Lovelace "}, follow=True)
    assert answer.redirect_chain == [(url("person", ada), 302)]
    assert Person.objects.get(pk=ada.pk).name == "Ada Lovelace"
    assert "Renamed to Ada Lovelace." in answer.content.decode()
    assert PeopleEvent.objects.get(action="rename").user.username == "reviewer"


def test_a_too_long_name_is_refused_on_the_page(signed_in, ada):
    answer = signed_in.post(url("rename", ada), {"name": "x" * 201})
    assert answer.status_code == 400 and "at most 200 characters" in answer.content.decode()
    assert Person.objects.get(pk=ada.pk).name == "Ada"


@pytest.mark.parametrize("chosen", ["ada lovelace", "#{pk}", "{pk}"])
def test_merge_into_a_person_chosen_by_name_or_number(signed_in, ada, chosen):
    target = Person.objects.create(name="Ada Lovelace")
    make_face(make_asset(), target)
    answer = signed_in.post(url("merge", ada), {"target": chosen.format(pk=target.pk)})
    assert answer.status_code == 302 and answer["Location"] == url("person", target)
    assert not Person.objects.filter(pk=ada.pk).exists()
    assert target.faces.count() == 3


def test_merge_refuses_an_unknown_name_an_ambiguous_one_and_the_person_themselves(signed_in, ada):
    twins = [Person.objects.create(name="Twin"), Person.objects.create(name="twin")]
    for target, message in [
        ("Nobody", "Nobody is called Nobody"),
        ("Twin", f"Several people are called Twin: give the number of one (#{twins[0].pk}, #{twins[1].pk})"),
        (f"#{ada.pk}", "That is this person"),
    ]:
        answer = signed_in.post(url("merge", ada), {"target": target})
        assert answer.status_code == 400 and message in answer.content.decode(), target
    assert ada.faces.count() == 2 and Person.objects.count() == 3


def test_move_selected_faces_to_another_person_takes_the_whole_video_track(signed_in, ada):
    grace = Person.objects.create(name="Grace")
    video = make_asset(Asset.Kind.VIDEO)
    frames = [Frame.objects.create(asset=video, index=index, timestamp=float(index)) for index in range(3)]
    first = make_face(video, ada, frame=frames[0])
    track = [first] + [make_face(video, ada, frame=frame, track=first.pk) for frame in frames[1:]]
    Face.objects.filter(pk=first.pk).update(track=first.pk)
    photo_face = ada.faces.filter(frame=None).first()
    answer = signed_in.post(url("move", ada), {"faces": [first.pk, photo_face.pk], "target": "Grace"})
    assert answer.status_code == 302 and answer["Location"] == url("person", ada)  # Ada keeps a face
    moved = set(grace.faces.values_list("pk", flat=True))
    assert moved == {face.pk for face in track} | {photo_face.pk}
    assert all(grace.faces.values_list("person_pinned", flat=True))
    assert ada.faces.count() == 1


def test_not_this_person_takes_faces_out_and_remembers_it(signed_in, ada):
    face = ada.faces.first()
    answer = signed_in.post(url("move", ada), {"faces": [face.pk], "out": "1", "target": ""})
    assert answer.status_code == 302
    face.refresh_from_db()
    assert face.person is None and face.person_pinned
    assert Verdict.objects.get(face=face, person=ada).same is False


def test_moving_every_face_of_an_unnamed_person_leads_to_where_they_went(signed_in, media_root):
    unnamed, grace = Person.objects.create(), Person.objects.create(name="Grace")
    face = make_face(make_asset(), unnamed)
    answer = signed_in.post(url("move", unnamed), {"faces": [face.pk], "target": f"#{grace.pk}"})
    assert answer["Location"] == url("person", grace)  # the unnamed person had no face left and is gone
    assert not Person.objects.filter(pk=unnamed.pk).exists()


def test_move_needs_a_target_or_not_this_person(signed_in, ada):
    answer = signed_in.post(url("move", ada), {"faces": [ada.faces.first().pk], "target": ""})
    assert answer.status_code == 400 and "Say whom to move them to" in answer.content.decode()
    assert signed_in.post(url("move", ada), {"target": "Ada", "out": "1"}).status_code == 400  # no face chosen


def test_choose_the_cover(signed_in, ada):
    face = ada.faces.order_by("pk").last()
    answer = signed_in.post(url("cover", ada), {"cover": face.pk, "faces": [face.pk], "target": ""})
    assert answer.status_code == 302
    assert Person.objects.get(pk=ada.pk).cover == face
    page = signed_in.get(url("person", ada)).content.decode()
    assert f'src="{face.crop.url}" alt="Face of Ada"' in page


def test_hide_and_show_again(signed_in, ada):
    answer = signed_in.post(url("hide", ada), {"hidden": "1"}, follow=True)
    assert "Ada is hidden from the people page" in answer.content.decode()
    assert Person.objects.get(pk=ada.pk).hidden
    assert "Ada" not in signed_in.get(reverse("people:list")).content.decode()
    signed_in.post(url("hide", ada), {"hidden": "0"})
    assert not Person.objects.get(pk=ada.pk).hidden


def test_forget_asks_first_then_shows_the_erasure_report(signed_in, ada, vector_store_on, settings, tmp_path):
    settings.INBOX_DIR = tmp_path
    photo = tmp_path / "ada.jpg"
    photo.write_bytes(b"jpeg")
    kept = make_asset(path=str(photo))
    face = make_face(kept, ada, crop=True)
    vector_store.insert([vector_store.FaceVector(face.pk, unit(1), kept.pk, "image")])

    ask = signed_in.get(url("forget", ada)).content.decode()
    assert "3 faces, with 3 face crops" in ask and "in 3 photos and 0 videos" in ask
    assert "ada.jpg" in ask and 'name="delete_files"' in ask

    answer = signed_in.post(url("forget", ada), {}, follow=True)
    forgotten = ForgottenPerson.objects.get()
    assert answer.redirect_chain == [(reverse("people:forgotten", args=[forgotten.pk]), 302)]
    page = answer.content.decode()
    assert "Ada was forgotten" in page and "Faces deleted</dt><dd>3 faces, with 3 vectors in the index, 3 crops" in page
    assert "Files deleted</dt><dd>0" in page
    assert not Person.objects.filter(pk=ada.pk).exists() and photo.exists()


def test_forget_deletes_the_files_when_asked(signed_in, ada, vector_store_on, settings, tmp_path):
    settings.INBOX_DIR = tmp_path
    photo = tmp_path / "ada.jpg"
    photo.write_bytes(b"jpeg")
    make_face(make_asset(path=str(photo)), ada)
    answer = signed_in.post(url("forget", ada), {"delete_files": "on"}, follow=True)
    assert not photo.exists()
    assert "Files deleted</dt><dd>1" in answer.content.decode() and "<li>ada.jpg</li>" in answer.content.decode()
