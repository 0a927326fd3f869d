"""What the people pages show and which faces a request may act on, kept out of the views so they stay thin."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from media_index.models import Asset, Face

from . import queries
from .models import Person

logger = logging.getLogger(__name__)

# Files listed by name on the page that asks before forgetting someone; more are counted.
FILES_LISTED = 200


class NotTheirs(ValueError):
    """A face that is not the person's, where only their faces may be chosen; the message says which."""


@dataclass(frozen=True)
class Tile:
    """One photo, or one video moment (start and end in seconds), of a person; face: their clearest face in it."""

    asset: Asset
    face: Face
    date: datetime
    start: float | None = None
    end: float | None = None

    @property
    def is_moment(self) -> bool:
        return self.start is not None


def timeline(person: Person) -> list[Tile]:
    """Every photo and video moment of the person, oldest first (a video's moments in their order)."""
    found = queries.person_appearances(person)
    tiles = [Tile(photo.asset, photo.face, photo.date) for photo in found.photos]
    tiles += [Tile(moment.asset, moment.face, moment.date, moment.start, moment.end) for moment in found.moments]
    return sorted(tiles, key=lambda tile: (tile.date, tile.asset.pk, tile.start or 0.0))


def cover_face(person: Person) -> Face | None:
    """The face shown for the person: the one chosen, else their clearest."""
    if person.cover_id and (cover := Face.objects.filter(pk=person.cover_id, person=person).first()):
        return cover
    return person.faces.order_by("-probability", "pk").first()


def own_faces(person: Person, face_ids: list[int]) -> list[int]:
    """The person's faces a choice of tiles stands for: each face chosen, with the person's other faces of its photo
    or video track (a tile shows one face of them).

    Raises Face.DoesNotExist naming the ids that are no face, and NotTheirs for a face that is not the person's.
    """
    owners = dict(Face.objects.filter(pk__in=face_ids).values_list("pk", "person_id"))
    unknown = sorted(set(face_ids) - owners.keys())
    if unknown:
        raise Face.DoesNotExist(f"No face has the number {', '.join(map(str, unknown))}.")
    others = sorted(pk for pk, owner in owners.items() if owner != person.pk)
    if others:
        raise NotTheirs(
            f"Face {', '.join(map(str, others))} is not one of {person.label}'s faces: choose faces on their own page."
        )
    chosen = Face.objects.filter(pk__in=face_ids)
    mates = Face.objects.filter(person=person).filter(
        Q(track__in=chosen.exclude(track=None).values("track"))
        | Q(frame=None, asset__in=chosen.filter(frame=None).values("asset"))
    )
    return sorted(set(face_ids) | set(mates.values_list("pk", flat=True)))


def forget_preview(person: Person) -> dict:
    """What forgetting the person deletes: their faces, crops and vectors, and which files the user may delete too."""
    faces = person.faces.all()
    per_kind = dict(
        faces.values("asset__kind").annotate(assets=Count("asset", distinct=True)).values_list("asset__kind", "assets")
    )
    videos = faces.exclude(frame=None)
    moments = videos.exclude(track=None).values("track").distinct().count() + videos.filter(track=None).count()
    assets = Asset.objects.filter(pk__in=faces.values("asset")).order_by("path")
    listed = list(assets[:FILES_LISTED])
    return {
        "faces": faces.count(),
        "crops": faces.exclude(crop="").count(),
        "photos": per_kind.get(Asset.Kind.IMAGE, 0),
        "videos": per_kind.get(Asset.Kind.VIDEO, 0),
        "moments": moments,
        "files": listed,
        "more_files": max(assets.count() - len(listed), 0),
    }


def matching_people(text: str) -> QuerySet[Person]:
    """Named people whose name holds the text, case aside, hidden ones too (a name search is deliberate)."""
    return Person.objects.exclude(name="").filter(name__icontains=text.strip()).order_by("name", "pk")
