"""Video: seconds of video a worker process gets through per second of work, and the same against the pipeline as it
was before the video throughput work (docs/performance.md, "Video throughput"), with the faces each finds."""

import contextlib
import itertools
import logging
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import PIL.Image
from django.conf import settings
from django.test import override_settings

from media_index import face_engine, mtcnn, video, video_probe

logger = logging.getLogger(__name__)

Say = Callable[[str], None]
# Faces of the reference pipeline are matched to faces of the new one on the nearest frame within this many seconds
# (fast decoding may sample a frame one frame later: 0.04 s at 25 fps), by box overlap.
MATCH_SECONDS = 0.05
MATCH_IOU = 0.5
# The pipelines measured, in the order they run in each round: the one before (ffmpeg decoding every frame,
# facenet-pytorch's own detect_face), today's in float32, and today's as configured (FACE_PRECISION).
REFERENCE, FLOAT32, CONFIGURED = "reference", "float32", "configured"


@dataclass
class Run:
    """One pass over a video: wall and CPU seconds (this process and ffmpeg), per stage, and the faces found."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("sample", "detect", "embed"), 0.0))
    frames: list[tuple[float, list[face_engine.Face]]] = field(default_factory=list)

    @property
    def faces(self) -> int:
        return sum(len(faces) for _, faces in self.frames)


def reference_videos() -> dict[str, Path]:
    """The two videos `manage.py benchmark` measures, by label, in the data folder."""
    return {
        "360p": settings.DATA_DIR / "face_recognition" / "examples" / "short_hamilton_clip.mp4",
        "1080p": settings.DATA_DIR / "facenet-pytorch" / "examples" / "video.mp4",
    }


def video_speed(
    label: str, path: Path, say: Say, repeat: int = 3, fps: float | None = None, compare: bool = True
) -> dict:
    """Seconds of video a worker process gets through per second (sample, decode, detect, embed; best of repeat), as
    configured; with compare, also the reference pipeline and today's in float32, in the same rounds, and the share
    of the reference's faces that today's finds."""
    info = video_probe.probe(path)
    fps = fps or settings.VIDEO_SAMPLE_FPS
    face_engine.load()
    # Where FACE_PRECISION comes to float32 anyway, today's pipeline is measured once.
    configured = [CONFIGURED] if face_engine.precision() != "float32" or not compare else []
    kinds = [REFERENCE, FLOAT32, *configured] if compare else configured
    for kind in kinds:
        with _pipeline(kind):
            face_engine.load()
    best: dict[str, Run] = {}
    for _ in range(repeat):
        for kind in kinds:  # interleaved, so that a busy machine slows all of them alike
            with _pipeline(kind):
                run = _run(path, info, fps)
            if kind not in best or run.seconds < best[kind].seconds:
                best[kind] = run
    figures = {
        "label": label,
        "file": path.name,
        "size": f"{info.width}x{info.height}",
        "video_seconds": round(info.duration, 2),
        "sample_fps": fps,
        "torch_threads": settings.TORCH_THREADS,
        "precision": face_engine.precision(),
        **_figures(best.get(CONFIGURED) or best[FLOAT32], info.duration),
    }
    say(
        f"video {label}: {path.name} ({info.width}x{info.height}, {info.duration:.1f} s, {figures['frames']} frames at"
        f" {fps:g}/s, {figures['faces']} faces) in {figures['seconds']:.2f} s = {figures['realtime_factor']}x real"
        f" time ({figures['precision']}; {_stages(figures)})"
    )
    if compare:
        reference, today = _figures(best[REFERENCE], info.duration), _figures(best[FLOAT32], info.duration)
        found = recall(best[REFERENCE].frames, best[FLOAT32].frames)
        figures["versus_reference"] = {
            "reference": reference,
            "float32": today,
            "speedup": round(reference["seconds"] / today["seconds"], 2),
            "cpu_speedup": round(reference["cpu_seconds"] / today["cpu_seconds"], 2),
            **found,
        }
        say(
            f"  against the reference pipeline, both float32: {today['realtime_factor']}x real time against"
            f" {reference['realtime_factor']}x ({today['seconds']:.2f} s against {reference['seconds']:.2f} s:"
            f" {figures['versus_reference']['speedup']}x as fast; CPU {today['cpu_seconds']:.2f} s against"
            f" {reference['cpu_seconds']:.2f} s); {_stages(today)}, reference {_stages(reference)}"
        )
        say(
            f"  faces: {found['found']} of the reference's {found['reference_faces']} found ="
            f" {100 * found['recall']:.1f}% (box IoU >= {MATCH_IOU}), {found['extra']} more;"
            f" embeddings of matched faces {found['median_distance']:.3f} apart (L2, median),"
            f" {found['max_distance']:.3f} at most"
        )
    return figures


@contextlib.contextmanager
def _pipeline(kind: str) -> Iterator[None]:
    """Settings and detector of one pipeline: the reference decodes every frame (VIDEO_FAST_DECODE off) and detects
    with facenet-pytorch's detect_face in float32; FLOAT32 is today's with FACE_PRECISION=float32."""
    if kind == CONFIGURED:
        yield
        return
    overrides: dict = {"FACE_PRECISION": "float32"}
    with contextlib.ExitStack() as stack:
        if kind == REFERENCE:
            overrides["VIDEO_FAST_DECODE"] = False
            stack.enter_context(mock.patch.object(mtcnn, "detect", _facenet_detect))
        stack.enter_context(override_settings(**overrides))
        yield


def _facenet_detect(
    images: list[PIL.Image.Image], min_size: float, nets: tuple, thresholds: tuple, factor: float
) -> list[np.ndarray]:
    """mtcnn.detect as it was: facenet-pytorch's detect_face (mtcnn.py gives the same boxes for less)."""
    from facenet_pytorch.models.utils.detect_face import detect_face

    boxes, _ = detect_face(images, min_size, *nets, thresholds, factor, "cpu")
    return [np.asarray(found, dtype=float).reshape(-1, 5) for found in boxes]


