"""Users' decisions: each pins what it should, remembers the answer, and leaves one audit event."""

import pytest

from media_index.models import Face
from people import actions
from people.models import PeopleEvent, Person, Verdict
from tests.people.conftest import make_asset, make_face

pytestmark = pytest.mark.django_db

Action = PeopleEvent.Action


def events(action: str) -> list[PeopleEvent]:
    return list(PeopleEvent.objects.filter(action=action))


def test_rename_trims_the_name_and_records_who_renamed_whom(user):
    person = Person.objects.create()
    renamed = actions.rename(person, "  Ada Lovelace \n", user=user)
    assert renamed.name == person.name == Person.objects.get().name == "Ada Lovelace"
    [event] = events(Action.RENAME)
    assert (event.person, event.user, event.person_label) == (person, user, "Ada Lovelace")
    assert event.detail == {"old": "", "new": "Ada Lovelace"}


def test_a_name_without_control_characters_and_a_blank_name_makes_them_unnamed_again():
    person = Person.objects.create(name="Ada")
    assert actions.rename(person, "Ada\x1b[31m").name == "Ada [31m"
    assert actions.rename(person, "   ").name == ""
    assert Person.objects.get().label == f"Person {person.pk}"
    assert len(events(Action.RENAME)) == 2


def test_a_too_long_name_is_refused_and_nothing_is_recorded():
    person = Person.objects.create(name="Ada")
    with pytest.raises(ValueError, match="at most 200 characters"):
        actions.rename(person, "x" * 201)
    assert Person.objects.get().name == "Ada"
    assert not PeopleEvent.objects.exists()


def test_merge_moves_every_face_keeps_pins_and_moves_answers_target_has_not_given(user):
    source, target = Person.objects.create(name="Ada"), Person.objects.create()
    asset = make_asset()
    loose, pinned = make_face(asset, source), make_face(asset, source, pinned=True)
    own = make_face(asset, target)
    Verdict.objects.create(face=loose, person=source, same=False)  # moves: target has no answer for it
    Verdict.objects.create(face=own, person=source, same=False)
    Verdict.objects.create(face=own, person=target, same=True)  # target's answer stands
    source.cover = pinned
    source.save()
    merged = actions.merge(source, target, user=user)
    assert merged.pk == target.pk and merged.name == "Ada" and merged.cover_id == pinned.pk
    assert not Person.objects.filter(pk=source.pk).exists()
    assert set(Face.objects.values_list("pk", "person", "person_pinned")) == {
        (loose.pk, target.pk, False), (pinned.pk, target.pk, True), (own.pk, target.pk, False),
    }  # fmt: skip
    assert set(Verdict.objects.values_list("face", "person", "same")) == {
        (loose.pk, target.pk, False), (own.pk, target.pk, True),
    }  # fmt: skip
    [event] = events(Action.MERGE)
    assert event.person == target and event.user == user
    assert event.detail["source_label"] == "Ada" and event.detail["faces"] == 2


def test_a_named_target_keeps_its_name_and_a_person_cannot_be_merged_into_themselves():
    source, target = Person.objects.create(name="Ada"), Person.objects.create(name="Grace")
    assert actions.merge(source, target).name == "Grace"
    with pytest.raises(ValueError, match="themselves"):
        actions.merge(target, target)
    assert Person.objects.get().pk == target.pk


def test_moving_faces_pins_them_answers_yes_clears_the_cover_and_deletes_an_emptied_unnamed_person(user):
    old, target = Person.objects.create(), Person.objects.create(name="Ada")
    asset = make_asset()
    first, second = make_face(asset, old), make_face(asset, old)
    old.cover = first
    old.save()
    assert actions.move_faces([first.pk, second.pk], target, user=user) == 2
    assert set(Face.objects.values_list("person", "person_pinned")) == {(target.pk, True)}
    assert set(Verdict.objects.values_list("face", "person", "same")) == {
        (first.pk, target.pk, True), (second.pk, target.pk, True),
    }  # fmt: skip
    assert not Person.objects.filter(pk=old.pk).exists()
    [event] = events(Action.MOVE)
    assert event.person == target and event.user == user
    assert event.detail["deleted"] == [old.pk] and event.detail["left"] == [old.pk]


