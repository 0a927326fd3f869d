"""Indexing a video: its sampled frames stored chunk by chunk, their faces linked into tracks; by one task that hands
over to the next every VIDEO_SLICE_SECONDS or, for a long video, by a task for each of its stretches (stretches.py)."""

import dataclasses
import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q, QuerySet

from people import assignment, reindexing

from . import calibration, face_engine, inbox, shots, spans, stretches, tracks, vector_store, video, video_probe
from .dispatch import enqueue, enqueue_stretch
from .imaging import jpeg
from .models import Asset, Face, Frame, Stretch, Track
from .removal import drop_frames
from .storing import FRAME_SIDE, PREVIEW_SIDE, face_row, without_forgotten
from .video_probe import VideoInfo

logger = logging.getLogger(__name__)


def index_video(asset: Asset) -> int | None:
    """Index a video from where the last run stopped; returns its faces, or None while other tasks carry on.

    A fresh run of a video two stretches long or more splits it (stretches.py): each stretch gets a task, and the
    asset's next task, sent by the last stretch done, joins them. Other videos are sampled in order by one task at
    a time, which hands over to a new task after VIDEO_SLICE_SECONDS. Damage that costs only some frames (see
    video.sample_frames) is kept in the asset's warning.
    """
    info = _probe(asset)
    fps = settings.VIDEO_SAMPLE_FPS
    Asset.objects.filter(pk=asset.pk, frames_done=0).update(frames_total=video.expected_frames(info, fps))
    Asset.objects.filter(pk=asset.pk).update(duration=info.duration, width=info.width, height=info.height)
    if asset.stretches.exists():
        if stretches.send_unfinished(asset):
            return None
        return _join(asset, info)
    if not asset.frames_done and (parts := stretches.plan(info, fps, settings.VIDEO_STRETCH_SECONDS)):
        stretches.begin(asset, parts)
        return None
    return _index_in_order(asset, info)


def index_stretch(asset: Asset, stretch: Stretch) -> None:
    """Index one stretch of a long video from where its last run stopped; the last one done sends the join."""
    info, fps, path = _probe(asset), settings.VIDEO_SAMPLE_FPS, Path(asset.path)
    first = stretch.first_index
    last = asset.frames.filter(index__gte=first, index__lt=first + stretch.frames_done).order_by("-index").first()
    # Its first frame starts its first interval, which lies a little after `start` (see video.TIME_TOLERANCE).
    after = last.timestamp if last else (stretch.start - 3 * video.TIME_TOLERANCE if stretch.number else None)
    sampled = video.sample_frames(path, info, fps, after=after, probe_fps=spans.probe_fps(fps))
    frames = _within(sampled, stretch, fps, last.index + 1 if last else first)
    deadline = time.monotonic() + settings.VIDEO_SLICE_SECONDS
    try:
        while chunk := list(itertools.islice(frames, spans.chunk_frames(fps))):
            store_frames(asset, chunk, stretch)
            held = spans.held_probes(chunk)
            del chunk  # its frames and probes, before the next chunk's are decoded
            spans.settle(asset, path, info, frames=range(first, first + stretch.frames_done), held=held)
            del held
            if time.monotonic() > deadline:
                enqueue_stretch(stretch)  # outside a transaction, sent at once
                logger.info("asset %s: %s: slice over, a new task carries on", asset.pk, stretch.describe())
                return
        stretches.finish(stretch)
    except vector_store.VectorStoreUnavailable as error:
        stretches.retrying(stretch, error)
        raise
    except stretches.Superseded as superseded:
        logger.info("%s; this task stops", superseded)
    finally:
        sampled.close()
        stretches.keep_warnings(asset, sampled.warnings)


def _within(
    frames: Iterator[video.SampledFrame], stretch: Stretch, fps: float, first_index: int
) -> Iterator[video.SampledFrame]:
    """The sampled frames in the stretch's intervals, numbered from first_index; ffmpeg stops at the stretch's end."""
    begins = round(stretch.start * fps)
    ends = None if stretch.end is None else round(stretch.end * fps)
    index = first_index
    for frame in frames:
        interval = shots.interval(frame.timestamp, fps)
        if ends is not None and interval >= ends:
            return
        if interval >= begins:
            if index - stretch.first_index >= Stretch.FRAME_RANGE:
                raise video_probe.UnreadableVideo(
                    f"{stretch.describe()} samples more than {Stretch.FRAME_RANGE} frames: set"
                    " REVSEARCH_VIDEO_STRETCH_SECONDS lower, or 0 to index it in one piece"
                )
            yield dataclasses.replace(frame, index=index)
            index += 1


