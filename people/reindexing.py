"""Users' decisions survive re-indexing: a photo or frame indexed again replaces its faces, and each new face takes
the person, the pin and the answers of the old face in the same place; faces drawn by hand are embedded again."""

from dataclasses import dataclass, field

from django.db.models import QuerySet
from PIL import Image

from media_index import face_engine
from media_index.models import Face

from .models import Person, Verdict

# A new box is the old face when they overlap this much (intersection over union): MTCNN finds the same face of the
# same picture within a few pixels, and two faces of one picture never overlap this much.
SAME_PLACE = 0.5
SAME_FRAME_SECONDS = 1e-3


@dataclass
class Remembered:
    """What an old face carried that indexing cannot find again by itself."""

    box: tuple[float, float, float, float]
    frame_time: float | None  # a video frame's: the frame is found again by its time, whatever its index
    person_id: int | None
    pinned: bool
    added_by_hand: bool
    verdicts: list[tuple[int, bool]] = field(default_factory=list)


def remember(faces: QuerySet[Face]) -> list[Remembered]:
    """The faces about to be replaced that a user or clustering decided something about."""
    decided = faces.exclude(person=None, person_pinned=False, added_by_hand=False, verdicts=None).distinct()
    remembered = []
    for face in decided.select_related("frame").prefetch_related("verdicts"):
        remembered.append(
            Remembered(
                box=(face.left, face.top, face.right, face.bottom),
                frame_time=face.frame.timestamp if face.frame else None,
                person_id=face.person_id,
                pinned=face.person_pinned,
                added_by_hand=face.added_by_hand,
                verdicts=[(verdict.person_id, verdict.same) for verdict in face.verdicts.all()],
            )
        )
    return remembered


def drawn_again(
    photo: Image.Image, remembered: list[Remembered], detected: list[face_engine.Face]
) -> list[face_engine.Face]:
    """The faces users drew on this photo that the detector missed again, cropped and embedded again."""
    boxes = [
        (face.box, 1.0) for face in remembered
        if face.added_by_hand and all(overlap(face.box, tuple(found.box)) < SAME_PLACE for found in detected)
    ]  # fmt: skip
    return face_engine.embed_faces([photo], [boxes])[0] if boxes else []


def restore(rows: list[Face], remembered: list[Remembered]) -> None:
    """Give each new face what the old face in the same place (same frame, overlapping box) carried."""
    if not remembered:
        return
    living = set(Person.objects.filter(pk__in={face.person_id for face in remembered}).values_list("pk", flat=True))
    unclaimed = list(remembered)
    changed, verdicts = [], []
    for row in rows:
        frame_time = row.frame.timestamp if row.frame else None
        match = max(
            (old for old in unclaimed if _same_frame(old.frame_time, frame_time)),
            key=lambda old: overlap(old.box, tuple(row.box)),
            default=None,
        )
        if match is None or overlap(match.box, tuple(row.box)) < SAME_PLACE:
            continue
        unclaimed.remove(match)
        row.person_id = match.person_id if match.person_id in living else None
        row.person_pinned, row.added_by_hand = match.pinned, match.added_by_hand
        changed.append(row)
        verdicts += [
            Verdict(face=row, person_id=person, same=same) for person, same in match.verdicts if person in living
        ]
    Face.objects.bulk_update(changed, ["person", "person_pinned", "added_by_hand"])
    Verdict.objects.bulk_create(verdicts, ignore_conflicts=True)


def _same_frame(time: float | None, other: float | None) -> bool:
    """Whether two faces are of the same photo (no frame), or of the same video frame (times a millisecond apart
    at most: two frames never are, and a time may be rounded on its way through the database)."""
    if time is None or other is None:
        return time is None and other is None
    return abs(time - other) < SAME_FRAME_SECONDS


def overlap(box: tuple[float, ...], other: tuple[float, ...]) -> float:
    """Intersection over union of two boxes (left, top, right, bottom)."""
    width = min(box[2], other[2]) - max(box[0], other[0])
    height = min(box[3], other[3]) - max(box[1], other[1])
    if width <= 0 or height <= 0:
        return 0.0
    shared = width * height
    area = (box[2] - box[0]) * (box[3] - box[1]) + (other[2] - other[0]) * (other[3] - other[1]) - shared
    return shared / area if area > 0 else 0.0
