"""The read side of people: the people page's rows and a person's photos and moments, in a few queries."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    Func,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.db.models.query import ModelIterable

from media_index.models import Asset, Face, Track

from .models import Person

logger = logging.getLogger(__name__)


class UnixTime(Func):
    """Unix seconds (Asset.taken_at or mtime) as a datetime in UTC."""

    output_field = DateTimeField()
    function = "to_timestamp"  # PostgreSQL

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="datetime(%(expressions)s, 'unixepoch')", **extra_context)


def _per_person(faces: QuerySet, aggregate) -> Subquery:
    """One number per person from their faces, as a correlated subquery (an index range scan on Face.person)."""
    grouped = faces.filter(person=OuterRef("pk")).order_by().values("person").annotate(value=aggregate)
    return Subquery(grouped.values("value"))


def _details() -> dict:
    """The annotations only the rows shown need (costly for every person: see _WithDetails)."""
    faces = Face.objects.all()
    best = faces.filter(person=OuterRef("pk")).order_by("-probability", "pk")
    chosen = Face.objects.filter(pk=OuterRef("cover_id"))
    return {
        "photo_count": Coalesce(_per_person(faces.filter(frame__isnull=True), Count("asset", distinct=True)), 0),
        # A video face without a track (indexed before tracks existed) is a moment of its own.
        "moment_count": Coalesce(
            _per_person(faces.filter(frame__isnull=False), Count(Coalesce("track", "pk"), distinct=True)), 0
        ),
        "latest": UnixTime(_per_person(faces, Max(Coalesce("asset__taken_at", "asset__mtime")))),
        "cover_face_id": Coalesce(F("cover_id"), Subquery(best.values("pk")[:1])),
        "cover_crop": Coalesce(Subquery(chosen.values("crop")[:1]), Subquery(best.values("crop")[:1])),
    }


class _WithDetails(ModelIterable):
    """People rows, then one more query for the details of just those rows.

    SQLite computes every column of every row before it sorts and cuts a page, so with the details in the sorted
    query a page's cost grew with the number of people (too slow at 10,000); sorted on the face count alone and
    then detailed, only the cheap sort grows.
    """

    def __iter__(self):
        people = list(super().__iter__())
        details = _details()
        rows = Person.objects.filter(pk__in=[person.pk for person in people]).annotate(**details)
        found = {row["pk"]: row for row in rows.values("pk", *details)}
        for person in people:
            for name, value in found.get(person.pk, {}).items():
                if name != "pk":
                    setattr(person, name, value)
            yield person


def people_summary(include_hidden: bool = False) -> QuerySet[Person]:
    """People for the people page, each annotated with face_count, photo_count (photos they are in), moment_count
    (video tracks), latest (the newest date: when taken, else the file's time), cover_face_id and cover_crop (the
    chosen cover, else their clearest face); named people first by name, then unnamed ones by face count.

    Slice it to paginate: it costs two queries whatever the page. Filter and order on face_count and name only
    (the other numbers are fetched for the rows shown, after the page is cut).
    """
    people = Person.objects.all() if include_hidden else Person.objects.filter(hidden=False)
    people = people.annotate(
        face_count=Coalesce(_per_person(Face.objects.all(), Count("pk")), 0),
        unnamed=Case(When(name="", then=Value(1)), default=Value(0), output_field=IntegerField()),
    ).order_by("unnamed", "name", "-face_count", "pk")
    people._iterable_class = _WithDetails
    return people


def find_people(name_or_id: str) -> list[Person]:
    """The people a user means by a name (any case) or an id: none, one, or several with the same name."""
    text = name_or_id.strip()
    query = Q(name__iexact=text) if text else Q(pk__in=[])
    if text.isdigit():
        query |= Q(pk=int(text))
    return list(Person.objects.filter(query).order_by("pk"))


@dataclass(frozen=True)
class PhotoAppearance:
    """A photo the person is in; face: their clearest face in it."""

    asset: Asset
    face: Face
    date: datetime


@dataclass(frozen=True)
class Moment:
    """A stretch of a video the person is on screen: start and end in seconds; face: their clearest face in it."""

    asset: Asset
    start: float
    end: float
    face: Face
    date: datetime


@dataclass(frozen=True)
class Appearances:
    photos: list[PhotoAppearance]
    moments: list[Moment]


def person_appearances(person: Person) -> Appearances:
    """Every photo and video moment of the person, each list oldest first (when taken, else the file's time)."""
    faces = (
        Face.objects.filter(person=person)
        .select_related("asset", "frame")
        .order_by(Coalesce("asset__taken_at", "asset__mtime"), "asset_id", "-probability", "pk")
    )
    # Faces come clearest first within each file, so the first face seen of a photo or a track is its best.
    best: dict[int, Face] = {}
    spans: dict[tuple[int, int], tuple[float, float, Face]] = {}
    for face in faces:
        frame = face.frame
        if frame is None:
            best.setdefault(face.asset_id, face)
            continue
        key = (face.asset_id, face.track or face.pk)
        start, end, clearest = spans.get(key, (frame.timestamp, frame.timestamp, face))
        spans[key] = (min(start, frame.timestamp), max(end, frame.timestamp), clearest)
    # A track's span (media_index/spans.py) runs from when the person comes on screen to when they leave.
    tracked = Track.objects.in_bulk([track for _, track in spans])
    for key, (_, _, clearest) in spans.items():
        if (track := tracked.get(key[1])) is not None and track.asset_id == key[0]:
            spans[key] = (track.start, track.end, clearest)
    photos = [PhotoAppearance(face.asset, face, _date(face.asset)) for face in best.values()]
    moments = [Moment(face.asset, start, end, face, _date(face.asset)) for start, end, face in spans.values()]
    moments.sort(key=lambda moment: (moment.date, moment.asset.pk, moment.start))
    return Appearances(photos=photos, moments=moments)


def _date(asset: Asset) -> datetime:
    """When the photo was taken (EXIF), else the file's time."""
    return datetime.fromtimestamp(asset.date, tz=UTC)
