"""Search by photo: the faces in a query photo, and the stored faces nearest to the one chosen."""

import logging
import os
import re
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
from django.conf import settings
from django.core.cache import cache
from PIL import Image

from media_index import calibration, face_engine, spans, vector_store
from media_index.imaging import UnreadablePhoto, open_photo
from media_index.models import Asset, Face, Frame, Track
from people.models import Person

logger = logging.getLogger(__name__)
T = TypeVar("T")

QUERY_MAX_AGE_SECONDS = 24 * 3600
QUERY_ID = re.compile(r"[0-9a-f]{32}")


class QueryExpired(LookupError):
    """The query photo is gone (pruned after a day) or cannot be read: upload it again."""


@dataclass(frozen=True)
class QueryFace:
    """A face found in the query photo; box is (x1, y1, x2, y2) in pixels of the upright photo, embedding as
    face_engine.Face's."""

    box: tuple[float, float, float, float]
    probability: float
    embedding: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class Moment:
    """A stretch of video where the person is on screen: seconds from the first frame, and its best frame."""

    start: float
    end: float
    distance: float
    score: float
    frame: Frame
    same_person: bool


@dataclass(frozen=True)
class Match:
    """A stored photo face, or a video at its best face, near the query face (L2 distance, score 0-100).

    person: the named person that face belongs to, when it is near enough to give their name (identification).
    """

    face: Face
    distance: float
    score: float
    same_person: bool
    moments: tuple[Moment, ...] = ()
    person: Person | None = None

    @property
    def asset(self) -> Asset:
        return self.face.asset

    @property
    def best_moment(self) -> Moment | None:
        return min(self.moments, key=lambda moment: moment.distance, default=None)


@dataclass(frozen=True)
class SearchResult:
    faces: list[QueryFace]
    chosen: int | None
    matches: list[Match]
    width: int
    height: int


# A video holds many faces of one person, so more faces are fetched than results shown.
CANDIDATES_PER_RESULT = 10
# Spans of one person at most this far apart (seconds) are one moment: a face missed in one sampled frame breaks its
# track in two, whose refined edges stop half a probe interval either side of that frame (media_index/spans.py).
SPAN_JOIN = 2 / spans.REFINE_FPS
# Named faces are counted at most this often (seconds): the naming threshold moves with the log of their number.
NAMED_FACES_CACHE_SECONDS = 60


def search_image(
    image: Image.Image, face_index: int | None = None, top_k: int | None = None, kind: str | None = None
) -> SearchResult:
    """Find the faces in an upright RGB image and the stored photos and videos nearest to one of them.

    The largest face is searched unless face_index picks another; a photo with no face gives no matches.
    kind ("image" or "video") limits the results to photos or to videos.
    """
    return search_faces(find_query_faces(image), image.width, image.height, face_index, top_k, kind)


def search_faces(
    faces: list[QueryFace],
    width: int,
    height: int,
    face_index: int | None = None,
    top_k: int | None = None,
    kind: str | None = None,
) -> SearchResult:
    """search_image with the query's faces already found (width and height are the photo's)."""
    if not faces:
        return SearchResult(faces, None, [], width, height)
    chosen = face_index if face_index is not None and 0 <= face_index < len(faces) else 0
    matches = find_matches(faces[chosen].embedding, top_k or settings.SEARCH_TOP_K, kind)
    logger.info("searched face %d of %d: %d matches", chosen, len(faces), len(matches))
    return SearchResult(faces, chosen, matches, width, height)


def find_query_faces(image: Image.Image) -> list[QueryFace]:
    """A query photo's faces, largest first, at most QUERY_MAX_FACES: all are detected, only those kept embedded."""
    detections = face_engine.detect_faces([image])[0]
    kept = detections[: settings.QUERY_MAX_FACES]
    if len(detections) > len(kept):
        logger.info("query photo has %d faces: the %d largest are kept", len(detections), len(kept))
    faces = face_engine.embed_faces([image], [kept])[0]
    return [QueryFace(face.box, face.probability, face.embedding) for face in faces]


