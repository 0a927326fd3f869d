"""Side by side with face_recognition: the same folder labelled by its CLI and by this project."""

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from benchmarks import ceiling
from benchmarks.photos import milvus_lite
from media_index import calibration, face_engine, imaging, photo_batch, vector_store

logger = logging.getLogger(__name__)

Say = Callable[[str], None]
FACE_RECOGNITION_TOLERANCE = 0.6  # the CLI's default
TARGET_TIME_RATIO = 3.0  # issue 17: at least 3x the CLI's speed on the same folder
# (photo file name, L2 distance, known person)
Match = tuple[str, float, str]
# face_recognition's CLI prints "path,name[,distance]" for each face, or "path,unknown_person|no_persons_found".
CLI_LINE = re.compile(r"^(?P<path>.+?),(?P<name>[^,]+)(?:,(?P<distance>[0-9.]+|None))?$")


def versus_face_recognition(lfw: Path, say: Say, people: int = 100, per_person: int = 4, strangers: int = 50) -> dict:
    """The same folder indexed by this project and by face_recognition's CLI, then labelled by the same queries.

    One known photo of each of `people` people is the query; the folder holds up to `per_person` other photos of
    each, and `strangers`' photos (people with one photo), whose right answer is "unknown". Each tool names for a
    photo the known person nearest to any face in it, within a threshold; accuracy is the share named right. Ours
    names within the open-set identification threshold for a gallery of its known faces, as search names people
    against the archive's named faces (and is scored at its pair threshold too); theirs within the CLI's tolerance.
    Both run on one core: face_recognition with --cpus 1, this project in this process with its torch threads,
    finding REVSEARCH_PHOTO_BATCH photos' faces together as a worker does, and, for the before/after, one photo at
    a time."""
    known, unknown, truth = versus_photos(lfw, people, per_person, strangers)
    with tempfile.TemporaryDirectory(prefix="revsearch-versus-") as folder:
        known_dir, unknown_dir = Path(folder) / "known", Path(folder) / "unknown"
        known_dir.mkdir()
        unknown_dir.mkdir()
        for name, photo in known.items():
            shutil.copyfile(photo, known_dir / f"{name}.jpg")
        for photo in unknown:
            shutil.copyfile(photo, unknown_dir / photo.name)
        say(f"versus face_recognition: {len(known)} known people, {len(unknown)} photos to label")
        batch = settings.PHOTO_BATCH
        seconds, matches, gallery = _ours(known_dir, unknown_dir, batch)
        one_at_a_time = _ours(known_dir, unknown_dir, 1)[0] if batch > 1 else seconds
        say(f"  this project: {seconds:.1f} s finding {batch} photos' faces together, {one_at_a_time:.1f} s one by one")
        their_seconds, their_matches = _face_recognition_cli(known_dir, unknown_dir)
        say(f"  face_recognition: {their_seconds:.1f} s")
        photos = sorted(unknown_dir.iterdir()) + sorted(known_dir.iterdir())
        arithmetic, _ = ceiling.count_arithmetic([[imaging.open_photo(photo)] for photo in photos])
    at_peak = arithmetic.seconds_at(ceiling.processor_peaks())
    scale = shipped_scale(face_engine.model_name())
    identification = scale.identification_for(gallery)
    ours = _scored(_within(matches, identification), truth, seconds)
    theirs = _scored(_within(their_matches, FACE_RECOGNITION_TOLERANCE), truth, their_seconds)
    figures = {
        "known_people": len(known),
        "gallery_faces": gallery,
        "identification_threshold": round(identification, 4),
        "photos": len(unknown),
        "photo_batch": batch,
        "precision": face_engine.precision(),
        "ours": ours,
        "ours_pair_threshold": _scored(_within(matches, scale.threshold), truth, seconds),
        "ours_one_at_a_time_seconds": round(one_at_a_time, 1),
        "face_recognition": theirs,
        "time_ratio": round(their_seconds / seconds, 2),
        "time_ratio_one_at_a_time": round(their_seconds / one_at_a_time, 2),
        "accuracy_ratio": round(ours["accuracy"] / max(theirs["accuracy"], 1e-9), 3),
        # Our detection and embedding of the same photos, every operation at this processor's peak (ceiling.py).
        "ceiling": {
            "gflop": round(arithmetic.detect_gflop + arithmetic.embed_gflop, 1),
            "seconds_at_peak": round(at_peak, 1),
            "time_ratio_at_most": round(their_seconds / at_peak, 2),
            "target_time_ratio": TARGET_TIME_RATIO,
        },
    }
    for who, key in (
        (f"ours within the identification threshold for {gallery} known faces {identification:.3f}", "ours"),
        (f"ours within the pair threshold {scale.threshold}", "ours_pair_threshold"),
        (f"face_recognition within its tolerance {FACE_RECOGNITION_TOLERANCE}", "face_recognition"),
    ):
        scored = figures[key]
        say(
            f"  {who}: accuracy {scored['accuracy']} ({scored['wrong_person']} wrong person, {scored['missed']}"
            f" missed, {scored['false_match']} strangers matched)"
        )
    say(
        f"  face_recognition took {figures['time_ratio']}x as long ({figures['time_ratio_one_at_a_time']}x one photo"
        f" at a time); accuracy ours/theirs {figures['accuracy_ratio']}"
    )
    say(
        f"  at this processor's peak our detection and embedding of these {len(photos)} photos"
        f" ({figures['ceiling']['gflop']} GFLOP) alone would take {at_peak:.1f} s: at most"
        f" {figures['ceiling']['time_ratio_at_most']}x face_recognition's speed (target {TARGET_TIME_RATIO:g}x)"
    )
    return figures


