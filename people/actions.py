"""Users' decisions about people: each is one transaction that leaves one PeopleEvent (people/audit.py).

Pages, the admin and commands call these and nothing else to change people, so every change is audited.
"""

import logging
import unicodedata
from collections.abc import Iterable

from django.db import transaction

from media_index.models import Face

from . import audit
from .erasure import forget
from .models import PeopleEvent, Person, Verdict

logger = logging.getLogger(__name__)

__all__ = ["confirm", "forget", "merge", "move_faces", "reject", "rename", "set_cover", "set_hidden"]

NAME_MAX_CHARS: int = Person._meta.get_field("name").max_length or 200
Action = PeopleEvent.Action


def clean_name(name: str) -> str:
    """A name as stored: one line without control characters, trimmed; ValueError when it is too long."""
    name = "".join(" " if unicodedata.category(char) == "Cc" else char for char in name).strip()
    if len(name) > NAME_MAX_CHARS:
        raise ValueError(f"A name has at most {NAME_MAX_CHARS} characters; this one has {len(name)}. Shorten it.")
    return name


def rename(person: Person, name: str, *, user=None) -> Person:
    """Give the person a name (a blank one makes them unnamed again)."""
    name = clean_name(name)
    with transaction.atomic():
        person = _locked(person)
        old = person.name
        person.name = name
        person.save(update_fields=["name", "updated_at"])
        audit.record(Action.RENAME, person, user, {"old": old, "new": name})
    return person


def merge(source: Person, target: Person, *, user=None) -> Person:
    """Source's faces and answers go to target and source is deleted: the user says they are one person."""
    if source.pk == target.pk:
        raise ValueError("A person cannot be merged into themselves; choose another person.")
    with transaction.atomic():
        source, target = _locked(source), _locked(target)
        source_label = source.label
        moved = Face.objects.filter(person=source).update(person=target)
        # Where both have an answer about the same face, target's stands.
        answered = Verdict.objects.filter(person=target).values("face_id")
        verdicts = Verdict.objects.filter(person=source).exclude(face_id__in=answered).update(person=target)
        fields = ["updated_at"]
        if not target.name and source.name:
            target.name = source.name
            fields.append("name")
        if target.cover_id is None and source.cover_id is not None:
            target.cover_id = source.cover_id
            fields.append("cover")
        target.save(update_fields=fields)
        detail = {"source": source.pk, "source_label": source_label, "faces": moved, "verdicts": verdicts}
        audit.record(Action.MERGE, target, user, detail | {"name": target.name})
        source.delete()
    logger.info("person %r merged into person %s: %d faces", source_label, target.pk, moved)
    return target


def move_faces(face_ids: list[int], target: Person | None, *, user=None) -> int:
    """Put these faces with target (pinned), or with target None take them out of their person ("not this
    person"); returns how many changed."""
    with transaction.atomic():
        if target is None:
            return _take_out(face_ids, None, user, Action.REMOVE)
        return _give(face_ids, _locked(target), user, Action.MOVE)


def confirm(person: Person, face_ids: list[int], *, user=None) -> int:
    """The review queue's "yes": these faces are this person (pinned, never asked again); returns how many changed
    (faces already pinned to them do not count)."""
    with transaction.atomic():
        return _give(face_ids, _locked(person), user, Action.CONFIRM)


def reject(person: Person, face_ids: list[int], *, user=None) -> int:
    """The review queue's "no": these faces are not this person (never suggested again; taken out if theirs);
    returns how many faces were answered."""
    with transaction.atomic():
        return _take_out(face_ids, _locked(person), user, Action.REJECT)


def set_cover(person: Person, face_id: int, *, user=None) -> None:
    """Show this face of theirs for the person."""
    with transaction.atomic():
        person = _locked(person)
        if not Face.objects.filter(pk=face_id, person=person).exists():
            raise ValueError(f"Face {face_id} is not one of {person.label}'s faces; choose one of theirs.")
        old = person.cover_id
        person.cover_id = face_id
        person.save(update_fields=["cover", "updated_at"])
        audit.record(Action.COVER, person, user, {"face": face_id, "old": old})


