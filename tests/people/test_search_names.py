"""Search and names: a result names the person its face belongs to only within the identification threshold, and
the search box finds people by name."""

import pytest
from django.core.cache import cache
from django.template.loader import render_to_string
from django.urls import reverse

from media_index import face_engine, vector_store
from media_index.calibration import ScoreScale
from media_index.models import Face
from people.models import Person
from search import services
from search.forms import SearchForm
from tests.people.conftest import make_asset, make_face
from tests.search.test_video_results import QUERY, at_distance

pytestmark = pytest.mark.django_db

# "Same person" below 1.0; a name only below 0.8.
SCALE = ScoreScale(threshold=1.0, midpoint=1.0, slope=10.0, source="test", identification=0.8)


def stored_face(person: Person | None, distance: float) -> Face:
    face = make_face(make_asset(), person)
    vector_store.insert([vector_store.FaceVector(face.pk, at_distance(distance, face.pk), face.asset_id, "image")])
    return face


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reviewer", password="a-long-password-1"))
    return client


def test_a_result_names_the_person_only_within_the_identification_threshold(vector_store_on, media_root):
    ada, unnamed = Person.objects.create(name='Ada <b>"L"</b>'), Person.objects.create()
    near = stored_face(ada, 0.5)
    also_near_unnamed = stored_face(unnamed, 0.6)
    same_but_not_named = stored_face(ada, 0.9)  # the same person by the pair threshold, too far to name
    nobody = stored_face(None, 0.7)
    matches = services.find_matches(QUERY, top_k=10, scale=SCALE)
    named = {match.face.pk: match.person for match in matches}
    assert named == {near.pk: ada, also_near_unnamed.pk: None, nobody.pk: None, same_but_not_named.pk: None}
    assert [match.same_person for match in matches] == [True, True, True, True]

    html = render_to_string("search/_matches.html", {"matches": matches, "offset": 0})
    assert html.count("This is <a") == 1
    assert f'This is <a href="/people/{ada.pk}/">Ada &lt;b&gt;&quot;L&quot;&lt;/b&gt;</a>' in html
    result = services.SearchResult([services.QueryFace((0, 0, 9, 9), 1.0, QUERY)], 0, matches, 10, 10)
    context = {"query_id": "0" * 32, "result": result, "faces": [], "strong": matches, "weak": []}
    page = render_to_string("search/result.html", context | {"form": SearchForm()})
    assert f'The best match is <a href="/people/{ada.pk}/">Ada &lt;b&gt;' in page


def test_the_naming_threshold_is_the_one_for_the_archive_s_named_faces(vector_store_on, media_root, monkeypatch):
    # The open-set rule: among few named faces a stranger is seldom near one, so a name is given further out.
    cache.clear()
    monkeypatch.setattr(services, "NAMED_FACES_CACHE_SECONDS", 0)
    model = face_engine.model_name()
    scale = ScoreScale(1.0, 1.0, 10.0, "test", identification=0.7, curve=((1, 0.95), (100, 0.7)))
    ada = Person.objects.create(name="Ada")
    face = stored_face(ada, 0.9)
    Face.objects.filter(pk=face.pk).update(model_name=model)
    stored_face(Person.objects.create(), 0.99)  # an unnamed person's face: not in the gallery
    assert services.named_faces(model) == 1
    assert [match.person for match in services.find_matches(QUERY, top_k=1, scale=scale)] == [ada]

    # 99 more named faces (of this model; another model's do not count): 0.9 is too far now.
    Face.objects.bulk_create([Face(**_fields(face), model_name=model) for _ in range(99)])
    Face.objects.bulk_create([Face(**_fields(face), model_name="other-model") for _ in range(500)])
    assert services.named_faces(model) == 100
    assert [match.person for match in services.find_matches(QUERY, top_k=1, scale=scale)] == [None]


def test_the_named_faces_are_counted_at_most_once_a_while(media_root):
    cache.clear()
    ada = Person.objects.create(name="Ada")
    make_face(make_asset(), ada)
    assert services.named_faces("test-model") == 1
    make_face(make_asset(), ada)
    assert services.named_faces("test-model") == 1  # counted again after NAMED_FACES_CACHE_SECONDS
    cache.clear()
    assert services.named_faces("test-model") == 2


def _fields(face: Face) -> dict:
    return {"asset": face.asset, "left": 0, "top": 0, "right": 9, "bottom": 9, "probability": 1, "person": face.person}


def test_the_search_page_takes_a_name(signed_in, media_root):
    page = signed_in.get(reverse("search:form")).content.decode()
    assert 'action="/people/find"' in page and "or a name" in page


def test_a_name_leads_to_the_one_person_or_lists_them_or_says_nobody(signed_in, media_root):
    ada, adam = Person.objects.create(name="Ada Lovelace"), Person.objects.create(name="Adam Smith")
    Person.objects.create()  # unnamed people are never found by name
    find = reverse("people:find")
    answer = signed_in.get(find, {"name": " lovelace "})
    assert answer.status_code == 302 and answer["Location"] == f"/people/{ada.pk}/"

    listed = signed_in.get(find, {"name": "ADA"}).content.decode()
    assert f'href="/people/{ada.pk}/">Ada Lovelace</a>' in listed and f'href="/people/{adam.pk}/">Adam Smith' in listed

    nobody = signed_in.get(find, {"name": "Grace"})
    assert nobody.status_code == 200 and "Nobody is named like “Grace”" in nobody.content.decode()
    assert signed_in.get(find, {"name": " "}).status_code == 400
    assert signed_in.get(find, {"name": "x" * 201}).status_code == 400


def test_search_photo_json_names_the_person(vector_store_on, media_root, tmp_path):
    from search.management.commands.search_photo import Command

    ada = Person.objects.create(name="Ada")
    near, far = stored_face(ada, 0.5), stored_face(ada, 0.9)
    matches = services.find_matches(QUERY, top_k=10, scale=SCALE)
    result = services.SearchResult([services.QueryFace((0, 0, 9, 9), 1.0, QUERY)], 0, matches, 10, 10)
    records = Command().as_record(tmp_path / "query.jpg", result)["results"]
    assert [record.get("person") for record in records] == [{"id": ada.pk, "name": "Ada"}, None]
    assert {near.asset.path, far.asset.path} == {record["path"] for record in records}
