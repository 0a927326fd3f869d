"""The review queue "Is this <name>?": faces near a person that no user has placed, nearest first.

A suggestion is a stored face that is
1. near one of the person's faces (up to QUERY_FACES of theirs, asked of Milvus in one request),
2. within the face model's open-set identification threshold (a stranger gets a name at most 5% of the time),
3. without a person, or weakly with another unnamed one (its person_distance is above its distance to this person),
4. not pinned by a user (placed with someone, or taken out), and without any answer (Verdict) about this person,
5. not in a photo or video frame where the person already is (one picture never shows a person twice).
A video track shows once, at its nearest face; an answer about it is an answer about the track's open faces.
"""

import logging
from dataclasses import dataclass

from django.db.models import Case, F, Q, QuerySet, Value, When

from media_index import calibration, vector_store
from media_index.models import Face

from .models import Person, Verdict

logger = logging.getLogger(__name__)

# The person's faces whose neighbours are looked for: their cover, the ones users placed, then the closest.
QUERY_FACES = 10
# Stored faces asked for per face of theirs: their own faces come back first, so well more than a screenful.
NEIGHBOURS = 200
# Suggestions shown at once: a screenful to confirm or reject together.
PAGE = 48
# Named people looked at per visit of the queue's entry before it says where to go on.
SCAN = 50


@dataclass(frozen=True)
class Suggestion:
    """A face that may be the person: distance is the L2 distance to the nearest of their faces asked about."""

    face: Face
    distance: float


class NotDecidable(ValueError):
    """A face the review may not answer about (a user placed it with someone else); the message says which."""


def suggestions(person: Person, limit: int = PAGE) -> list[Suggestion]:
    """The faces to ask about, nearest first (see the module's docstring)."""
    cover_first = Case(When(pk=person.cover_id or 0, then=Value(0)), default=Value(1))
    own = list(
        person.faces.order_by(
            cover_first, "-person_pinned", F("person_distance").asc(nulls_last=True), "pk"
        ).values_list("pk", "model_name")[:QUERY_FACES]
    )
    if not own:
        return []
    model_name = own[0][1]
    vectors = vector_store.vectors_of([pk for pk, name in own if name == model_name])
    if not vectors:
        return []
    scale = calibration.for_model(model_name)
    nearest: dict[int, float] = {}
    for hits in vector_store.search_many(list(vectors.values()), NEIGHBOURS):
        for hit in hits:
            if scale.identifies(hit.distance) and hit.distance < nearest.get(hit.face_id, 2.0 + 1e-6):
                nearest[hit.face_id] = hit.distance
    candidates = open_faces(person).filter(pk__in=list(nearest), model_name=model_name)
    found: dict[int, Suggestion] = {}
    for face in candidates.select_related("asset", "frame", "person"):
        distance = nearest[face.pk]
        if face.person_id is not None and face.person_distance is not None and face.person_distance <= distance:
            continue  # closer to the unnamed person it is with than to this one
        key = face.track or face.pk  # one tile per video track
        if key not in found or distance < found[key].distance:
            found[key] = Suggestion(face, distance)
    ranked = sorted(found.values(), key=lambda suggestion: (suggestion.distance, suggestion.face.pk))
    logger.info("review of person %s: %d suggestions from %d near faces", person.pk, len(ranked), len(nearest))
    return ranked[:limit]


def open_faces(person: Person) -> QuerySet[Face]:
    """Faces the review may ask about for this person: nobody's, or an unnamed person's, that no user placed or
    answered about, outside the pictures where the person already is.

    A face with another unnamed person and no person_distance counts as weakly placed (nothing says it is close).
    """
    theirs = Face.objects.filter(person=person)
    return (
        Face.objects.filter(person_pinned=False)
        .filter(Q(person=None) | Q(person__name=""))
        .exclude(person=person)
        .exclude(pk__in=Verdict.objects.filter(person=person).values("face_id"))
        .exclude(frame=None, asset__in=theirs.filter(frame=None).values("asset_id"))
        .exclude(frame__in=theirs.exclude(frame=None).values("frame_id"))
    )


def decidable(person: Person, face_ids: list[int]) -> list[int]:
    """The faces an answer about the person covers: those asked, with the open faces of their video tracks.

    Raises Face.DoesNotExist naming the ids that are no face, and NotDecidable for a face a user placed with
    someone else (it is moved from that person's page, not answered about here).
    """
    faces = {face.pk: face for face in Face.objects.filter(pk__in=face_ids).only("id", "person", "person_pinned")}
    unknown = sorted(set(face_ids) - faces.keys())
    if unknown:
        raise Face.DoesNotExist(f"No face has the number {', '.join(map(str, unknown))}.")
    placed = sorted(pk for pk, face in faces.items() if face.person_pinned and face.person_id not in (None, person.pk))
    if placed:
        raise NotDecidable(
            f"A user placed face {', '.join(map(str, placed))} with another person: move it from that person's page."
        )
    tracks = Face.objects.filter(pk__in=face_ids).exclude(track=None).values("track")
    mates = open_faces(person).filter(track__in=tracks).values_list("pk", flat=True)
    return sorted(set(face_ids) | set(mates))


def next_person(after: int = 0, scan: int = SCAN) -> tuple[Person | None, int | None]:
    """The first named person after this id with something to review, or (None, the last id looked at) when the
    next `scan` named people have nothing: (None, None) means there are no more."""
    last = None
    for person in Person.objects.exclude(name="").filter(pk__gt=after).order_by("pk")[:scan]:
        if suggestions(person, limit=1):
            return person, person.pk
        last = person.pk
    more = last is not None and Person.objects.exclude(name="").filter(pk__gt=last).exists()
    return None, last if more else None
