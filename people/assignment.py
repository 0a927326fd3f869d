"""New faces find their person as they are stored, by a stricter rule than the full rebuild's.

A face joins a person only when two of the person's faces (or all of them, for a person of one) lie within the
open-set identification threshold; it forms a new person with PEOPLE_MIN_FACES close faces that have none. One
close link is not enough: on LFW, joining on one link at the rebuild's radius put wrong faces in people (BCubed
precision 0.46), and even at the identification threshold 0.92; two links keep it at 0.97 (docs/people.md). The
faces this leaves alone are grouped by the full rebuild (people/rebuild.py), which the watcher starts once the
queue is idle (people/regrouping.py), and meanwhile the review queue asks about those near a named person."""

import logging
from collections import Counter

import numpy as np
from django.conf import settings
from django.db.models import Count

from media_index import calibration, vector_store
from media_index.models import Face

from .models import Person

logger = logging.getLogger(__name__)

# Stored faces asked for per new face: a few more than the density rule needs, so that faces of the same
# photo or frame (never the same person) can be set aside.
NEIGHBOURS = 16


def cluster_radius(model_name: str) -> float:
    """The full rebuild's radius (settings, else the open-set identification threshold)."""
    return settings.PEOPLE_CLUSTER_DISTANCE or calibration.for_model(model_name).identification


def join_radius(model_name: str) -> float:
    """The distance within which a new face counts as close as it is stored: never above the identification
    threshold, since here a few links decide, not a whole group's structure."""
    return min(cluster_radius(model_name), calibration.for_model(model_name).identification)


def assign_new_faces(rows: list[Face], vectors: list[np.ndarray]) -> None:
    """Give each new face a person, inside the transaction that stores them (their vectors already inserted).

    A face joins the person most of its close stored faces belong to when at least two of them are (see the
    module); with no close face that has a person, it and its close faces without one form a new person once they
    are PEOPLE_MIN_FACES. Faces a user took out of a person stay out, and faces that already have a person (kept
    through re-indexing) keep them.
    """
    if not rows or not settings.PEOPLE_ASSIGN_ON_INDEX:
        return
    model_name = rows[0].model_name
    radius = join_radius(model_name)
    hits = vector_store.search_many(vectors, NEIGHBOURS + len(rows))
    close_ids = {hit.face_id for row_hits in hits for hit in row_hits if hit.distance < radius}
    # Faces another worker is storing right now are in Milvus but not yet visible here: they are left out.
    known = {
        face.pk: face
        for face in Face.objects.filter(pk__in=close_ids, model_name=model_name).only(
            "id", "person_id", "person_pinned", "frame_id", "asset_id"
        )
    }
    sizes: dict[int, int] = {}
    for row, row_hits in zip(rows, hits, strict=True):
        if row.person_id or row.person_pinned:  # placed before: by a user, or kept from the face it replaces
            continue
        near = [
            hit for hit in row_hits
            if hit.distance < radius and hit.face_id in known and not _same_picture(row, known[hit.face_id])
        ]  # fmt: skip
        votes: Counter[int] = Counter()
        nearest: dict[int, float] = {}
        for hit in near:
            if person_id := known[hit.face_id].person_id:
                votes[person_id] += 1
                nearest.setdefault(person_id, hit.distance)
        if votes:
            chosen = max(votes, key=lambda person: (votes[person], -nearest[person]))
            if votes[chosen] >= min(2, _size(chosen, sizes)):
                row.person_id, row.person_distance = chosen, nearest[chosen]
                known.get(row.pk, row).person_id = chosen
            continue  # too few links to say: the rebuild or the review queue decides
        free = [hit for hit in near if not known[hit.face_id].person_pinned]
        if len(free) + 1 >= settings.PEOPLE_MIN_FACES:
            person = Person.objects.create()
            row.person_id, row.person_distance = person.pk, free[0].distance
            known.get(row.pk, row).person_id = person.pk
            for hit in free:
                known[hit.face_id].person_id = person.pk
                Face.objects.filter(pk=hit.face_id, person__isnull=True, person_pinned=False).update(
                    person=person, person_distance=hit.distance
                )
            logger.info("person %s formed from face %s and %d close faces", person.pk, row.pk, len(free))
    Face.objects.bulk_update(rows, ["person", "person_distance"])


def _size(person_id: int, sizes: dict[int, int]) -> int:
    """How many faces the person has (counted once per batch)."""
    if person_id not in sizes:
        sizes[person_id] = Face.objects.filter(person_id=person_id).count()
    return sizes[person_id]


def _same_picture(row: Face, other: Face) -> bool:
    """Two faces of one photo, or of one video frame, are never the same person."""
    if row.pk == other.pk:
        return True
    return row.frame_id == other.frame_id if row.frame_id else row.asset_id == other.asset_id


def unify_tracks(track_ids: set[int]) -> None:
    """Every face of a video track that no user placed takes the person most of the track's faces have."""
    for track in track_ids:
        faces = Face.objects.filter(track=track)
        counts = faces.exclude(person=None).values("person").annotate(n=Count("id")).order_by("-n", "person").first()
        if counts:
            faces.filter(person_pinned=False).exclude(person=counts["person"]).update(person=counts["person"])