def _run(path: Path, info: video_probe.VideoInfo, fps: float) -> Run:
    """One pass as a worker makes it (face_engine.find_faces_batch chunk by chunk), timed stage by stage."""
    run = Run()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    sampled = video.sample_frames(path, info, fps)
    while True:
        mark = time.perf_counter()
        chunk = list(itertools.islice(sampled, settings.VIDEO_CHUNK_FRAMES))
        detecting = time.perf_counter()
        if not chunk:
            run.stages["sample"] += detecting - mark
            break
        images = [frame.image for frame in chunk]
        detections = face_engine.detect_faces(images)
        embedding = time.perf_counter()
        faces = face_engine.embed_faces(images, detections)
        done = time.perf_counter()
        for stage, seconds in zip(run.stages, (detecting - mark, embedding - detecting, done - embedding), strict=True):
            run.stages[stage] += seconds
        run.frames += [(frame.timestamp, frame_faces) for frame, frame_faces in zip(chunk, faces, strict=True)]
    run.seconds, run.cpu_seconds = time.perf_counter() - started, cpu_seconds() - cpu_started
    return run


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (each run's ffmpeg, reaped at its end)."""
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def _figures(run: Run, duration: float) -> dict:
    frames = len(run.frames)
    return {
        "frames": frames,
        "faces": run.faces,
        "seconds": round(run.seconds, 3),
        "cpu_seconds": round(run.cpu_seconds, 3),
        "realtime_factor": round(duration / run.seconds, 1),
        "ms_per_frame": {stage: round(1000 * seconds / max(frames, 1), 1) for stage, seconds in run.stages.items()},
    }


def _stages(figures: dict) -> str:
    return "ms a frame: " + ", ".join(f"{stage} {ms}" for stage, ms in figures["ms_per_frame"].items())


def recall(
    reference: list[tuple[float, list[face_engine.Face]]], new: list[tuple[float, list[face_engine.Face]]]
) -> dict:
    """How many of the reference's faces the new pipeline found: on the new frame nearest in time (within
    MATCH_SECONDS), pairs of boxes with IoU >= MATCH_IOU, best overlap first, each face in at most one pair."""
    times = np.array([timestamp for timestamp, _ in new])
    found = total = 0
    distances = []
    for timestamp, faces in reference:
        total += len(faces)
        if not len(times) or abs(times - timestamp).min() > MATCH_SECONDS:
            continue
        nearest = new[int(abs(times - timestamp).argmin())][1]
        matched = pairs([face.box for face in faces], [face.box for face in nearest])
        found += len(matched)
        distances += [float(np.linalg.norm(faces[i].embedding - nearest[j].embedding)) for i, j in matched]
    return {
        "reference_faces": total,
        "found": found,
        "recall": round(found / total, 4) if total else 1.0,
        "extra": max(0, sum(len(faces) for _, faces in new) - found),  # faces the reference did not find
        "median_distance": round(float(np.median(distances)), 4) if distances else 0.0,
        "max_distance": round(max(distances), 4) if distances else 0.0,
    }


def pairs(
    reference: Sequence[tuple[float, ...]], new: Sequence[tuple[float, ...]], threshold: float = MATCH_IOU
) -> list[tuple[int, int]]:
    """One-to-one pairs (reference index, new index) of boxes with IoU >= threshold, best overlap first."""
    overlaps = sorted(((iou(a, b), i, j) for i, a in enumerate(reference) for j, b in enumerate(new)), reverse=True)
    paired, used_reference, used_new = [], set(), set()
    for overlap, i, j in overlaps:
        if overlap >= threshold and i not in used_reference and j not in used_new:
            paired.append((i, j))
            used_reference.add(i)
            used_new.add(j)
    return paired


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