def _index_in_order(asset: Asset, info: VideoInfo) -> int | None:
    """One task at a time samples the video in order, from the frame after the last one stored."""
    fps = settings.VIDEO_SAMPLE_FPS
    # Frames past frames_done are an earlier run's, kept searchable until this run replaces them.
    last = asset.frames.filter(index__lt=asset.frames_done).order_by("-index").first()
    if last:
        logger.info("asset %s resumes after frame %d at %.2f s", asset.pk, last.index, last.timestamp)
    frames = video.sample_frames(
        Path(asset.path),
        info,
        fps,
        after=last.timestamp if last else None,
        first_index=last.index + 1 if last else 0,
        probe_fps=spans.probe_fps(fps),
    )
    earlier = asset.warning.splitlines()

    def keep_warnings() -> None:
        if frames.warnings:
            Asset.objects.filter(pk=asset.pk).update(warning="\n".join(earlier + frames.warnings))

    deadline = time.monotonic() + settings.VIDEO_SLICE_SECONDS
    try:
        while chunk := list(itertools.islice(frames, spans.chunk_frames(fps))):
            store_frames(asset, chunk)
            held = spans.held_probes(chunk)
            del chunk  # its frames and probes, before the next chunk's are decoded
            spans.settle(asset, Path(asset.path), info, held=held)
            del held
            keep_warnings()
            if time.monotonic() > deadline:
                enqueue(asset)  # outside a transaction, sent at once
                logger.info("asset %s: slice over, a new task carries on", asset.pk)
                return None
        keep_warnings()
        drop_frames(asset.frames.filter(index__gte=asset.frames_done))  # an earlier run's, past this run's end
        spans.settle(asset, Path(asset.path), info, finished=True, held=spans.held_probes([], frames.probes_at_end))
        Asset.objects.filter(pk=asset.pk).update(frames_total=asset.frames_done)  # shot cuts add to the estimate
    finally:
        frames.close()
        for warning in frames.warnings:
            logger.warning("asset %s: %s", asset.pk, warning)
    return asset.faces.count()


def store_frames(asset: Asset, frames: list[video.SampledFrame], stretch: Stretch | None = None) -> None:
    """Store one chunk of frames with their faces and vectors at once, so a crash never half-stores a chunk; a
    stretch's chunk counts towards the stretch (stretches.py)."""
    found = [without_forgotten(asset, faces) for faces in face_engine.find_faces_batch([f.image for f in frames])]
    model_name = face_engine.model_name()
    with transaction.atomic():
        if stretch is not None:
            stretches.hold(stretch)
        earlier = _earlier_run(asset, frames, stretch)
        remembered = reindexing.remember(Face.objects.filter(frame__in=earlier))
        drop_frames(earlier)
        rows: list[Face] = []
        faces: list[face_engine.Face] = []
        by_frame: list[list[Face]] = []
        for frame, frame_faces in zip(frames, found, strict=True):
            row = Frame(asset=asset, index=frame.index, timestamp=frame.timestamp)
            if frame_faces:
                row.thumbnail.save(f"asset{asset.pk}.jpg", ContentFile(jpeg(frame.image, FRAME_SIDE)), save=False)
            row.save()
            by_frame.append([face_row(asset, face, model_name, frame=row) for face in frame_faces])
            rows += by_frame[-1]
            faces += frame_faces
        changed = {"model_name": model_name}
        if not asset.preview and (stretch is None or stretch.number == 0):  # one preview, from the first frame
            asset.preview.save(f"asset{asset.pk}.jpg", ContentFile(jpeg(frames[0].image, PREVIEW_SIDE)), save=False)
            changed["preview"] = asset.preview.name
        if stretch is None:
            asset.frames_done = frames[-1].index + 1
        else:
            asset.frames_done = stretches.stored(stretch, frames[-1].index + 1 - stretch.first_index)
        Asset.objects.filter(pk=asset.pk).update(frames_done=asset.frames_done, **changed)
        # Frames sampled at shot cuts come on top of the grid's estimate: progress stays at most 100%.
        Asset.objects.filter(pk=asset.pk, frames_total__lt=asset.frames_done).update(frames_total=asset.frames_done)
        vector_store.insert(
            [
                vector_store.FaceVector(row.pk, face.embedding, asset.pk, asset.kind, cast(Frame, row.frame).timestamp)
                for row, face in zip(rows, faces, strict=True)
            ]
        )
        reindexing.restore(rows, remembered)
        vectors = {row.pk: face.embedding for row, face in zip(rows, faces, strict=True)}
        touched = _link_tracks(asset, frames, by_frame, vectors)
        assignment.assign_new_faces(rows, list(vectors.values()))
        assignment.unify_tracks(touched)
    logger.info("asset %s: frames %d-%d stored, %d faces", asset.pk, frames[0].index, frames[-1].index, len(faces))


