"""Search by photo: the faces in a query photo, and the stored faces nearest to the one chosen."""

import logging
import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from PIL import Image

from media_index import face_engine, vector_store
from media_index.models import Asset, Face
from media_index.services import open_photo

logger = logging.getLogger(__name__)

QUERY_MAX_AGE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class QueryFace:
    """A face found in the query photo; box is (x1, y1, x2, y2) in pixels of the upright photo."""

    box: tuple[float, float, float, float]
    probability: float


@dataclass(frozen=True)
class Match:
    """A stored face near the query face: distance is L2 between unit embeddings; score is 0-100."""

    face: Face
    distance: float
    score: float

    @property
    def asset(self) -> Asset:
        return self.face.asset


@dataclass(frozen=True)
class SearchResult:
    faces: list[QueryFace]
    chosen: int | None
    matches: list[Match]
    width: int
    height: int


def score_for(distance: float) -> float:
    """Map an L2 distance to 0-100: 50 at MATCH_DISTANCE, about 90 for a clear same-person match."""
    return round(100.0 / (1.0 + math.exp((distance - settings.MATCH_DISTANCE) / 0.1)), 1)


def search_image(image: Image.Image, face_index: int | None = None, top_k: int | None = None) -> SearchResult:
    """Find the faces in an upright RGB image and the stored faces nearest to one of them.

    The largest face is searched unless face_index picks another; a photo with no face gives no matches.
    """
    faces = face_engine.find_faces(image)
    query_faces = [QueryFace(tuple(face.box), face.probability) for face in faces]
    if not faces:
        return SearchResult(query_faces, None, [], image.width, image.height)
    chosen = face_index if face_index is not None and 0 <= face_index < len(faces) else 0
    hits = vector_store.search(faces[chosen].embedding, top_k or settings.SEARCH_TOP_K)
    stored = Face.objects.select_related("asset").in_bulk([hit.face_id for hit in hits])
    # A vector whose Face row is gone (deleted meanwhile) is skipped rather than shown broken.
    matches = [
        Match(stored[hit.face_id], hit.distance, score_for(hit.distance)) for hit in hits if hit.face_id in stored
    ]
    logger.info("searched face %d of %d: %d matches", chosen, len(faces), len(matches))
    return SearchResult(query_faces, chosen, matches, image.width, image.height)


def search_photo(path: Path, face_index: int | None = None, top_k: int | None = None) -> SearchResult:
    """search_image for a photo file (raises media_index.services.UnreadablePhoto for a bad one)."""
    return search_image(open_photo(path), face_index, top_k)


def save_query(upload) -> str:
    """Keep an uploaded query photo, upright, as JPEG, so its faces can be shown and picked; returns its id."""
    image = open_photo(upload)
    settings.QUERY_DIR.mkdir(parents=True, exist_ok=True)
    prune_queries()
    query_id = uuid.uuid4().hex
    image.save(query_path(query_id), format="JPEG", quality=92)
    return query_id


def query_path(query_id: str) -> Path:
    """Where a query photo is kept; query_id is a hex uuid (the URL pattern only lets those through)."""
    return settings.QUERY_DIR / f"{query_id}.jpg"


def prune_queries() -> None:
    """Query photos are kept for a day, long enough to pick other faces and come back."""
    cutoff = time.time() - QUERY_MAX_AGE_SECONDS
    for old in settings.QUERY_DIR.glob("*.jpg"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
