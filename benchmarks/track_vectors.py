"""Vectors per track: whether storing a few vectors of each track, instead of every sampled face's, still finds the
same tracks (and so the same moments) for a query.

In-process, no service: each video is sampled as indexing samples it (video.sample_frames, settings.VIDEO_SAMPLE_FPS,
shot cuts included), its faces found and embedded in chunks (face_engine.find_faces_batch), and linked into tracks as
indexing._link_tracks links them (tracks.link, a new shot breaks every track). Then, for each way of choosing the
vectors stored, a track counts as found for a query when one of its stored vectors is within the same-person
threshold: recall is against storing every face (today), so 1.0 means no moment lost.

Queries: the Hamilton clip's two people (face_recognition's example photos); the generated video's person
(benchmarks/moment_video.py) in LFW photos not shown in it; in the crowd video (facenet-pytorch's example), each
face of the tracks of two faces or more in turn, held out of the store; and LFW strangers against every video, for
false hits (a subset of the stored vectors can only find fewer of those).
"""

import itertools
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image

from benchmarks import moment_video
from benchmarks.versus import shipped_scale
from media_index import face_engine, shots, tracks, video, video_probe

logger = logging.getLogger(__name__)

Say = Callable[[str], None]
# Vectors kept per track by the strategies that keep several.
K = 3
STRATEGIES = ("every", "best", "medoid", f"spread{K}", f"diverse{K}")
# The generated video's person in this many LFW photos that are neither shown in it nor its query's neighbours.
PERSON_QUERIES = 12
STRANGER_QUERIES = 30


@dataclass
class Sampled:
    """One video's faces in sampling order, and its tracks as lists of face numbers (in time order)."""

    vectors: np.ndarray  # (faces, dimension), unit rows
    probabilities: np.ndarray
    frames: np.ndarray  # each face's sampled frame (number)
    tracks: list[list[int]] = field(default_factory=list)


def select(vectors: np.ndarray, probabilities: np.ndarray, strategy: str, k: int = K) -> list[int]:
    """The faces of one track (rows in time order) whose vectors a strategy stores, as row numbers.

    every: all (today); best: MTCNN's most confident face; medoid: the face nearest all others (least summed
    distance); spreadK: up to K faces evenly spaced in time; diverseK: the medoid, then up to K-1 faces each
    farthest from those chosen (farthest-point sampling: poses and lighting the others do not cover).
    """
    count = len(vectors)
    if count == 0:
        return []
    if strategy == "every":
        return list(range(count))
    if strategy == "best":
        return [int(np.argmax(probabilities))]
    distances = np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=-1)
    medoid = int(np.argmin(distances.sum(axis=1)))
    if strategy == "medoid":
        return [medoid]
    if strategy.startswith("spread"):
        return sorted({int(i) for i in np.round(np.linspace(0, count - 1, min(k, count)))})
    if strategy.startswith("diverse"):
        chosen = [medoid]
        while len(chosen) < min(k, count):
            nearest_chosen = distances[:, chosen].min(axis=1)
            chosen.append(int(np.argmax(nearest_chosen)))
        return sorted(chosen)
    raise ValueError(f"unknown strategy {strategy!r}: choose from {', '.join(STRATEGIES)}")


