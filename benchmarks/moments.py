"""Moments: how far a search's moment edges are from the truth, and what placing them costs at indexing.

Each video is indexed in-process four ways, one after the other, in a scratch database and Milvus Lite:
- before: the 1 fps grid only; moments are runs of the sampled frames near the query (edges off by up to a second);
- midpoints: shot-cut frames sampled too, spans from tracks, an edge not at a cut put halfway between its frames;
- refined: the same, each such edge refined from the probe frames decoded with the sampled ones (the default);
- refined_8fps: the same with probes twice as dense (spans.REFINE_FPS 8, the default before): its cost and gain.
A refined run's cost is its indexing time beyond the midpoint run's: its probes are decoded while sampling, so the
time spent placing edges (settling) is only part of it. Then the refined edges of the query's moments alone are
placed again from the midpoint run's tracks, decoding their stretches, as a search would have to if refinement
waited for a search: that is the search-time cost.

The truth: the Hamilton clip's rows for Lin-Manuel Miranda (data/annotations/video_segments.csv) and the
appearances of the generated video (benchmarks/moment_video.py).
"""

import contextlib
import csv
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from django.conf import settings
from django.test import override_settings
from PIL import Image

from benchmarks import moment_video
from benchmarks.people_scale import scratch_archive
from media_index import calibration, face_engine, indexing, shots, spans, vector_store, video_probe
from media_index.models import Asset, Face, Track
from search import services

logger = logging.getLogger(__name__)

Say = Callable[[str], None]
TARGET_SECONDS = 0.25
MODES = ("before", "midpoints", "refined", "refined_8fps")


def moments_accuracy(say: Say, data: Path | None = None) -> dict:
    """Edge errors against the truth for each video and mode, and the cost of placing the edges."""
    data = data or settings.DATA_DIR
    face_engine.load()
    with tempfile.TemporaryDirectory(prefix="revsearch-benchmark-moments-") as name:
        folder = Path(name)
        generated = moment_video.build(data / "lfw", folder / "generated.mp4")
        videos = {
            "hamilton": (data / "face_recognition" / "examples" / "short_hamilton_clip.mp4",
                         data / "face_recognition" / "examples" / "lin-manuel-miranda.png", hamilton_truth(data)),
            "generated": (generated.path, generated.query, generated.appearances),
        }  # fmt: skip
        with scratch_archive(), override_settings(PEOPLE_ASSIGN_ON_INDEX=False):
            return {label: _measure(label, *video, folder, say) for label, video in videos.items()}


def hamilton_truth(data: Path) -> list[tuple[float, float]]:
    """Miranda's on-screen stretches in the Hamilton clip, seconds from its first frame."""
    with (data / "annotations" / "video_segments.csv").open() as rows:
        return [
            (float(row["start_from_first_frame_s"]), float(row["end_from_first_frame_s"]))
            for row in csv.DictReader(rows)
            if row["video"].endswith("short_hamilton_clip.mp4") and row["person"] == "Lin-Manuel Miranda"
        ]


def _measure(label: str, path: Path, query: Path, truth: list, folder: Path, say: Say) -> dict:
    info = video_probe.probe(path)
    embedding = services.find_query_faces(Image.open(query).convert("RGB"))[0].embedding
    scale = calibration.for_model(face_engine.model_name())
    figures: dict = {"video_seconds": round(info.duration, 2), "truth": truth}
    assets = {}
    for mode in MODES:
        copy = Path(shutil.copy(path, folder / f"{label}-{mode}{path.suffix}"))
        with _mode(mode), _timed_settle() as settle_seconds:
            started = time.perf_counter()
            assets[mode] = _index(copy)
            seconds = time.perf_counter() - started
        moments = _before_moments if mode == "before" else _moments
        found = moments(embedding, assets[mode], scale)
        figures[mode] = errors(found, truth) | {
            "index_seconds": round(seconds, 2),
            "settle_seconds": round(settle_seconds[0], 2),
            "settle_share_of_video": round(settle_seconds[0] / info.duration, 3),
            "sampled_frames": assets[mode].frames.count(),
        }
        if mode.startswith("refined"):  # what refining costs in all: its probes are decoded while sampling
            figures[mode]["over_midpoints_seconds"] = round(seconds - figures["midpoints"]["index_seconds"], 2)
        say(f"moments {label} {mode}: {_line(figures[mode])}")
    figures["search_time"] = _search_time(embedding, assets["midpoints"], scale, info, truth)
    say(f"moments {label} refined at search time: {_line(figures['search_time'])}")
    return figures