def find_matches(
    embedding: np.ndarray, top_k: int, kind: str | None = None, scale: calibration.ScoreScale | None = None
) -> list[Match]:
    """The top_k results for one face embedding, photos and videos ranked together by their best face.

    1. Fetch the nearest faces, more than top_k.
    2. A photo face is one result; a video is one result, at its nearest face.
    3. For each video shown, gather its moments: the spans of its tracks near the query.
    Scores and "same person" come from the face model's calibration (scale), and so does naming a result's person:
    only within the open-set identification threshold for the archive's named faces, stricter than "same person".
    """
    model_name = face_engine.model_name()
    scale = scale or calibration.for_model(model_name)
    naming: float | None = None  # the identification threshold, looked up once a named person's face comes
    hits = vector_store.search(embedding, top_k * CANDIDATES_PER_RESULT, kind=kind)
    stored = Face.objects.select_related("asset", "frame", "person").in_bulk([hit.face_id for hit in hits])
    matches: list[Match] = []
    videos_seen: set[int] = set()
    for hit in hits:
        # A vector whose Face row is gone (deleted meanwhile) is skipped rather than shown broken.
        face = stored.get(hit.face_id)
        if face is None or face.asset_id in videos_seen:
            continue
        moments: tuple[Moment, ...] = ()
        if face.frame_id is not None:
            videos_seen.add(face.asset_id)
            moments = tuple(video_moments(embedding, face.asset, scale))
        person = None
        if face.person and face.person.name:
            naming = scale.identification_for(named_faces(model_name)) if naming is None else naming
            person = face.person if hit.distance < naming else None
        matches.append(
            Match(face, hit.distance, scale.score(hit.distance), scale.same_person(hit.distance), moments, person)
        )
        if len(matches) == top_k:
            break
    return matches


def named_faces(model_name: str) -> int:
    """How many of the model's faces belong to a named person: a query face is named against all of them, so the
    open-set threshold is the one for a gallery of this size (counted at most every NAMED_FACES_CACHE_SECONDS)."""
    key = f"search-named-faces-{model_name}"
    count = cache.get(key)
    if count is None:
        count = Face.objects.filter(model_name=model_name, person__in=Person.objects.exclude(name="")).count()
        cache.set(key, count, NAMED_FACES_CACHE_SECONDS)
    return count


def video_moments(embedding: np.ndarray, asset: Asset, scale: calibration.ScoreScale) -> list[Moment]:
    """When the person is on screen: the spans of the tracks of the faces called the same person, merged where
    they overlap or nearly meet (SPAN_JOIN). A face whose track has no span (indexed before spans were kept) counts
    as the run of sampled frames it is in, as moments were made then.

    The nearest face always counts, so a video shown as a result has at least one moment to play.
    """
    hits = vector_store.search(embedding, asset.faces.count(), asset_id=asset.pk)
    near = [hit for hit in hits if scale.same_person(hit.distance)] or hits[:1]
    faces = Face.objects.select_related("frame").in_bulk([hit.face_id for hit in near])
    spans = Track.objects.in_bulk({face.track for face in faces.values() if face.track is not None})
    pieces: list[tuple[float, float, vector_store.Hit]] = []
    best_per_frame: dict[float, vector_store.Hit] = {}
    for hit in near:  # nearest first, so the first hit of a frame is its best face
        face = faces.get(hit.face_id)
        if face is None:
            continue  # deleted meanwhile
        span = spans.get(face.track) if face.track is not None else None
        if span is not None:
            pieces.append((span.start, span.end, hit))
        else:
            best_per_frame.setdefault(hit.timestamp, hit)
    for run in runs(sorted(best_per_frame.values(), key=lambda hit: hit.timestamp), lambda hit: hit.timestamp):
        pieces.append((run[0].timestamp, run[-1].timestamp, min(run, key=lambda hit: hit.distance)))
    merged: list[list] = []
    for start, end, hit in sorted(pieces, key=lambda piece: piece[0]):
        if merged and start <= merged[-1][1] + SPAN_JOIN:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2].append(hit)
        else:
            merged.append([start, end, [hit]])
    frames = {pk: cast(Frame, face.frame) for pk, face in faces.items()}  # a video's faces all have their frame
    return [_moment(start, end, group, frames, scale) for start, end, group in merged]


def runs(items: list[T], time_of: Callable[[T], float]) -> list[list[T]]:
    """Split time-ordered items where neighbours are more than two sample intervals apart: each run is a moment."""
    gap = 2.0 / settings.VIDEO_SAMPLE_FPS + 1e-3
    grouped: list[list[T]] = []
    for item in items:
        if grouped and time_of(item) - time_of(grouped[-1][-1]) <= gap:
            grouped[-1].append(item)
        else:
            grouped.append([item])
    return grouped


def face_moments(asset: Asset) -> list[list[Frame]]:
    """The stretches of a video where any face was found, as runs of the frames that hold one."""
    return runs(list(asset.frames.filter(faces__isnull=False).distinct().order_by("index")), lambda f: f.timestamp)