def set_hidden(person: Person, hidden: bool, *, user=None) -> None:
    """Leave the person off the people page (or show them again)."""
    with transaction.atomic():
        person = _locked(person)
        person.hidden = bool(hidden)
        person.save(update_fields=["hidden", "updated_at"])
        audit.record(Action.HIDE if hidden else Action.SHOW, person, user)


def _locked(person: Person) -> Person:
    """The caller's person, read again with its row locked for this transaction (so the caller sees the change too;
    a person deleted meanwhile raises Person.DoesNotExist)."""
    person.refresh_from_db(from_queryset=Person.objects.select_for_update())
    return person


def _give(face_ids: Iterable[int], target: Person, user, action: str) -> int:
    """Pin the faces to target with a "yes" answer; the people they left lose them (see _emptied)."""
    faces = list(Face.objects.select_for_update().filter(pk__in=set(face_ids)).only("id", "person_id", "person_pinned"))
    changed = [face for face in faces if face.person_id != target.pk or not face.person_pinned]
    left = {face.person_id for face in changed if face.person_id is not None and face.person_id != target.pk}
    ids = [face.pk for face in faces]
    Face.objects.filter(pk__in=[face.pk for face in changed]).update(person=target, person_pinned=True)
    _answer(ids, target.pk, same=True)
    emptied = _emptied(left, [face.pk for face in changed])
    detail = {"faces": ids, "changed": len(changed), "left": sorted(left), "deleted": emptied}
    audit.record(action, target, user, detail)
    _delete_emptied(emptied)
    return len(changed)


def _take_out(face_ids: Iterable[int], person: Person | None, user, action: str) -> int:
    """Take the faces out of their person (only of `person` when given), pinned out, with a "no" answer for it."""
    faces = list(Face.objects.select_for_update().filter(pk__in=set(face_ids)).only("id", "person_id", "person_pinned"))
    if person is not None:
        _answer([face.pk for face in faces], person.pk, same=False)
        leaving = [face for face in faces if face.person_id == person.pk]
    else:
        leaving = [face for face in faces if face.person_id is not None or not face.person_pinned]
        for person_id in {face.person_id for face in leaving if face.person_id is not None}:
            _answer([face.pk for face in leaving if face.person_id == person_id], person_id, same=False)
    left = {face.person_id for face in leaving if face.person_id is not None}
    Face.objects.filter(pk__in=[face.pk for face in leaving]).update(
        person=None, person_pinned=True, person_distance=None
    )
    subject = person if person is not None else _only_person(left)
    label = None if subject is not None or not left else "several people"
    emptied = _emptied(left, [face.pk for face in leaving])
    detail = {"faces": [face.pk for face in faces], "changed": len(leaving), "left": sorted(left), "deleted": emptied}
    audit.record(action, subject, user, detail, label=label)
    _delete_emptied(emptied)
    return len(leaving) if person is None else len(faces)


def _answer(face_ids: list[int], person_id: int, same: bool) -> None:
    """Remember the user's answer about these faces and this person (a new answer replaces an old one)."""
    if face_ids:
        Verdict.objects.bulk_create(
            [Verdict(face_id=face_id, person_id=person_id, same=same) for face_id in face_ids],
            update_conflicts=True, unique_fields=["face", "person"], update_fields=["same"],
        )  # fmt: skip


def _only_person(person_ids: set[int]) -> Person | None:
    return Person.objects.filter(pk=next(iter(person_ids))).first() if len(person_ids) == 1 else None


def _emptied(person_ids: set[int], face_ids: list[int]) -> list[int]:
    """The people these faces left: a cover that left is cleared; returns the unnamed ones left with no face."""
    if not person_ids:
        return []
    Person.objects.filter(pk__in=person_ids, cover_id__in=face_ids).update(cover=None)
    emptied = Person.objects.filter(pk__in=person_ids, name="", faces__isnull=True)
    return sorted(emptied.values_list("pk", flat=True))


def _delete_emptied(person_ids: list[int]) -> None:
    """Delete unnamed people with no face (after the event naming them is written: it keeps their label)."""
    if person_ids:
        Person.objects.filter(pk__in=person_ids).delete()
        logger.info("people %s had no face left and were deleted", person_ids)