@contextlib.contextmanager
def _mode(mode: str) -> Iterator[None]:
    """Settings and the scene threshold for one way of indexing."""
    threshold, rate = shots.SCENE_THRESHOLD, spans.REFINE_FPS
    shots.SCENE_THRESHOLD = 2.0 if mode == "before" else threshold  # above any score: the grid only
    spans.REFINE_FPS = 8.0 if mode == "refined_8fps" else rate
    try:
        with override_settings(VIDEO_REFINE_EDGES=mode.startswith("refined")):
            yield
    finally:
        shots.SCENE_THRESHOLD, spans.REFINE_FPS = threshold, rate


@contextlib.contextmanager
def _timed_settle() -> Iterator[list[float]]:
    """Seconds spent placing track edges (spans.settle) while the block runs."""
    total = [0.0]
    original = spans.settle

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started

    spans.settle = timed
    try:
        yield total
    finally:
        spans.settle = original


def _index(path: Path) -> Asset:
    status = path.stat()
    asset = Asset.objects.create(path=str(path), sha256=path.name, kind=Asset.Kind.VIDEO, size=status.st_size,
                                 mtime=status.st_mtime)  # fmt: skip
    indexing.index_asset(asset.pk)
    return Asset.objects.get(pk=asset.pk)


def _moments(embedding: np.ndarray, asset: Asset, scale) -> list[tuple[float, float]]:
    return [(moment.start, moment.end) for moment in services.video_moments(embedding, asset, scale)]


def _before_moments(embedding: np.ndarray, asset: Asset, scale) -> list[tuple[float, float]]:
    """What search showed before spans: runs of the sampled frames called the same person (gaps of one frame)."""
    hits = vector_store.search(embedding, asset.faces.count(), asset_id=asset.pk)
    near = sorted({hit.timestamp for hit in hits if scale.same_person(hit.distance)})
    return [(run[0], run[-1]) for run in services.runs(near, lambda timestamp: timestamp)]


def _search_time(embedding: np.ndarray, asset: Asset, scale, info, truth: list) -> dict:
    """Refine only the query's moments' tracks, from the midpoint run's state, timed as a search would wait."""
    hits = vector_store.search(embedding, asset.faces.count(), asset_id=asset.pk)
    near = [hit.face_id for hit in hits if scale.same_person(hit.distance)]
    ids = {face.track or face.pk for face in Face.objects.filter(pk__in=near)}
    Track.objects.filter(pk__in=ids).update(start_settled=False, end_settled=False)
    started = time.perf_counter()
    with override_settings(VIDEO_REFINE_EDGES=True):
        edges = spans.settle(asset, Path(asset.path), info, finished=True)
    seconds = time.perf_counter() - started
    return errors(_moments(embedding, asset, scale), truth) | {
        "tracks": len(ids), "edges": edges, "search_seconds": round(seconds, 2)
    }  # fmt: skip


def errors(found: list[tuple[float, float]], truth: list[tuple[float, float]]) -> dict:
    """Each true stretch against the found moment overlapping it most: start and end errors, and what is missed
    (no moment overlaps it) or extra (a moment overlapping no true stretch)."""
    edge_errors, missed = [], 0
    for start, end in truth:
        overlaps = [(min(end, b) - max(start, a), a, b) for a, b in found if min(end, b) >= max(start, a)]
        if not overlaps:
            missed += 1
            continue
        _, a, b = max(overlaps)
        edge_errors += [abs(a - start), abs(b - end)]
    extra = sum(1 for a, b in found if not any(min(end, b) >= max(start, a) for start, end in truth))
    return {
        "moments": [(round(a, 3), round(b, 3)) for a, b in found],
        "mean_error": round(float(np.mean(edge_errors)), 3) if edge_errors else None,
        "max_error": round(float(np.max(edge_errors)), 3) if edge_errors else None,
        "within_target": bool(edge_errors) and max(edge_errors) <= TARGET_SECONDS and not missed,
        "missed": missed,
        "extra": extra,
    }


def _line(figures: dict) -> str:
    parts = [f"edges {figures['mean_error']} s mean, {figures['max_error']} s max"]
    parts.append(f"missed {figures['missed']}, extra {figures['extra']}")
    if "index_seconds" in figures:
        parts.append(
            f"indexed in {figures['index_seconds']} s ({figures['sampled_frames']} frames), placing edges"
            f" {figures['settle_seconds']} s = {figures['settle_share_of_video']} of the video's length"
        )
    if "over_midpoints_seconds" in figures:
        parts.append(f"indexing {figures['over_midpoints_seconds']} s longer than with edges halfway")
    if "search_seconds" in figures:
        parts.append(f"{figures['edges']} edges of {figures['tracks']} tracks in {figures['search_seconds']} s")
    return "; ".join(parts)
