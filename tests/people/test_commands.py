"""`manage.py people` and `manage.py person`: their JSON, their errors, and text that cannot drive a terminal."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from media_index.models import Asset, Frame
from people.models import Person
from tests.people.conftest import make_asset, make_face

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def ada() -> Person:
    ada = Person.objects.create(name="Ada")
    make_face(make_asset(path="/archive/ada.jpg", mtime=1_600_000_000), ada)
    video = make_asset(Asset.Kind.VIDEO, path="/archive/talk.mp4")
    frames = [Frame.objects.create(asset=video, index=i, timestamp=2.0 + i) for i in range(2)]
    first = make_face(video, ada, frame=frames[0])
    make_face(video, ada, frame=frames[1], track=first.pk)
    first.track = first.pk
    first.save()
    Person.objects.create(name="Hidden", hidden=True)
    return ada


def test_people_json_lists_each_person_with_counts(ada):
    [row] = json.loads(run("people", "--json"))
    assert row == {
        "id": ada.pk, "name": "Ada", "label": "Ada", "hidden": False, "faces": 3, "photos": 1, "moments": 1,
        "latest": row["latest"], "cover_face": row["cover_face"],
    }  # fmt: skip
    assert row["latest"].startswith("20") and isinstance(row["cover_face"], int)
    assert [row["name"] for row in json.loads(run("people", "--json", "--hidden"))] == ["Ada", "Hidden"]


def test_person_json_has_the_photos_and_the_moments(ada):
    found = json.loads(run("person", "ada", "--json"))
    assert found["id"] == ada.pk and found["label"] == "Ada"
    assert [photo["path"] for photo in found["photos"]] == ["/archive/ada.jpg"]
    [moment] = found["moments"]
    assert (moment["path"], moment["start"], moment["end"]) == ("/archive/talk.mp4", 2.0, 3.0)
    assert str(ada.pk) in run("person", str(ada.pk))


def test_an_unknown_name_says_how_to_list_people(ada):
    with pytest.raises(CommandError, match="Nobody is called 'Grace'.*manage.py people"):
        run("person", "Grace")


def test_several_people_with_one_name_are_listed_with_their_ids(ada):
    twin = Person.objects.create(name="ADA")
    with pytest.raises(CommandError, match=rf"2 people are called 'Ada'.*{ada.pk} \(3 faces\).*{twin.pk} \(0 faces\)"):
        run("person", "Ada")


def test_names_and_paths_cannot_send_terminal_escapes(ada):
    Person.objects.filter(pk=ada.pk).update(name="Ada\x1b]0;owned\x07\u202e")
    Asset.objects.filter(path="/archive/ada.jpg").update(path="/archive/\x1b[2Jada.jpg")
    listing = run("people")
    shown = run("person", str(ada.pk))
    for text in (listing, shown):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "Ada?]0;owned??" in listing and "/archive/?[2Jada.jpg" in shown
    assert "\x1b" not in run("people", "--json") and "\x1b" not in run("person", str(ada.pk), "--json")
    with pytest.raises(CommandError) as raised:
        run("person", "\x1b[31mnobody")
    assert "\x1b" not in str(raised.value)


def test_people_log_prints_the_audit_log_newest_first(user):
    from people import actions

    person = Person.objects.create()
    actions.rename(person, "Ada\x1b[31m", user=user)
    actions.set_hidden(person, True, user=user)
    out = io.StringIO()
    call_command("people", "--log", "5", "--json", stdout=out)
    events = json.loads(out.getvalue())
    assert [event["action"] for event in events] == ["hide", "rename"]
    assert events[1]["user"] == "editor" and events[1]["person"] == person.pk
    out = io.StringIO()
    call_command("people", "--log", "5", stdout=out)
    assert "\x1b" not in out.getvalue() and "rename" in out.getvalue() and "by editor" in out.getvalue()