def _earlier_run(asset: Asset, frames: list[video.SampledFrame], stretch: Stretch | None) -> QuerySet[Frame]:
    """The frames of an earlier run that this chunk replaces: the same indexes, and for a stretch also the same times
    (an earlier run numbered them otherwise); no frame of this run lies within a chunk's times but its own."""
    same = Q(index__in=[frame.index for frame in frames])
    if stretch is not None:
        tolerance = video.TIME_TOLERANCE
        same |= Q(timestamp__gte=frames[0].timestamp - tolerance, timestamp__lte=frames[-1].timestamp + tolerance)
    return asset.frames.filter(same)


def _link_tracks(asset: Asset, frames: list[video.SampledFrame], by_frame: list[list[Face]], vectors: dict) -> set[int]:
    """Link each frame's faces to those of the sampled frame before (the last chunk's, for the first frame);
    a face that continues none, or is in the first frame of a shot, starts its own track, its span settled later
    (spans.settle). Returns the tracks the chunk touched."""
    same_person = calibration.for_model(face_engine.model_name()).threshold
    before = list(Face.objects.filter(asset=asset, frame__index=frames[0].index - 1))
    stored = vector_store.vectors_of([face.pk for face in before]) if before else {}
    previous = [(face, tracks.TrackedFace(tuple(face.box), stored[face.pk])) for face in before if face.pk in stored]
    time_before = asset.frames.filter(index=frames[0].index - 1).values_list("timestamp", flat=True).first()
    touched: set[int] = set()
    for frame, frame_faces in zip(frames, by_frame, strict=True):
        if shots.is_cut(time_before, frame.timestamp, settings.VIDEO_SAMPLE_FPS):
            previous = []  # a new shot: whoever is in it came on screen at this frame
        time_before = frame.timestamp
        current = [tracks.TrackedFace(tuple(row.box), vectors[row.pk]) for row in frame_faces]
        links = tracks.link([tracked for _, tracked in previous], current, same_person)
        for row, link in zip(frame_faces, links, strict=True):
            row.track = row.pk if link is None else (previous[link][0].track or previous[link][0].pk)
            touched.add(row.track)
        previous = list(zip(frame_faces, current, strict=True))
    Face.objects.bulk_update([row for frame_faces in by_frame for row in frame_faces], ["track"])
    started = [row for frame_faces in by_frame for row in frame_faces if row.track == row.pk]
    Track.objects.bulk_create(
        Track(face=row, asset=asset, start=cast(Frame, row.frame).timestamp, end=cast(Frame, row.frame).timestamp)
        for row in started
    )
    return touched


def _join(asset: Asset, info: VideoInfo) -> int:
    """Make the stretches one run: frames renumbered in time order, tracks linked across each boundary as within a
    stretch, stray vectors of interrupted stretches deleted, then every edge left open at the boundaries settled."""
    with transaction.atomic():
        boundaries = stretches.renumber(asset)
        touched = _link_boundaries(asset, boundaries)
        assignment.unify_tracks(touched)
    logger.info("asset %s: %d stretches joined, %d tracks continue across them", asset.pk, len(boundaries) + 1,
                len(touched))  # fmt: skip
    stretches.drop_stray_vectors(asset)
    spans.settle(asset, Path(asset.path), info, finished=True)
    return asset.faces.count()


def _link_boundaries(asset: Asset, boundaries: list[int]) -> set[int]:
    """At each stretch's first frame, the faces that continue a face of the frame before (the stretch before's last)
    join its track, which then ends where theirs ends; returns the tracks that grew."""
    same_person = calibration.for_model(face_engine.model_name()).threshold
    grown: set[int] = set()
    for index in boundaries:
        times = dict(asset.frames.filter(index__in=[index - 1, index]).values_list("index", "timestamp"))
        if len(times) < 2 or shots.is_cut(times[index - 1], times[index], settings.VIDEO_SAMPLE_FPS):
            continue  # a new shot begins at the boundary: no track crosses it
        before = list(Face.objects.filter(asset=asset, frame__index=index - 1))
        after = list(Face.objects.filter(asset=asset, frame__index=index))
        vectors = vector_store.vectors_of([face.pk for face in before + after]) if before and after else {}
        before, after = [f for f in before if f.pk in vectors], [f for f in after if f.pk in vectors]
        links = tracks.link(
            [tracks.TrackedFace(tuple(face.box), vectors[face.pk]) for face in before],
            [tracks.TrackedFace(tuple(face.box), vectors[face.pk]) for face in after],
            same_person,
        )
        for face, link in zip(after, links, strict=True):
            if link is None:
                continue
            track, continued = before[link].track or before[link].pk, face.track or face.pk
            Face.objects.filter(asset=asset, track=continued).update(track=track)
            Track.objects.filter(pk=continued).delete()
            Track.objects.filter(pk=track).update(end_settled=False)
            grown.add(track)
    return grown


def _probe(asset: Asset) -> VideoInfo:
    # ffmpeg opens the file by its name: it is checked just before, as a photo's open descriptor is.
    with inbox.open_inside(Path(asset.path), inbox.inbox_of(Path(asset.path))):
        return video_probe.probe(Path(asset.path))
