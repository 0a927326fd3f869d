"""New faces find their person as they are stored: their nearest stored faces vote, and the density rule of
people/grouping.py forms a new person from enough mutually close faces that have none."""

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
    """The distance within which two faces count as close (settings, else the open-set identification threshold)."""
    return settings.PEOPLE_CLUSTER_DISTANCE or calibration.for_model(model_name).identification


def assign_new_faces(rows: list[Face], vectors: list[np.ndarray]) -> None:
    """Give each new face a person, inside the transaction that stores them (their vectors already inserted).

    A face joins the person most of its close stored faces belong to; with none, it and its close faces without a
    person form a new person once they are PEOPLE_MIN_FACES. Faces a user took out of a person stay out, and faces
    that already have a person (kept through re-indexing) keep them.
    """
    if not rows or not settings.PEOPLE_ASSIGN_ON_INDEX:
        return
    model_name = rows[0].model_name
    radius = cluster_radius(model_name)
    hits = vector_store.search_many(vectors, NEIGHBOURS + len(rows))
    close_ids = {hit.face_id for row_hits in hits for hit in row_hits if hit.distance < radius}
    # Faces another worker is storing right now are in Milvus but not yet visible here: they are left out.
    known = {
        face.pk: face
        for face in Face.objects.filter(pk__in=close_ids, model_name=model_name).only(
            "id", "person_id", "person_pinned", "frame_id", "asset_id"
        )
    }
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
            row.person_id = max(votes, key=lambda person: (votes[person], -nearest[person]))
            row.person_distance = nearest[row.person_id]
            known.get(row.pk, row).person_id = row.person_id
            continue
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