def versus_photos(
    lfw: Path, people: int, per_person: int, strangers: int
) -> tuple[dict[str, Path], list[Path], dict[str, str]]:
    """Known photo per person, the photos to label, and each one's right answer by file name."""
    by_person = {folder.name: sorted(folder.glob("*.jpg")) for folder in sorted(lfw.iterdir()) if folder.is_dir()}
    recurring = [name for name, photos in by_person.items() if len(photos) > 1][:people]
    alone = [name for name, photos in by_person.items() if len(photos) == 1][:strangers]
    known = {name: by_person[name][0] for name in recurring}
    unknown = [photo for name in recurring for photo in by_person[name][1 : 1 + per_person]]
    unknown += [by_person[name][0] for name in alone]
    truth = {photo.name: (photo.parent.name if photo.parent.name in known else "unknown") for photo in unknown}
    return known, unknown, truth


def shipped_scale(model_name: str) -> calibration.ScoreScale:
    """The thresholds a fresh install uses (the archive's own calibration, if any, is not read)."""
    return calibration.SHIPPED.get(model_name) or calibration.for_model(model_name)


def _ours(known_dir: Path, unknown_dir: Path, batch: int) -> tuple[float, list[Match], int]:
    """Seconds to index the folder as workers do (into a scratch collection), `batch` photos at a time, then search
    with the known photos (`batch` at a time too); every (photo, distance, person) the searches found, and how many
    known faces searched (the gallery each photo is named against)."""
    face_engine.load()
    with milvus_lite() as _, vector_store.scratch_collection(face_engine.dimension()) as collection:
        started = time.perf_counter()
        photos, next_id = sorted(unknown_dir.iterdir()), 1
        for start in range(0, len(photos), batch):
            vectors = []
            for number, faces in enumerate(_faces(photos[start : start + batch]), start=start):
                vectors += [
                    vector_store.FaceVector(next_id + i, f.embedding, number, "image") for i, f in enumerate(faces)
                ]
                next_id += len(faces)
            vector_store.insert(vectors, collection)
        known = sorted(known_dir.iterdir())
        matches, gallery = [], 0
        for start in range(0, len(known), batch):
            chunk = known[start : start + batch]
            queries = [(photo, faces[0]) for photo, faces in zip(chunk, _faces(chunk), strict=True) if faces]
            if not queries:
                continue
            gallery += len(queries)
            hits = vector_store.search_many([face.embedding for _, face in queries], 100, collection=collection)
            for (photo, _), photo_hits in zip(queries, hits, strict=True):
                matches += [(photos[hit.asset_id].name, hit.distance, photo.stem) for hit in photo_hits]
        seconds = time.perf_counter() - started
    return seconds, matches, gallery


def _faces(photos: list[Path]) -> list[list[face_engine.Face]]:
    """The faces of several photos, found together as a worker finds those of one task."""
    return photo_batch.find_faces_together([imaging.open_photo(photo) for photo in photos])


def _face_recognition_cli(known_dir: Path, unknown_dir: Path) -> tuple[float, list[Match]]:
    """Seconds the CLI took, and every (photo, distance, person) within its tolerance that it printed."""
    command = Path(sys.executable).with_name("face_recognition")
    argv = [str(command), "--cpus", "1", "--tolerance", str(FACE_RECOGNITION_TOLERANCE), "--show-distance", "true"]
    argv += [str(known_dir), str(unknown_dir)]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"face_recognition exited with {done.returncode}: {done.stderr[-2000:]}")
    matches = [
        (Path(match["path"]).name, float(match["distance"] or 0), match["name"])
        for match in map(CLI_LINE.match, map(str.strip, done.stdout.splitlines()))
        if match and match["name"] not in ("unknown_person", "no_persons_found")
    ]
    return seconds, matches


def _nearest_labels(matches: list[Match]) -> dict[str, str]:
    """For each photo, the person of its nearest match, from (photo, distance, person) triples."""
    nearest: dict[str, tuple[float, str]] = {}
    for photo, distance, person in matches:
        if photo not in nearest or distance < nearest[photo][0]:
            nearest[photo] = (distance, person)
    return {photo: person for photo, (_, person) in nearest.items()}


def _within(matches: list[Match], threshold: float) -> dict[str, str]:
    """Each photo named after its nearest match below the threshold."""
    return _nearest_labels([match for match in matches if match[1] < threshold])


def _scored(labels: dict[str, str], truth: dict[str, str], seconds: float) -> dict:
    """Accuracy of the labels against the truth, and how the wrong ones were wrong."""
    right = sum(1 for name, answer in truth.items() if labels.get(name, "unknown") == answer)
    named = {name: answer for name, answer in truth.items() if answer != "unknown"}
    wrong_person = sum(1 for name, answer in named.items() if labels.get(name) not in (None, answer))
    missed = sum(1 for name in named if name not in labels)
    false_match = sum(1 for name, answer in truth.items() if answer == "unknown" and name in labels)
    return {
        "seconds": round(seconds, 1),
        "accuracy": round(right / len(truth), 4),
        "right": right,
        "wrong_person": wrong_person,
        "missed": missed,
        "false_match": false_match,
    }
