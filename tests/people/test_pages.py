"""The people pages render for a signed-in user, stay behind the login, and take no hostile input: names are
escaped, unknown ids are 404s, changes are POSTs only."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from media_index.models import Asset, Frame
from people.models import ForgottenPerson, Person
from tests.people.conftest import make_asset, make_face

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reviewer", password="a-long-password-1"))
    return client


@pytest.fixture
def person(media_root) -> Person:
    """A named person in a photo and in a video moment of two frames."""
    ada = Person.objects.create(name="Ada")
    make_face(make_asset(), ada, crop=True)
    video = make_asset(Asset.Kind.VIDEO)
    first = make_face(video, ada, frame=Frame.objects.create(asset=video, index=0, timestamp=0.0), crop=True)
    make_face(video, ada, frame=Frame.objects.create(asset=video, index=1, timestamp=1.0), track=first.pk)
    first.track = first.pk
    first.save()
    return ada


def get_pages(person: Person) -> list[str]:
    forgotten = ForgottenPerson.objects.create(label=person.label, model_name="", dimension=0, template=b"")
    return [
        reverse("people:list"),
        reverse("people:list") + "?hidden=1",
        reverse("people:person", args=[person.pk]),
        reverse("people:forget", args=[person.pk]),
        reverse("people:forgotten", args=[forgotten.pk]),
        reverse("people:find") + "?name=ad",
    ]


POST_ONLY = ["rename", "merge", "move", "cover", "hide"]


def test_every_page_renders_for_a_signed_in_user(signed_in, person):
    for url in get_pages(person):
        answer = signed_in.get(url, follow=True)  # a name that one person has leads to their page
        assert answer.status_code == 200, url
        assert "Ada" in answer.content.decode(), url


def test_every_page_and_change_sends_an_anonymous_visitor_to_sign_in(client, person):
    urls = get_pages(person) + [reverse("people:review", args=[person.pk]), reverse("people:review_next")]
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/"), url
    for name in POST_ONLY:
        answer = client.post(reverse(f"people:{name}", args=[person.pk]), {"name": "Eve", "hidden": "1"})
        assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/"), name
    assert client.post(reverse("people:add_face", args=[1]), {}).status_code == 302
    assert Person.objects.get(pk=person.pk).name == "Ada" and not Person.objects.get(pk=person.pk).hidden


def test_the_person_page_shows_each_photo_and_moment_linking_to_where_they_are(signed_in, person):
    page = signed_in.get(reverse("people:person", args=[person.pk])).content.decode()
    photo = person.faces.get(frame=None)
    video = person.faces.exclude(frame=None).first().asset
    assert f'href="/assets/{photo.asset_id}/"' in page
    assert f'href="/assets/{video.pk}/?t=0.00"' in page  # the moment plays from its start
    assert "0:00.0–0:01.0" in page
    assert page.count('name="faces"') == 2  # one tile per photo and per moment
    assert "1 photo · 1 video moment" in page


def test_the_grid_puts_named_people_first_and_hidden_ones_behind_the_switch(signed_in, person):
    unnamed, hidden = Person.objects.create(), Person.objects.create(name="Hidden Harry", hidden=True)
    for somebody in (unnamed, hidden):
        make_face(make_asset(), somebody)
    page = signed_in.get(reverse("people:list")).content.decode()
    assert page.index("Ada") < page.index(f"Person {unnamed.pk}")
    assert "Hidden Harry" not in page and "Show hidden people (1)" in page
    assert "1 photo · 1 moment" in page and "latest 2023-11-14" in page
    assert "Hidden Harry" in signed_in.get(reverse("people:list") + "?hidden=1").content.decode()


def test_the_grid_is_paginated(signed_in, media_root):
    Person.objects.bulk_create([Person(name=f"P{number:03d}") for number in range(130)])
    first = signed_in.get(reverse("people:list"))
    assert len(first.context["page"].object_list) == 120 and "page 1 of 2" in first.content.decode()
    second = signed_in.get(reverse("people:list") + "?page=2")
    assert [p.name for p in second.context["page"].object_list] == [f"P{n:03d}" for n in range(120, 130)]
    assert signed_in.get(reverse("people:list") + "?page=x").status_code == 200  # a bad page number is page 1


def test_a_hostile_name_is_escaped_on_every_page(signed_in, person, settings, tmp_path):
    Person.objects.filter(pk=person.pk).update(name=HOSTILE)
    person.refresh_from_db()
    settings.INBOX_DIR = tmp_path
    photo = person.faces.get(frame=None).asset
    Asset.objects.filter(pk=photo.pk).update(width=100, height=100)
    Person.objects.create(name=HOSTILE + " junior")  # so that the name search lists both
    # The review page, which needs Milvus, is checked in test_review.py.
    pages = [url for url in get_pages(person) if "find" not in url]
    pages += [reverse("people:find") + "?name=script", reverse("search:asset", args=[photo.pk])]
    for url in pages:
        answer = signed_in.get(url, follow=True)
        page = answer.content.decode()
        assert answer.status_code == 200, url
        assert HOSTILE not in page, url
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page, url


def test_unknown_ids_are_404s(signed_in, person):
    other = Person.objects.create(name="Grace")
    missing, huge = 987654, 10**25
    for url in [
        reverse("people:person", args=[missing]),
        reverse("people:person", args=[huge]),
        reverse("people:forget", args=[missing]),
        reverse("people:review", args=[missing]),
        reverse("people:forgotten", args=[missing]),
    ]:
        assert signed_in.get(url).status_code == 404, url
    for name in POST_ONLY:
        assert signed_in.post(reverse(f"people:{name}", args=[missing]), {"hidden": "1"}).status_code == 404, name
    assert signed_in.post(reverse("people:add_face", args=[missing]), {}).status_code == 404
    face = person.faces.first().pk
    move = reverse("people:move", args=[person.pk])
    assert signed_in.post(move, {"faces": [face, missing], "out": "1"}).status_code == 404
    assert signed_in.post(move, {"faces": [face], "target": f"#{missing}"}).status_code == 404
    assert signed_in.post(reverse("people:merge", args=[person.pk]), {"target": f"#{missing}"}).status_code == 404
    assert signed_in.post(reverse("people:cover", args=[person.pk]), {"cover": missing}).status_code == 404
    assert person.faces.count() == 3 and Person.objects.filter(pk=other.pk).exists()


def test_changes_refuse_get(signed_in, person):
    for name in POST_ONLY:
        assert signed_in.get(reverse(f"people:{name}", args=[person.pk])).status_code == 405, name
    assert signed_in.get(reverse("people:add_face", args=[person.faces.first().asset_id])).status_code == 405


def test_ids_that_are_not_numbers_are_refused_without_a_change(signed_in, person):
    move = reverse("people:move", args=[person.pk])
    for faces in (["1 OR 1=1"], ["-3"], ["²"], ["9" * 40]):
        assert signed_in.post(move, {"faces": faces, "out": "1"}).status_code == 400, faces
    assert signed_in.post(reverse("people:cover", args=[person.pk]), {"cover": "x"}).status_code == 400
    assert signed_in.post(reverse("people:hide", args=[person.pk]), {"hidden": "maybe"}).status_code == 400
    assert person.faces.filter(person_pinned=True).count() == 0


def test_a_face_of_another_person_cannot_be_moved_from_this_ones_page(signed_in, person):
    grace = Person.objects.create(name="Grace")
    hers = make_face(make_asset(), grace)
    answer = signed_in.post(reverse("people:move", args=[person.pk]), {"faces": [hers.pk], "out": "1"})
    assert answer.status_code == 400
    assert "is not one of Ada&#x27;s faces" in answer.content.decode()
    hers.refresh_from_db()
    assert hers.person == grace and not hers.person_pinned
    cover = signed_in.post(reverse("people:cover", args=[person.pk]), {"cover": hers.pk})
    assert cover.status_code == 400 and Person.objects.get(pk=person.pk).cover is None


def test_changes_need_the_csrf_token(django_user_model, person):
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("reviewer", password="a-long-password-1"))
    page = client.get(reverse("people:person", args=[person.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', page)[1]
    rename = reverse("people:rename", args=[person.pk])
    assert client.post(rename, {"name": "Eve"}).status_code == 403
    assert Person.objects.get(pk=person.pk).name == "Ada"
    assert client.post(rename, {"name": "Eve", "csrfmiddlewaretoken": token}).status_code == 302
    assert Person.objects.get(pk=person.pk).name == "Eve"
