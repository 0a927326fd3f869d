"""The admin shows people with their faces, and its changes go through people/actions.py, so they are audited."""

import pytest
from django.urls import reverse

from people.models import ForgottenPerson, PeopleEvent, Person
from tests.people.conftest import make_asset, make_face

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(media_root) -> Person:
    ada = Person.objects.create(name="Ada")
    make_face(make_asset(), ada, crop=True)
    return ada


def test_a_person_page_shows_their_faces_and_a_rename_is_audited(admin_client, admin_user, ada):
    url = reverse("admin:people_person_change", args=[ada.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and b'<img src="/media/crops/' in page.content
    assert admin_client.get(reverse("admin:people_person_changelist") + "?q=ad").status_code == 200
    form = {"name": "Ada Lovelace", "faces-TOTAL_FORMS": "1", "faces-INITIAL_FORMS": "1"}
    response = admin_client.post(url, form | {"faces-0-id": str(ada.faces.get().pk), "faces-0-person": str(ada.pk)})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Person.objects.get().name == "Ada Lovelace"
    [event] = PeopleEvent.objects.all()
    assert (event.action, event.user) == (PeopleEvent.Action.RENAME, admin_user)
    assert admin_client.get(reverse("admin:people_peopleevent_change", args=[event.pk])).status_code == 200
    assert admin_client.get(reverse("admin:people_peopleevent_add")).status_code == 403


def test_forgetting_from_the_admin_asks_first(admin_client, ada, monkeypatch):
    from media_index import vector_store

    monkeypatch.setattr(vector_store, "vectors_of", lambda ids: {})
    monkeypatch.setattr(vector_store, "delete_faces", lambda ids: None)
    changelist = reverse("admin:people_person_changelist")
    chosen = {"action": "forget_selected", "_selected_action": [str(ada.pk)]}
    asked = admin_client.post(changelist, chosen)
    assert asked.status_code == 200 and b"Yes, forget them" in asked.content
    assert Person.objects.exists()
    assert admin_client.post(changelist, chosen | {"confirmed": "yes"}).status_code == 302
    assert not Person.objects.exists()
    forgotten = ForgottenPerson.objects.get()
    assert admin_client.get(reverse("admin:people_forgottenperson_change", args=[forgotten.pk])).status_code == 200
