"""People as the command line prints them: plain records for JSON, and text a terminal cannot be tricked by."""

import unicodedata

from .models import Person
from .queries import Appearances


def printable(text: str) -> str:
    """The text with control and formatting characters (escapes, bidirectional overrides, line breaks) shown as
    `?`: names and file names come from users, and must not drive the terminal."""
    return "".join("?" if _unsafe(unicodedata.category(char)) else char for char in text)


def _unsafe(category: str) -> bool:
    return category[0] == "C" or category in ("Zl", "Zp")


def summary_record(person: Person) -> dict:
    """One row of people_summary() (an annotated Person) as JSON-ready values."""
    latest = getattr(person, "latest", None)
    return {
        "id": person.pk,
        "name": person.name,
        "label": person.label,
        "hidden": person.hidden,
        "faces": getattr(person, "face_count", 0),
        "photos": getattr(person, "photo_count", 0),
        "moments": getattr(person, "moment_count", 0),
        "latest": latest.isoformat() if latest else None,
        "cover_face": getattr(person, "cover_face_id", None),
    }


def appearances_record(appearances: Appearances) -> dict:
    """A person's photos and moments as JSON-ready values (paths in full, times in seconds and ISO dates)."""
    return {
        "photos": [
            {
                "asset": photo.asset.pk,
                "path": photo.asset.path,
                "date": photo.date.isoformat(),
                "face": photo.face.pk,
                "box": [round(edge, 1) for edge in photo.face.box],
            }
            for photo in appearances.photos
        ],
        "moments": [
            {
                "asset": moment.asset.pk,
                "path": moment.asset.path,
                "start": moment.start,
                "end": moment.end,
                "date": moment.date.isoformat(),
                "face": moment.face.pk,
            }
            for moment in appearances.moments
        ],  # fmt: skip
    }