def test_a_named_person_left_without_faces_stays_and_loses_the_cover_that_moved():
    old, target = Person.objects.create(name="Grace"), Person.objects.create(name="Ada")
    face = make_face(make_asset(), old)
    old.cover = face
    old.save()
    assert actions.move_faces([face.pk], target) == 1
    old.refresh_from_db()
    assert old.cover is None


def test_moving_faces_already_pinned_there_changes_nothing():
    target = Person.objects.create(name="Ada")
    face = make_face(make_asset(), target, pinned=True)
    assert actions.move_faces([face.pk], target) == 0


def test_not_this_person_takes_faces_out_pinned_with_a_no_for_the_person_they_left(user):
    person = Person.objects.create(name="Ada")
    asset = make_asset()
    out, stays = make_face(asset, person), make_face(asset, person)
    assert actions.move_faces([out.pk], None, user=user) == 1
    out.refresh_from_db()
    assert (out.person, out.person_pinned) == (None, True)
    assert Face.objects.get(pk=stays.pk).person == person
    assert list(Verdict.objects.values_list("face", "person", "same")) == [(out.pk, person.pk, False)]
    [event] = events(Action.REMOVE)
    assert (event.person, event.person_label, event.user) == (person, "Ada", user)


def test_set_cover_takes_only_a_face_of_theirs(user):
    person, other = Person.objects.create(name="Ada"), Person.objects.create()
    asset = make_asset()
    theirs, not_theirs = make_face(asset, person), make_face(asset, other)
    with pytest.raises(ValueError, match="not one of Ada's faces"):
        actions.set_cover(person, not_theirs.pk)
    actions.set_cover(person, theirs.pk, user=user)
    assert Person.objects.get(pk=person.pk).cover == theirs
    [event] = events(Action.COVER)
    assert event.detail == {"face": theirs.pk, "old": None} and event.user == user


def test_hiding_and_showing_are_recorded(user):
    person = Person.objects.create(name="Ada")
    actions.set_hidden(person, True, user=user)
    assert Person.objects.get().hidden and person.hidden
    actions.set_hidden(person, False)
    assert not Person.objects.get().hidden
    assert [event.action for event in PeopleEvent.objects.order_by("id")] == [Action.HIDE, Action.SHOW]


def test_confirm_pins_faces_to_the_person_and_remembers_the_yes(user):
    person, other = Person.objects.create(name="Ada"), Person.objects.create(name="Grace")
    asset = make_asset()
    weak, unassigned, elsewhere = make_face(asset, person), make_face(asset), make_face(asset, other)
    Verdict.objects.create(face=unassigned, person=person, same=False)  # a new answer replaces an old one
    assert actions.confirm(person, [weak.pk, unassigned.pk, elsewhere.pk], user=user) == 3
    assert set(Face.objects.values_list("person", "person_pinned")) == {(person.pk, True)}
    assert set(Verdict.objects.values_list("face", "same")) == {
        (weak.pk, True),
        (unassigned.pk, True),
        (elsewhere.pk, True),
    }
    [event] = events(Action.CONFIRM)
    assert event.person == person and event.user == user and event.detail["left"] == [other.pk]


def test_reject_remembers_the_no_and_takes_out_only_faces_that_were_theirs(user):
    person, other = Person.objects.create(name="Ada"), Person.objects.create(name="Grace")
    asset = make_asset()
    theirs, unassigned, elsewhere = make_face(asset, person), make_face(asset), make_face(asset, other)
    assert actions.reject(person, [theirs.pk, unassigned.pk, elsewhere.pk], user=user) == 3
    assert set(Verdict.objects.values_list("face", "person", "same")) == {
        (theirs.pk, person.pk, False), (unassigned.pk, person.pk, False), (elsewhere.pk, person.pk, False),
    }  # fmt: skip
    assert set(Face.objects.values_list("pk", "person", "person_pinned")) == {
        (theirs.pk, None, True), (unassigned.pk, None, False), (elsewhere.pk, other.pk, False),
    }  # fmt: skip
    [event] = events(Action.REJECT)
    assert (event.person, event.user, event.detail["changed"]) == (person, user, 1)


def test_the_log_keeps_the_label_of_a_person_deleted_since():
    old, target = Person.objects.create(), Person.objects.create(name="Ada")
    face = make_face(make_asset(), old)
    label = old.label
    actions.move_faces([face.pk], None)
    [event] = events(Action.REMOVE)
    assert event.person is None and event.person_label == label
    assert not Person.objects.filter(pk=old.pk).exists() and target.pk
