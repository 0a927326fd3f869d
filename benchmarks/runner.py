"""`manage.py benchmark`: how fast this machine indexes and searches, measured the way a user meets it.

Every figure comes from a fresh service in a temporary home (`Instance`, as `make run` runs it), from this process
doing a worker's work in-process, or from Milvus servers and scratch databases of the benchmark's own: the archive
is never touched.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings

from benchmarks import soak
from benchmarks.ceiling import ceiling_lines, ceilings
from benchmarks.detectors import detector_lines, detector_recall
from benchmarks.long_video import long_video
from benchmarks.machine import machine
from benchmarks.milvus_alone import milvus_latency
from benchmarks.moments import moments_accuracy
from benchmarks.people_page import page_scale
from benchmarks.people_scale import assign_cost, cluster_scale
from benchmarks.photos import STAGE_PHOTOS, end_to_end, stage_times
from benchmarks.search_speed import search_latency
from benchmarks.stretched_video import stretched_video
from benchmarks.track_vectors import track_vectors, track_vectors_lines
from benchmarks.versus import versus_face_recognition
from benchmarks.videos import reference_videos, video_speed

logger = logging.getLogger(__name__)

Say = Callable[[str], None]

SECTIONS = (
    "stages", "photos", "search", "video", "ceiling", "detectors", "stretched_video", "moments", "track_vectors",
    "milvus", "versus", "people_assign", "people_cluster", "people_page",
)  # fmt: skip
# Sections run only when named in --only: they take long (an hour of video takes minutes to build and to index).
ON_REQUEST = ("long_video",)
# Sections that index LFW photos.
PHOTO_SECTIONS = {"stages", "photos", "search", "people_assign"}


@dataclass
class Report:
    machine: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    photos: list[dict] = field(default_factory=list)
    search: dict = field(default_factory=dict)
    video: list[dict] = field(default_factory=list)
    ceiling: list[dict] = field(default_factory=list)
    detectors: dict = field(default_factory=dict)
    stretched_video: list[dict] = field(default_factory=list)
    moments: dict = field(default_factory=dict)
    track_vectors: dict = field(default_factory=dict)
    milvus: list[dict] = field(default_factory=list)
    versus: dict = field(default_factory=dict)
    people_assign: dict = field(default_factory=dict)
    people_cluster: dict = field(default_factory=dict)
    people_page: dict = field(default_factory=dict)
    long_video: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def run(
    sections: tuple[str, ...] = SECTIONS,
    photos: int = 1000,
    workers: tuple[int, ...] = (1, 2),
    search_faces: int = 100_000,
    searches: int = 50,
    vector_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000),
    vector_server: str = "standalone",
    lfw: Path | None = None,
    people_faces: int = 100_000,
    people: int = 10_000,
    assign_rounds: int = 2,
    video_minutes: int = 60,
    photo_batches: tuple[int, ...] = (),
    video_databases: tuple[str, ...] = ("sqlite",),
    say: Say = print,
) -> Report:
    """Every section asked for, in an order that keeps each measurement alone on the machine."""
    lfw = lfw or settings.DATA_DIR / "lfw"
    started = time.perf_counter()
    report = Report(machine=machine())
    dropped, queries = soak.pick_photos(lfw, photos) if PHOTO_SECTIONS & set(sections) else ([], [])
    if "stages" in sections:
        report.stages = stage_times(dropped[:STAGE_PHOTOS], say)
    if "versus" in sections:
        report.versus = versus_face_recognition(lfw, say)
    if "video" in sections:
        report.video = [video_speed(label, path, say) for label, path in reference_videos().items()]
    if "ceiling" in sections:
        report.ceiling = ceilings(say)
    if "detectors" in sections:
        report.detectors = detector_recall(say)
    if "stretched_video" in sections:
        report.stretched_video = stretched_video(say, databases=video_databases)
    if "moments" in sections:
        report.moments = moments_accuracy(say)
    if "track_vectors" in sections:
        report.track_vectors = track_vectors(say)
    if {"photos", "search"} & set(sections):
        counts = workers if "photos" in sections else workers[-1:]
        # REVSEARCH_PHOTO_BATCH of each photos run: several, to compare them in one run (the last one is searched).
        batches = photo_batches if "photos" in sections and photo_batches else (settings.PHOTO_BATCH,)
        for count, batch in [(count, batch) for count in counts for batch in batches]:
            last = (count, batch) == (counts[-1], batches[-1])
            then = (lambda instance: search_latency(instance, queries, search_faces, searches, say)) if last else None
            env = {"REVSEARCH_PHOTO_BATCH": str(batch)}
            figures, search = end_to_end(dropped, lfw, count, say, then=then if "search" in sections else None, env=env)
            if "photos" in sections:
                report.photos.append(figures | {"photo_batch": batch})
            if search:
                report.search = search
    if "milvus" in sections:
        report.milvus = milvus_latency(vector_sizes, vector_server, say)
    if "people_assign" in sections:
        report.people_assign = assign_cost(dropped, lfw, workers[-1], say, rounds=assign_rounds)
    if "people_cluster" in sections:
        report.people_cluster = cluster_scale(people_faces, say)
    if "people_page" in sections:
        report.people_page = page_scale(people, say)
    if "long_video" in sections:
        report.long_video = long_video(video_minutes, say)
    report.seconds = round(time.perf_counter() - started, 1)
    return report


def summary_lines(report: Report) -> list[str]:
    """The report as the table rows of docs/performance.md say it."""
    lines = [
        f"machine: {report.machine.get('cpu')}, {report.machine.get('cores')} cores,"
        f" {report.machine.get('memory_gib')} GiB; {report.machine.get('face_model')}"
    ]
    if report.stages:
        stages = report.stages["ms_per_photo"]
        lines.append(
            "per photo (one process): "
            + ", ".join(f"{stage} {ms} ms" for stage, ms in stages.items())
            + f"; embed {report.stages['embed_ms_per_face']} ms a face"
        )
    for run in report.photos:
        lines.append(
            f"end to end, {run['workers']} worker(s), {run.get('photo_batch')} photo(s) a task:"
            f" {run['photos_per_second']} photos/s, {run['seconds']} s"
        )
        lines.append(
            "  peak memory: "
            + ", ".join(f"{p['name']} {p['peak_rss_mb']:.0f} MB" for p in run["processes"] if p["peak_rss_mb"] > 5)
        )
    if report.search:
        latency = report.search["latency_ms"]
        lines.append(
            f"search end to end over {report.search['faces']:,} faces: p50 {latency.get('p50')} ms,"
            f" p95 {latency.get('p95')} ms"
        )
    for run in report.video:
        line = f"video {run['label']} ({run['size']}): {run['realtime_factor']}x real time ({run.get('precision')})"
        if versus := run.get("versus_reference"):
            line += (
                f"; in float32 {versus['float32']['realtime_factor']}x against the reference pipeline's"
                f" {versus['reference']['realtime_factor']}x ({versus['speedup']}x as fast), finding"
                f" {100 * versus['recall']:.1f}% of its {versus['reference_faces']} faces"
            )
        lines.append(line)
    lines += ceiling_lines(report.ceiling)
    lines += detector_lines(report.detectors)
    for run in report.stretched_video:
        lines.append(
            f"video {run['label']} through a service with {run['workers']} workers ({run['video_seconds']:.0f} s,"
            f" {run.get('database', 'sqlite')}):"
            f" {run['stretches']['realtime_factor']}x real time in stretches of {run['stretch_seconds']} s, against"
            f" {run['one_piece']['realtime_factor']}x in one piece ({run['speedup']}x as fast); same frames and faces:"
            f" {run['same_frames_and_faces']}"
        )
    for label, run in report.moments.items():
        before, refined = run["before"], run["refined"]
        lines.append(
            f"moments {label}: edges {before['mean_error']} s mean, {before['max_error']} s max before ->"
            f" {refined['mean_error']} s mean, {refined['max_error']} s max (target 0.25 s; missed"
            f" {refined['missed']}); placing them {refined['settle_share_of_video']} of the video's length,"
            f" indexing {refined['over_midpoints_seconds']} s longer than with edges halfway"
        )
    lines += track_vectors_lines(report.track_vectors)
    for run in report.milvus:
        lines.append(
            f"Milvus {run['server']} at {run['vectors']:,}: p50 {run['p50_ms']} ms, p95 {run['p95_ms']} ms,"
            f" recall@20 {run['recall_at_20']}"
        )
    if report.versus:
        lines.append(
            f"versus face_recognition: {report.versus['time_ratio']}x faster, accuracy"
            f" {report.versus['ours']['accuracy']} vs {report.versus['face_recognition']['accuracy']}; at this"
            f" processor's peak at most {report.versus['ceiling']['time_ratio_at_most']}x (target"
            f" {report.versus['ceiling']['target_time_ratio']:g}x)"
        )
    lines += people_lines(report)
    if long := report.long_video:
        lines.append(
            f"long video ({long['video_seconds'] // 60} min of 1080p, 1 worker): {long['realtime_factor']}x real time,"
            f" worker peak memory {long['worker_peak_rss_mb']:.0f} MB (target at most 1536 MB)"
        )
    lines.append(f"whole benchmark: {report.seconds:.0f} s")
    return lines


def people_lines(report: Report) -> list[str]:
    """The people sections, against the targets of issue 16."""
    lines = []
    if assign := report.people_assign:
        lines.append(
            f"assigning faces as they are stored: {assign['on_photos_per_second']} photos/s on,"
            f" {assign['off_photos_per_second']} off ({assign['workers']} worker(s), {assign['photos']} photos):"
            f" {100 * assign['slowdown']:.1f}% slower (target at most {100 * assign['target_slowdown']:.0f}%);"
            f" CPU a photo {assign['on_cpu_ms_per_photo']} ms on, {assign['off_cpu_ms_per_photo']} ms off"
        )
    if cluster := report.people_cluster:
        lines.append(
            f"cluster_faces --full on {cluster['mix']['faces']:,} faces: {cluster['seconds']} s on {cluster['cores']}"
            f" cores (target {cluster['target_seconds']} s at 100,000); "
            + ", ".join(f"{stage} {seconds} s" for stage, seconds in cluster["stages"].items())
        )
    if page := report.people_page:
        lines.append(
            f"people page with {page['data']['people']:,} people: median {page['median_ms']} ms,"
            f" {page['queries']} queries (target under {page['target_ms']} ms)"
        )
    return lines
