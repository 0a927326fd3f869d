"""float32 against bfloat16 in one process: LFW accuracy and embedding speed, MTCNN's boxes and detection speed.

The issue's adoption gate: bfloat16 is used by default only where LFW accuracy stays within 0.1 point of float32,
and MTCNN finds the same faces on the shared photos (as many, each with IoU >= 0.95).
"""

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
from django.test import override_settings
from tqdm import tqdm

from media_index import face_engine, imaging

from . import lfw, metrics, pipeline

logger = logging.getLogger(__name__)

PRECISIONS = ("float32", "bfloat16")
# The shared photos whose boxes must stay the same, under the data folder.
PHOTO_FOLDERS = ("face_recognition/examples", "facenet-pytorch/data", "facenet-pytorch/examples", "samples")
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
ACCURACY_GATE = 0.001
IOU_GATE = 0.95


@contextlib.contextmanager
def at(precision: str, detector: bool = False) -> Iterator[None]:
    """The face engine at `precision` (the detector too when asked), its models loaded beside the others."""
    with override_settings(FACE_PRECISION=precision), mock.patch.object(face_engine, "BFLOAT16_DETECTOR", detector):
        yield


@dataclass
class Timer:
    """Seconds and faces per precision, summed over interleaved calls."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PRECISIONS, 0.0))
    faces: int = 0

    def ms_per_face(self) -> dict[str, float]:
        return {precision: round(1000 * s / max(self.faces, 1), 1) for precision, s in self.seconds.items()}


def in_turn(number: int) -> tuple[str, ...]:
    """Both precisions, the first one alternating from photo to photo so that neither always runs on a warm cache."""
    return PRECISIONS if number % 2 == 0 else PRECISIONS[::-1]


def lfw_at_both(pairs: list[lfw.Pair], model: str) -> dict:
    """LFW verification with the embedder at each precision, on the same float32 detections and crops.

    1. Detect each photo's faces once, in float32 (the detector's precision either way, see boxes_at_both).
    2. Embed them at both precisions in turn, timing each; keep the face nearest the photo's centre.
    3. Verify the pairs with each precision's vectors, and compare the two vectors of each photo.
    """
    photos = lfw.photos_of(pairs)
    vectors: dict[str, dict[Path, np.ndarray | None]] = {precision: {} for precision in PRECISIONS}
    timer = Timer()
    for number, photo in enumerate(tqdm(photos, desc="LFW at both precisions", unit="photo", mininterval=5)):
        image = imaging.open_photo(photo)
        with at("float32"):
            detections = face_engine.detect_faces([image], model=model)
        faces: dict[str, list[face_engine.Face]] = {}
        for precision in in_turn(number):
            with at(precision):
                started = time.perf_counter()
                faces[precision] = face_engine.embed_faces([image], detections, model=model)[0]
                timer.seconds[precision] += time.perf_counter() - started
        timer.faces += len(detections[0])
        chosen = pipeline.choose_face(faces["float32"], image.width, image.height)
        index = faces["float32"].index(chosen) if chosen else None
        for precision in PRECISIONS:
            vectors[precision][photo] = None if index is None else faces[precision][index].embedding
    same = np.array([pair.same for pair in pairs])
    folds = np.array([pair.fold for pair in pairs])
    verification = {
        precision: metrics.verify(pipeline.pair_distances(pairs, vectors[precision]), same, folds)
        for precision in PRECISIONS
    }
    apart = [
        float(np.linalg.norm(vector - other))
        for vector, other in zip(vectors["float32"].values(), vectors["bfloat16"].values(), strict=True)
        if vector is not None and other is not None
    ]
    accuracy = {precision: round(result.accuracy, 4) for precision, result in verification.items()}
    return {
        "pairs": len(pairs),
        "photos": len(photos),
        "faces": timer.faces,
        "accuracy": accuracy,
        "std": {precision: round(result.std, 4) for precision, result in verification.items()},
        "auc": {precision: round(result.auc, 4) for precision, result in verification.items()},
        "threshold": {precision: round(result.threshold, 3) for precision, result in verification.items()},
        "embed_ms_per_face": timer.ms_per_face(),
        "embedding_distance": {"mean": round(float(np.mean(apart)), 4), "max": round(float(np.max(apart)), 4)},
        "passes": accuracy["float32"] - accuracy["bfloat16"] <= ACCURACY_GATE,
    }


def shared_photos(data_dir: Path) -> list[Path]:
    """Every photo under PHOTO_FOLDERS of the data folder, in a stable order."""
    return sorted(
        path
        for folder in PHOTO_FOLDERS
        for path in (data_dir / folder).rglob("*")
        if path.suffix.lower() in PHOTO_SUFFIXES and path.is_file()
    )


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = width * height
    return intersection / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection)


def compare_boxes(
    photos: list[Path], reference: list[list[face_engine.Detection]], other: list[list[face_engine.Detection]]
) -> dict:
    """Photos whose face count differs, and the IoU of each reference face with its best match in the other: the
    worst, and how many are under IOU_GATE."""
    counts_differ = [str(photo) for photo, a, b in zip(photos, reference, other, strict=True) if len(a) != len(b)]
    worst, where, below = 1.0, "", 0
    for photo, faces, others in zip(photos, reference, other, strict=True):
        for box, _ in faces:
            best = max((overlap(box, other_box) for other_box, _ in others), default=0.0)
            below += best < IOU_GATE
            if best < worst:
                worst, where = best, str(photo)
    return {
        "faces": sum(len(faces) for faces in reference),
        "faces_other": sum(len(faces) for faces in other),
        "count_differs": counts_differ,
        "worst_iou": round(worst, 4),
        "worst_photo": where,
        "faces_below_gate": below,
        "passes": not counts_differ and worst >= IOU_GATE,
    }


def boxes_at_both(photos: list[Path], model: str) -> dict:
    """MTCNN's boxes and detection time per face with its three networks in float32 and in bfloat16, in turn; and
    the boxes of the engine as configured by default (auto), which must be float32's when the detector stays so."""
    images = [imaging.open_photo(photo) for photo in photos]
    found: dict[str, list[list[face_engine.Detection]]] = {precision: [] for precision in PRECISIONS}
    timer = Timer()
    for number, image in enumerate(images):
        for precision in in_turn(number):
            with at(precision, detector=precision == "bfloat16"):
                started = time.perf_counter()
                found[precision].append(face_engine.detect_faces([image], model=model)[0])
                timer.seconds[precision] += time.perf_counter() - started
        timer.faces += len(found["float32"][-1])
    with at("auto"):
        default = [face_engine.detect_faces([image], model=model)[0] for image in images]
        default_precision = face_engine.precision(model)
    return {
        "photos": len(photos),
        "detect_ms_per_face": timer.ms_per_face(),
        "bfloat16_detector": compare_boxes(photos, found["float32"], found["bfloat16"]),
        "default": compare_boxes(photos, found["float32"], default) | {"precision": default_precision},
    }