def stored(sampled: Sampled, strategy: str, held_out: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The vectors a strategy stores for the whole video and the track (number) of each; held_out is left out."""
    rows, owners = [], []
    for number, faces in enumerate(sampled.tracks):
        faces = [face for face in faces if face != held_out]
        picked = select(sampled.vectors[faces], sampled.probabilities[faces], strategy) if faces else []
        rows += [faces[i] for i in picked]
        owners += [number] * len(picked)
    return sampled.vectors[rows].reshape(len(rows), sampled.vectors.shape[1]), np.array(owners, dtype=int)


def found(query: np.ndarray, vectors: np.ndarray, owners: np.ndarray, threshold: float) -> dict[int, float]:
    """The tracks with a stored vector within the threshold of the query, each with its nearest vector's distance."""
    distances = np.linalg.norm(vectors - query, axis=1)
    tracks_found: dict[int, float] = {}
    for owner, distance in zip(owners.tolist(), distances.tolist(), strict=True):
        if distance < threshold and distance < tracks_found.get(owner, np.inf):
            tracks_found[owner] = distance
    return tracks_found


def compare(sampled: Sampled, queries: list[tuple[np.ndarray, int | None]], threshold: float) -> dict[str, dict]:
    """Per strategy: vectors stored, and the tracks found over all queries against every face's vectors.

    A query is (vector, held-out face or None). recall: tracks found / tracks found storing every face, summed over
    the queries; best_distance: the nearest stored vector's distance, averaged over the queries with a hit.
    """
    faces = len(sampled.vectors)
    figures: dict[str, dict] = {}
    reference: list[set[int]] = []
    for strategy in STRATEGIES:
        counted, lost, lost_other, hits, best, own = 0, 0, 0, 0, [], 0
        whole, whole_owners = stored(sampled, strategy)
        for number, (query, held_out) in enumerate(queries):
            vectors, owners = stored(sampled, strategy, held_out) if held_out is not None else (whole, whole_owners)
            tracks_found = found(query, vectors, owners, threshold)
            if strategy == "every":
                reference.append(set(tracks_found))
            counted += len(tracks_found)
            missing = reference[number] - set(tracks_found)
            lost += len(missing)
            if held_out is not None:
                lost_other += sum(_together(sampled, held_out, track) for track in missing)
            hits += bool(tracks_found)
            own += held_out is not None and any(held_out in sampled.tracks[track] for track in tracks_found)
            if tracks_found:
                best.append(min(tracks_found.values()))
        expected = sum(len(tracks_found) for tracks_found in reference)
        figures[strategy] = {
            "vectors": len(whole),
            "ratio": round(len(whole) / faces, 3) if faces else None,
            "tracks_found": counted,
            "tracks_found_every": expected,
            "recall": round(counted / expected, 3) if expected else None,
            "lost": lost,
            # Of those, tracks on screen in a frame with the held-out face's own track: somebody else for sure.
            "lost_of_somebody_else": lost_other,
            "queries_with_a_hit": hits,
            # Held-out queries that found the track they were taken from.
            "own_track_found": own if any(held_out is not None for _, held_out in queries) else None,
            "best_distance": round(float(np.mean(best)), 3) if best else None,
        }
    return figures


def _together(sampled: Sampled, face: int, track: int) -> bool:
    """Whether a track shares a sampled frame with the track of a face (two people on screen at once)."""
    own = next(faces for faces in sampled.tracks if face in faces)
    return bool(set(sampled.frames[own].tolist()) & set(sampled.frames[sampled.tracks[track]].tolist()))


def track_vectors(say: Say, data: Path | None = None) -> dict:
    """For each video and query set, what each strategy stores and finds, against every face's vectors."""
    data = data or settings.DATA_DIR
    lfw = data / "lfw"
    face_engine.load()
    threshold = shipped_scale(face_engine.model_name()).threshold
    examples = data / "face_recognition" / "examples"
    strangers = [_query(path) for path in _strangers(lfw)]
    report: dict = {"threshold": threshold, "strategies": list(STRATEGIES), "videos": {}}
    with tempfile.TemporaryDirectory(prefix="revsearch-benchmark-track-vectors-") as name:
        generated = moment_video.build(lfw, Path(name) / "generated.mp4")
        hamilton = _sample(examples / "short_hamilton_clip.mp4", threshold)
        people = [_query(examples / "lin-manuel-miranda.png"), _query(examples / "alex-lacamoire.png")]
        crowd = _sample(data / "facenet-pytorch" / "examples" / "video.mp4", threshold)
        held_out = [face for faces in crowd.tracks if len(faces) > 1 for face in faces]
        runs = {
            "hamilton": (hamilton, [(vector, None) for vector in people]),
            "generated": (_sample(generated.path, threshold), [(vector, None) for vector in _person_queries(lfw)]),
            "crowd": (crowd, [(crowd.vectors[face], face) for face in held_out]),
        }
        for label, (sampled, queries) in runs.items():
            sizes = [len(faces) for faces in sampled.tracks]
            figures = {
                "faces": len(sampled.vectors),
                "tracks": len(sampled.tracks),
                "faces_per_track": {"mean": round(float(np.mean(sizes)), 2), "max": max(sizes)} if sizes else {},
                "queries": len(queries),
                "strategies": compare(sampled, queries, threshold),
                "strangers": compare(sampled, [(vector, None) for vector in strangers], threshold),
            }
            report["videos"][label] = figures
            say(f"track vectors {label}: {figures['faces']} faces, {figures['tracks']} tracks, {len(queries)} queries")
            for strategy, run in figures["strategies"].items():
                say(f"track vectors {label} {strategy}: {line(run, figures['strangers'][strategy])}")
    return report


def line(run: dict, strangers: dict) -> str:
    """One strategy's figures on one video, as `say` prints them."""
    text = (
        f"{run['vectors']} vectors ({run['ratio']} of every face's), tracks found {run['tracks_found']} of"
        f" {run['tracks_found_every']} (recall {run['recall']}, lost {run['lost']}), best hit {run['best_distance']}"
        f" on average; strangers' false hits {strangers['tracks_found']}"
    )
    if run["own_track_found"] is not None:
        text += (
            f"; held-out faces that found their own track {run['own_track_found']}, lost tracks on screen with"
            f" theirs (somebody else) {run['lost_of_somebody_else']}"
        )
    return text


def _sample(path: Path, same_person: float) -> Sampled:
    """Sample, detect, embed and link as indexing does (media_index/indexing.py, _store_frames and _link_tracks)."""
    sample_fps = settings.VIDEO_SAMPLE_FPS
    frames = video.sample_frames(path, video_probe.probe(path), sample_fps)
    vectors: list[np.ndarray] = []
    probabilities: list[float] = []
    frame_of: list[int] = []
    track_of: list[int] = []
    previous: list[tuple[int, tracks.TrackedFace]] = []
    time_before: float | None = None
    try:
        while chunk := list(itertools.islice(frames, settings.VIDEO_CHUNK_FRAMES)):
            for frame, faces in zip(chunk, face_engine.find_faces_batch([f.image for f in chunk]), strict=True):
                if shots.is_cut(time_before, frame.timestamp, sample_fps):
                    previous = []  # a new shot: whoever is in it came on screen at this frame
                time_before = frame.timestamp
                current = [tracks.TrackedFace(tuple(face.box), face.embedding) for face in faces]
                links = tracks.link([tracked for _, tracked in previous], current, same_person)
                numbers = []
                for face, link in zip(faces, links, strict=True):
                    number = len(vectors)
                    vectors.append(face.embedding)
                    probabilities.append(face.probability)
                    frame_of.append(frame.index)
                    track_of.append(number if link is None else track_of[previous[link][0]])
                    numbers.append(number)
                previous = list(zip(numbers, current, strict=True))
    finally:
        frames.close()
    members: dict[int, list[int]] = {}
    for number, track in enumerate(track_of):
        members.setdefault(track, []).append(number)
    dimension = face_engine.dimension()
    return Sampled(
        np.array(vectors, dtype=np.float32).reshape(len(vectors), dimension),
        np.array(probabilities, dtype=np.float32),
        np.array(frame_of, dtype=int),
        list(members.values()),
    )


def _query(path: Path) -> np.ndarray:
    """The largest face's vector of a query photo (RGBA photos are made RGB first, as search does)."""
    faces = face_engine.find_faces(Image.open(path).convert("RGB"))
    if not faces:
        raise ValueError(f"no face found in the query photo {path}: pick another")
    return faces[0].embedding


def _person_queries(lfw: Path) -> list[np.ndarray]:
    """The generated video's person in photos not shown in it: the query photo first, then others in order."""
    shown = set(moment_video.SHOWN)
    numbers = [moment_video.QUERY] + [
        number for number in range(1, 200) if number not in shown and number != moment_video.QUERY
    ]
    paths = [moment_video.person_photo(lfw, number) for number in numbers]
    return [_query(path) for path in [path for path in paths if path.is_file()][:PERSON_QUERIES]]


def _strangers(lfw: Path) -> list[Path]:
    """One photo each of people spread over LFW's alphabet, none in the generated video."""
    taken = {moment_video.PERSON, *moment_video.STRANGERS}
    people = [folder for folder in sorted(lfw.iterdir()) if folder.is_dir() and folder.name not in taken]
    step = max(1, len(people) // STRANGER_QUERIES)
    return [min(folder.glob("*.jpg")) for folder in people[::step][:STRANGER_QUERIES]]


def track_vectors_lines(report: dict) -> list[str]:
    """One summary line per video: each strategy's share of the vectors and its recall of tracks."""
    return [
        f"vectors per track, {label} ({figures['tracks']} tracks, {figures['queries']} queries): "
        + ", ".join(
            f"{strategy} {run['ratio']} of the vectors, recall {run['recall']}"
            for strategy, run in figures["strategies"].items()
            if strategy != "every"
        )
        for label, figures in report.get("videos", {}).items()
    ]
