"""Track spans: when each person is on screen in a video, to a fraction of the sampling interval.

A track runs from its first sampled frame to its last, so its true edges lie in the stretches between those frames
and the sampled frames around them. An edge at a shot cut is exact: a track whose first frame was sampled for a cut
starts there, and one whose next sampled frame is a cut ends there. Any other edge (someone walks in or out, the
video ends) is refined from probe frames across its stretch, REFINE_FPS of them a second, bisecting on whether the
frame holds a face of the track (one found around the edge's box, face_engine.detect_around, that is the same
person): a few looks place it to within half a probe interval. Edges are settled chunk by chunk, as soon as they
are known, so that a video's last chunk has no more left than any other, and whatever a killed run left open is
settled by the next one.

The probe frames are decoded with the sampled frames, in the same pass of ffmpeg (video.sample_frames' probe_fps),
and held with the chunk they precede: a chunk's edges need no second decoding. Only what a chunk does not hold (the
edges a killed run left open, those at the joins of a video's stretches) is decoded again.
"""

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q

from . import calibration, face_engine, shots, tracks, vector_store, video
from .models import Asset, Face, Frame, Track
from .video_probe import UnreadableVideo, VideoInfo

logger = logging.getLogger(__name__)

# Frames a second decoded in a stretch being refined: an edge lands within half of 1/REFINE_FPS of the truth. At 8,
# refining cost 35-45% more than at 4, for edges 0.025 s off on average instead of 0.042 (docs/performance.md).
REFINE_FPS = 4.0
# At most this many probe frames of one stretch are held at once (a long sampling interval is probed more coarsely).
MAX_PROBES = 16
# Stretches less than this many seconds apart are decoded in one pass of ffmpeg: starting it and seeking (which
# decodes from the keyframe before) cost more than decoding a few seconds on (docs/performance.md, "Moments").
ONE_PASS_GAP = 5.0

# Probe frames held while sampling, by the time of the sampled frame they follow (rounded: see held_probes).
HeldProbes = Mapping[float, Sequence[video.ProbeFrame]]


def probe_fps(sample_fps: float) -> float | None:
    """The rate to decode probe frames at while sampling: REFINE_FPS, or less where a sampling interval would hold more
    than MAX_PROBES; None when edges are not refined."""
    return min(REFINE_FPS, MAX_PROBES * sample_fps) if settings.VIDEO_REFINE_EDGES else None