def _moment(
    start: float, end: float, hits: list[vector_store.Hit], frames: dict[int, Frame], scale: calibration.ScoreScale
) -> Moment:
    best = min(hits, key=lambda hit: hit.distance)
    return Moment(
        start, end, best.distance, scale.score(best.distance), frames[best.face_id], scale.same_person(best.distance)
    )


def search_photo(
    path: Path, face_index: int | None = None, top_k: int | None = None, kind: str | None = None
) -> SearchResult:
    """search_image for a photo file (raises media_index.imaging.UnreadablePhoto for a bad one)."""
    return search_image(open_photo(path), face_index, top_k, kind)


def save_query(upload) -> str:
    """Keep an uploaded query photo, upright, as JPEG, with its faces found once (picking another face only
    searches); returns its id. Raises UnreadablePhoto for a photo that cannot be (or must not be) decoded."""
    image = open_photo(upload, max_pixels=settings.MAX_QUERY_PIXELS, pixels_setting="REVSEARCH_MAX_QUERY_PIXELS")
    faces = find_query_faces(image)
    settings.QUERY_DIR.mkdir(parents=True, exist_ok=True)
    prune_queries()
    query_id = uuid.uuid4().hex
    image.save(query_path(query_id), format="JPEG", quality=92)
    _store_faces(query_id, faces, image.size)
    logger.info("query %s saved with %d faces", query_id, len(faces))
    return query_id


def search_query(
    query_id: str, face_index: int | None = None, top_k: int | None = None, kind: str | None = None
) -> SearchResult:
    """search_faces for a saved query, with the faces found at upload (found again only if they were lost)."""
    if not query_path(query_id).is_file():
        raise QueryExpired(query_id)
    stored = _stored_faces(query_id)
    if stored is None:
        try:
            image = open_photo(query_path(query_id))
        except (FileNotFoundError, UnreadablePhoto) as error:
            raise QueryExpired(query_id) from error
        faces, size = find_query_faces(image), image.size
        _store_faces(query_id, faces, size)
    else:
        faces, size = stored
    return search_faces(faces, *size, face_index, top_k, kind)


def query_path(query_id: str) -> Path:
    """Where a query photo is kept; query_id is a hex uuid (the URL pattern only lets those through)."""
    if not QUERY_ID.fullmatch(query_id):
        raise ValueError(f"{query_id!r} is not a query id (32 hex digits)")
    return settings.QUERY_DIR / f"{query_id}.jpg"


def faces_path(query_id: str) -> Path:
    """Where a query's faces are kept beside its photo: boxes, probabilities, embeddings, the photo's size."""
    return query_path(query_id).with_suffix(".npz")


def _store_faces(query_id: str, faces: list[QueryFace], size: tuple[int, int]) -> None:
    target = faces_path(query_id)
    partial = target.with_name(target.name + ".part")
    with partial.open("wb") as stream:
        np.savez(
            stream,
            boxes=np.array([face.box for face in faces], dtype=np.float64).reshape(-1, 4),
            probabilities=np.array([face.probability for face in faces], dtype=np.float64),
            embeddings=np.stack([face.embedding for face in faces]) if faces else np.zeros((0, 0), np.float32),
            size=np.array(size, dtype=np.int64),
            model=np.array(face_engine.model_name()),
        )
    os.replace(partial, target)  # whole or not at all, for a page read at the same time


def _stored_faces(query_id: str) -> tuple[list[QueryFace], tuple[int, int]] | None:
    """The faces kept for a query and its photo's size; None if there are none, or from another face model."""
    path = faces_path(query_id)
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["model"]) != face_engine.model_name():
                return None
            boxes, probabilities, embeddings = stored["boxes"], stored["probabilities"], stored["embeddings"]
            width, height = (int(value) for value in stored["size"])
            faces = [
                QueryFace(
                    cast(tuple[float, float, float, float], tuple(map(float, box))), float(probability), embedding
                )
                for box, probability, embedding in zip(boxes, probabilities, embeddings, strict=True)
            ]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        logger.warning("query %s: cannot read its faces in %s (%s); finding them again", query_id, path, error)
        return None
    return faces, (width, height)


def prune_queries() -> None:
    """Query photos and their faces are kept for a day, long enough to pick other faces and come back."""
    cutoff = time.time() - QUERY_MAX_AGE_SECONDS
    for old in settings.QUERY_DIR.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except FileNotFoundError:  # pruned by another request meanwhile
            continue
