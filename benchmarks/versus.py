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

from benchmarks.photos import milvus_lite
from media_index import calibration, face_engine, imaging, vector_store

logger = logging.getLogger(__name__)

Say = Callable[[str], None]
FACE_RECOGNITION_TOLERANCE = 0.6  # the CLI's default
# face_recognition's CLI prints "path,name[,distance]" for each face, or "path,unknown_person|no_persons_found".
CLI_LINE = re.compile(r"^(?P<path>.+?),(?P<name>[^,]+)(?:,(?P<distance>[0-9.]+|None))?$")


def versus_face_recognition(lfw: Path, say: Say, people: int = 100, per_person: int = 4, strangers: int = 50) -> dict:
    """The same folder indexed by this project and by face_recognition's CLI, then labelled by the same queries.

    One known photo of each of `people` people is the query; the folder holds up to `per_person` other photos of
    each, and `strangers`' photos (people with one photo), whose right answer is "unknown". Each tool names for a
    photo the known person nearest to any face in it, within its own threshold; accuracy is the share named right.
    Both run on one core: face_recognition with --cpus 1, this project in this process with its torch threads."""
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
        ours = _ours(known_dir, unknown_dir, truth)
        say(
            f"  this project: {ours['seconds']} s, accuracy {ours['accuracy']} ({ours['wrong_person']} wrong person,"
            f" {ours['missed']} missed, {ours['false_match']} strangers matched)"
        )
        theirs = _face_recognition_cli(known_dir, unknown_dir, truth)
        say(
            f"  face_recognition: {theirs['seconds']} s, accuracy {theirs['accuracy']} ({theirs['wrong_person']} wrong"
            f" person, {theirs['missed']} missed, {theirs['false_match']} strangers matched)"
        )
    figures = {
        "known_people": len(known),
        "photos": len(unknown),
        "ours": ours,
        "face_recognition": theirs,
        "time_ratio": round(theirs["seconds"] / ours["seconds"], 2),
        "accuracy_ratio": round(ours["accuracy"] / max(theirs["accuracy"], 1e-9), 3),
    }
    say(f"  face_recognition took {figures['time_ratio']}x as long; accuracy ours/theirs {figures['accuracy_ratio']}")
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


def _ours(known_dir: Path, unknown_dir: Path, truth: dict[str, str]) -> dict:
    """Index the folder as a worker does (into a scratch collection), then search with each known photo."""
    face_engine.load()
    # The threshold a fresh install uses (the archive's own calibration, if any, is not read).
    scale = calibration.SHIPPED.get(face_engine.model_name()) or calibration.for_model(face_engine.model_name())
    with milvus_lite() as _, vector_store.scratch_collection(face_engine.dimension()) as collection:
        started = time.perf_counter()
        names, next_id = {}, 1
        for number, photo in enumerate(sorted(unknown_dir.iterdir()), start=1):
            faces = face_engine.find_faces(imaging.open_photo(photo))
            vector_store.insert(
                [vector_store.FaceVector(next_id + i, face.embedding, number, "image") for i, face in enumerate(faces)],
                collection,
            )
            names[number] = photo.name
            next_id += len(faces)
        matches = []
        for photo in sorted(known_dir.iterdir()):
            faces = face_engine.find_faces(imaging.open_photo(photo))
            if not faces:
                continue
            for hit in vector_store.search_many([faces[0].embedding], 100, collection=collection)[0]:
                if scale.same_person(hit.distance):
                    matches.append((names[hit.asset_id], hit.distance, photo.stem))
        seconds = time.perf_counter() - started
    return _scored(_nearest_labels(matches), truth, seconds)


def _face_recognition_cli(known_dir: Path, unknown_dir: Path, truth: dict[str, str]) -> dict:
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
    return _scored(_nearest_labels(matches), truth, seconds)


def _nearest_labels(matches: list[tuple[str, float, str]]) -> dict[str, str]:
    """For each photo, the person of its nearest match, from (photo, distance, person) triples."""
    nearest: dict[str, tuple[float, str]] = {}
    for photo, distance, person in matches:
        if photo not in nearest or distance < nearest[photo][0]:
            nearest[photo] = (distance, person)
    return {photo: person for photo, (_, person) in nearest.items()}


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