def chunk_frames(sample_fps: float) -> int:
    """Sampled frames stored together: REVSEARCH_VIDEO_CHUNK_FRAMES, or fewer where a long sampling interval brings
    more probe frames each, so that a chunk never holds more probes than it does at one sample a second (at 0.25 a
    second, 16 probes come with each frame: a chunk of 8 would hold 128, 800 MB at 1080p)."""
    rate = probe_fps(sample_fps)
    if rate is None:
        return settings.VIDEO_CHUNK_FRAMES
    probes_each = math.ceil(rate / sample_fps - 1e-9)
    budget = settings.VIDEO_CHUNK_FRAMES * math.ceil(REFINE_FPS)
    return max(1, min(settings.VIDEO_CHUNK_FRAMES, budget // probes_each))


def held_probes(
    frames: Iterable[video.SampledFrame], at_end: tuple[float | None, Sequence[video.ProbeFrame]] | None = None
) -> dict[float, Sequence[video.ProbeFrame]]:
    """The probe frames that came with sampled frames (and with the end of the video), by the sampled frame before
    them; times are rounded to the millisecond, as no two frames are that close."""
    pairs: list[tuple[float | None, Sequence[video.ProbeFrame]]] = [
        (frame.probes_after, frame.probes) for frame in frames
    ]
    if at_end is not None:
        pairs.append(at_end)
    return {round(after, 3): probes for after, probes in pairs if after is not None}


@dataclass(frozen=True, eq=False)
class Edge:
    """One edge to refine: the person is seen at one end of the stretch [after, before] and not at the other.

    start edges: not seen at `after` (the sampled frame before), seen at `before`; end edges: the other way round.
    `before` may be the video's end rather than a frame. box and vector are of the track's face next to the edge.
    """

    track: int
    starts: bool
    after: float
    before: float
    box: tuple[float, ...]
    vector: np.ndarray


Stretch = tuple[float, float]


def refine(
    path: Path, info: VideoInfo, edges: Sequence[Edge], same_person: float, held: HeldProbes | None = None
) -> dict[tuple[int, bool], float]:
    """Each edge's time (seconds from the first frame), by track and kind; edges of one stretch share its frames,
    which come from `held` where it has them (held_probes) and are decoded otherwise."""
    stretches: dict[Stretch, list[Edge]] = defaultdict(list)
    for edge in edges:
        stretches[(edge.after, edge.before)].append(edge)
    found: dict[tuple[int, bool], float] = {}
    passes: list[list[Stretch]] = []
    for stretch in sorted(stretches):
        after, before = stretch
        if held is not None and (probes := held.get(round(after, 3))) is not None:
            inside = [probe for probe in probes if after + shots.TOLERANCE < probe.timestamp < before - shots.TOLERANCE]
            found |= _bisect(inside, after, before, stretches[stretch], same_person)
        elif passes and after - passes[-1][-1][1] < ONE_PASS_GAP:
            passes[-1].append(stretch)
        else:
            passes.append([stretch])
    for one_pass in passes:
        for stretch, probes in _probes(path, info, one_pass):
            found |= _bisect(probes, *stretch, stretches[stretch], same_person)
    return found


def _probes(path: Path, info: VideoInfo, stretches: list[Stretch]) -> Iterator[tuple[Stretch, list[video.ProbeFrame]]]:
    """Each stretch (in order, apart) with its frames strictly inside, about 1/REFINE_FPS apart, from one pass
    of ffmpeg; a stretch that cannot be decoded has none. Only one stretch's frames are held at a time."""
    rate = min(REFINE_FPS, MAX_PROBES / max(max(before - after for after, before in stretches), 1e-6))
    waiting = iter(stretches)
    current: Stretch | None = next(waiting)
    probes: list[video.ProbeFrame] = []
    frames = video.sample_frames(path, info, rate, after=stretches[0][0])
    try:
        for frame in frames:
            while current is not None and frame.timestamp >= current[1] - shots.TOLERANCE:
                yield current, probes
                current, probes = next(waiting, None), []
            if current is None:
                break
            if frame.timestamp > current[0] + shots.TOLERANCE:
                probes.append(video.ProbeFrame(frame.timestamp, frame.image))
    except UnreadableVideo as error:
        logger.warning("%s: stretches from %.2f s could not be decoded, their edges stay unrefined: %s",
                       path, current[0] if current else stretches[0][0], error)  # fmt: skip
    finally:
        frames.close()
    while current is not None:  # the video ended first, or its decoding failed
        yield current, probes
        current, probes = next(waiting, None), []


def _bisect(
    probes: Sequence[video.ProbeFrame], after: float, before: float, edges: list[Edge], same_person: float
) -> dict[tuple[int, bool], float]:
    """Bisect every edge of one stretch at once; each round's probes are looked at together.

    Positions 0 and len(probes) + 1 are the stretch's ends, whose answer is known; an edge ends up between the
    last position on its near side and the first on its far side, and is put halfway between their times.
    """
    times = [after, *(probe.timestamp for probe in probes), before]
    # [low, high): low is on the side where the track is not (start edges) or is (end edges).
    bounds = {edge: [0, len(times) - 1] for edge in edges}
    while todo := [(edge, (low + high) // 2) for edge, (low, high) in bounds.items() if high - low > 1]:
        images = [probes[position - 1].image for _, position in todo]
        for (edge, position), seen in zip(todo, _seen(images, [edge for edge, _ in todo], same_person), strict=True):
            bounds[edge][0 if seen != edge.starts else 1] = position
    return {(edge.track, edge.starts): (times[low] + times[high]) / 2 for edge, (low, high) in bounds.items()}


def _seen(images: list[PIL.Image.Image], edges: list[Edge], same_person: float) -> list[bool]:
    """Whether each image holds its edge's face: one found near the edge's box, looking in that part of the image
    alone (face_engine.detect_around), that is the same person. The candidates are embedded together."""
    found = face_engine.detect_around(images, [edge.box for edge in edges])
    near = [
        [detection for detection in detections if tracks.near(detection[0], edge.box)]
        for detections, edge in zip(found, edges, strict=True)
    ]
    faces = face_engine.embed_faces(images, near)
    return [_holds(candidates, edge, same_person) for candidates, edge in zip(faces, edges, strict=True)]


def _holds(found: Iterable[face_engine.Face], edge: Edge, same_person: float) -> bool:
    """Whether a probe frame holds a face of the edge's track: a box near the edge's and the same person."""
    here = [tracks.TrackedFace(face.box, face.embedding) for face in found]
    return tracks.link([tracks.TrackedFace(edge.box, edge.vector)], here, same_person) != [None] * len(here)


def settle(
    asset: Asset,
    path: Path,
    info: VideoInfo,
    finished: bool = False,
    frames: range | None = None,
    held: HeldProbes | None = None,
) -> int:
    """Give the asset's open tracks every edge known by now; returns how many were placed between sampled frames.

    A start is known once the track exists; an end once the sampled frame after its last face is stored (or, with
    `finished`, the video has no more). Edges at shot cuts and at the first frame need no decoding; the others
    are refined (REVSEARCH_VIDEO_REFINE_EDGES), from the probe frames `held` where it has them, or put halfway
    between the two sampled frames. `frames` limits it to the tracks that begin in one stretch's frames
    (stretches.py): a track at either end of those stays open there, for the join.
    """
    started = time.monotonic()
    frames = frames if frames is not None else range(asset.frames_done)
    open_tracks = list(
        Track.objects.filter(asset=asset, face__frame__index__gte=frames.start, face__frame__index__lt=frames.stop)
        .filter(Q(start_settled=False) | Q(end_settled=False))
        .select_related("face__frame")
    )
    if not open_tracks:
        return 0
    first_frame, done, fps = frames.start, frames.stop, settings.VIDEO_SAMPLE_FPS
    last_index = dict(
        Face.objects.filter(
            track__in=[track.pk for track in open_tracks], frame__index__gte=first_frame, frame__index__lt=done
        )
        .values_list("track")
        .annotate(last=Max("frame__index"))
    )
    at_last = Q(pk__in=[])
    for track_id, index in last_index.items():
        at_last |= Q(track=track_id, frame__index=index)
    last_faces = {face.track: face for face in Face.objects.filter(at_last, asset=asset).select_related("frame")}
    needed = {track.face.frame.index - 1 for track in open_tracks if track.face.frame}
    needed |= {index + 1 for index in last_index.values()}
    times = dict(
        Frame.objects.filter(asset=asset, index__in=needed, index__gte=first_frame, index__lt=done).values_list(
            "index", "timestamp"
        )
    )
    pending: list[tuple[Track, bool, float, float, Face]] = []  # track, starts, after, before, the face beside it
    for track in open_tracks:
        first, last = track.face, last_faces.get(track.pk)
        if first.frame is None or last is None or last.frame is None:
            continue  # its faces are being replaced by a new run's
        begins, ends = first.frame, last.frame
        if not track.start_settled:
            # At a stretch's first frame (not the video's), the frame before is another stretch's: left to the join.
            track.start, track.start_settled = begins.timestamp, begins.index > first_frame or first_frame == 0
            before = times.get(begins.index - 1)
            if before is not None and not shots.is_cut(before, begins.timestamp, fps):
                pending.append((track, True, before, begins.timestamp, first))
        track.end = ends.timestamp
        following = times.get(ends.index + 1)
        if following is not None and shots.is_cut(ends.timestamp, following, fps):
            track.end, track.end_settled = following, True
        elif following is not None or (finished and ends.index == done - 1):
            track.end_settled = True
            end = following if following is not None else max(info.duration, ends.timestamp)
            pending.append((track, False, ends.timestamp, end, last))
    placed = _place(path, info, pending, held)
    for track, starts, *_ in pending:
        if starts:
            track.start = placed[(track.pk, True)]
        else:
            track.end = placed[(track.pk, False)]
    with transaction.atomic():
        Track.objects.bulk_update(open_tracks, ["start", "end", "start_settled", "end_settled"])
    if pending:
        logger.info("asset %s: %d track edges placed in %.2f s", asset.pk, len(pending), time.monotonic() - started)
    return len(pending)


def _place(
    path: Path, info: VideoInfo, pending: list[tuple[Track, bool, float, float, Face]], held: HeldProbes | None
) -> dict[tuple[int, bool], float]:
    """The edges' times: refined by decoding, else (refinement off, or a face without its vector) halfway across."""
    placed = {(track.pk, starts): (after + before) / 2 for track, starts, after, before, _ in pending}
    if not pending or not settings.VIDEO_REFINE_EDGES:
        return placed
    vectors = vector_store.vectors_of([face.pk for *_, face in pending])
    edges = [
        Edge(track.pk, starts, after, before, tuple(face.box), vectors[face.pk])
        for track, starts, after, before, face in pending
        if face.pk in vectors
    ]
    same_person = calibration.for_model(face_engine.model_name()).threshold
    return placed | refine(path, info, edges, same_person, held)
