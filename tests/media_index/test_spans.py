"""Tracks and their spans: shot cuts, edges refined between sampled frames, chunks, slices and runs cut short.

Most tests index a drawn video whose "people" are coloured squares, with a face engine that finds them by colour,
so that every edge is known to the frame; the last one indexes benchmarks/moment_video.py's video of LFW photos
with the real face engine and checks the moments a search shows against its truth.
"""

import contextlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media_index import (
    face_engine,
    face_weights,
    indexing,
    intake,
    shots,
    spans,
    tracks,
    video,
    video_indexing,
    video_probe,
)
from media_index.models import Asset, Face, Track
from search import services
from tests.conftest import DATA_DIR

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

FPS = 25
# The drawn video (320x240, 25 fps, 12 s): square A from 1.32 s until the cut at 5.04 s (a new background covers
# it), square B from that cut until 7.48 s (mid-shot), square A again from 9.20 s to the end. The squares are too
# small for a scene cut when they come or go. Spans run from the first frame shown to the end of the last one.
DRAWN = {"A": [(1.32, 5.04), (9.20, 12.0)], "B": [(5.04, 7.48)]}
CUT = 5.04
COLOURS = {"A": (255, 255, 255), "B": (255, 0, 0)}
VECTORS = {name: np.eye(512, dtype=np.float32)[number] for number, name in enumerate(COLOURS)}
# Refined edges land halfway between two probes 1/REFINE_FPS apart: within half of that and a frame of the truth.
TOLERANCE = 1 / (2 * spans.REFINE_FPS) + 1 / FPS


def drawn_video(path: Path) -> Path:
    boxes = [
        "drawbox=x=60:y=80:w=40:h=40:color=white:t=fill:enable='between(t,1.30,12)'",
        f"drawbox=x=0:y=0:w=iw:h=ih:color=0x303090:t=fill:enable='gte(t,{CUT - 0.02})'",
        "drawbox=x=200:y=100:w=40:h=40:color=red:t=fill:enable='between(t,5.02,7.47)'",
        "drawbox=x=60:y=80:w=40:h=40:color=white:t=fill:enable='between(t,9.18,12)'",
    ]
    source = f"color=c=black:s=320x240:r={FPS}:d=12," + ",".join(boxes)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source,
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def squares(image: Image.Image) -> list[tuple[str, tuple[float, float, float, float]]]:
    """The coloured squares in a frame, by name, with their boxes."""
    pixels = np.asarray(image, dtype=np.int16)
    found = []
    for name, colour in COLOURS.items():
        mask = (np.abs(pixels - np.array(colour)) < 60).all(axis=2)
        if mask.sum() > 400:
            rows, columns = np.nonzero(mask)
            found.append((name, (float(columns.min()), float(rows.min()), float(columns.max()), float(rows.max()))))
    return found


@pytest.fixture
def engine(monkeypatch):
    """Faces are the squares, each with its own vector; counts the frames searched."""
    searched = []

    def detect_faces(images, model=None):
        searched.extend(images)
        return [[(box, 0.99) for _, box in squares(image)] for image in images]

    def detect_around(images, boxes, model=None):
        searched.extend(images)
        return [
            [(box, 0.99) for _, box in squares(image) if tracks.near(box, around)]
            for image, around in zip(images, boxes, strict=True)
        ]

    def embed_faces(images, detections, model=None):
        faces = []
        for image, found in zip(images, detections, strict=True):
            named = {box: name for name, box in squares(image)}
            faces.append([
                face_engine.Face(box, p, VECTORS[named[box]], Image.new("RGB", (160, 160)))
                for box, p in found
            ])  # fmt: skip
        return faces

    monkeypatch.setattr(face_engine, "detect_faces", detect_faces)
    monkeypatch.setattr(face_engine, "detect_around", detect_around)
    monkeypatch.setattr(face_engine, "embed_faces", embed_faces)
    monkeypatch.setattr(face_engine, "model_name", lambda: "test-model")
    return searched


@pytest.fixture
def queue(tmp_path, monkeypatch, vector_store_on, media_root, settings):
    from media_index import tasks

    settings.VIDEO_CHUNK_FRAMES = 4
    settings.VIDEO_SAMPLE_FPS = 1.0
    sent = []
    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda args, task_id: sent.append((args[0], task_id)))

    def queue(source: Path, name: str = "drawn.mp4") -> Asset:
        asset = intake.register_path(Path(shutil.copy(source, tmp_path / name)))
        asset.sent = sent
        return asset

    return queue


@pytest.fixture
def drawn(tmp_path_factory) -> Path:
    return drawn_video(tmp_path_factory.mktemp("drawn") / "source.mp4")


def spans_of(asset: Asset) -> dict[str, list[tuple[float, float]]]:
    """Each square's track spans, by name (A is on the left); every track must be settled."""
    found: dict[str, list[tuple[float, float]]] = {}
    for track in Track.objects.filter(asset=asset).select_related("face").order_by("start"):
        assert track.start_settled and track.end_settled, track
        found.setdefault("A" if track.face.left < 150 else "B", []).append((track.start, track.end))
    assert Face.objects.filter(asset=asset).exclude(track__in=Track.objects.values("pk")).count() == 0
    return found


def assert_spans(found: dict, expected: dict) -> None:
    assert set(found) == set(expected)
    for name, stretches in expected.items():
        assert np.array(found[name]) == pytest.approx(np.array(stretches), abs=TOLERANCE), (name, found[name])


def test_a_frame_that_starts_a_shot_is_a_cut_unless_it_starts_an_interval_too():
    assert shots.is_cut(5.0, 5.04, 1.0) and not shots.is_cut(4.96, 5.0, 1.0) and not shots.is_cut(None, 0.0, 1.0)
    # Grid lines lie a millisecond early, as ffmpeg's select draws them.
    assert not shots.is_cut(0.5, 0.9995, 1.0) and shots.is_cut(0.5, 0.9985, 1.0)
    assert shots.interval(2.5, 2.0) == 5


def test_tracks_break_at_cuts_and_edges_are_refined_between_sampled_frames(engine, queue, drawn):
    asset = queue(drawn)
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    frames = list(asset.frames.order_by("index").values_list("timestamp", flat=True))
    assert frames == pytest.approx([*range(6), CUT, *range(6, 12)])  # the grid, and the first frame of the shot
    found = spans_of(asset)
    assert_spans(found, DRAWN)
    # Edges at the cut are exact: A ends where the shot ends, B starts with it.
    assert found["A"][0][1] == pytest.approx(CUT, abs=1e-6) and found["B"][0][0] == pytest.approx(CUT, abs=1e-6)
    # Besides the 13 sampled frames, at most three probes for each of the 4 edges not at a cut.
    assert 13 < len(engine) <= 13 + 4 * 3


def test_an_uninterrupted_run_places_its_edges_from_probes_decoded_with_the_sampled_frames(
    engine, queue, drawn, monkeypatch
):
    runs = []
    sample_frames = video.sample_frames

    def counted(*args, **kwargs):
        runs.append(kwargs.get("probe_fps"))
        return sample_frames(*args, **kwargs)

    monkeypatch.setattr(video, "sample_frames", counted)
    asset = queue(drawn)
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    assert runs == [spans.REFINE_FPS]  # one pass of ffmpeg, no stretch decoded again
    assert_spans(spans_of(asset), DRAWN)


def test_without_refinement_edges_between_sampled_frames_are_put_halfway(engine, queue, drawn, settings):
    settings.VIDEO_REFINE_EDGES = False
    asset = queue(drawn)
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    assert_spans(spans_of(asset), {"A": [(1.5, CUT), (9.5, 11.5)], "B": [(CUT, 7.5)]})
    assert len(engine) == 13  # the sampled frames only


def test_a_chunk_holds_no_more_probes_at_a_low_sample_rate_than_at_one_a_second(
    engine, queue, drawn, settings, monkeypatch
):
    settings.VIDEO_CHUNK_FRAMES = 4
    assert spans.chunk_frames(1.0) == spans.chunk_frames(2.0) == 4
    settings.VIDEO_SAMPLE_FPS = 0.25  # 16 probes come with each sampled frame
    held, store_frames = [], video_indexing.store_frames

    def counted(asset, chunk, *rest):
        held.append(sum(len(frame.probes) for frame in chunk))
        return store_frames(asset, chunk, *rest)

    monkeypatch.setattr(video_indexing, "store_frames", counted)
    asset = queue(drawn)
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    assert len(held) == asset.frames.count() > 1  # one sampled frame a chunk
    assert 4 * spans.REFINE_FPS >= max(held) > spans.REFINE_FPS


def test_search_moments_are_the_spans_of_the_tracks_near_the_query(engine, queue, drawn):
    from media_index import calibration

    asset = queue(drawn)
    indexing.index_asset(asset.pk)
    asset.refresh_from_db()
    moments = services.video_moments(VECTORS["A"], asset, calibration.for_model("test-model"))
    found = np.array([(moment.start, moment.end) for moment in moments])
    assert found == pytest.approx(np.array(DRAWN["A"]), abs=TOLERANCE)
    assert all(moment.same_person and moment.frame.faces.exists() for moment in moments)


def test_slices_and_a_run_killed_while_placing_edges_give_the_same_spans(engine, queue, drawn, settings, monkeypatch):
    settings.VIDEO_CHUNK_FRAMES = 2
    settings.VIDEO_SLICE_SECONDS = 0  # every chunk of 2 frames ends the slice
    asset = queue(drawn)
    refine = spans.refine
    calls = []

    def killed_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the worker dies after its chunk was stored, before its edges were placed
        return refine(*args, **kwargs)

    monkeypatch.setattr(spans, "refine", killed_once)
    status, task = None, None
    while status is None:
        with contextlib.suppress(KeyboardInterrupt):
            status = indexing.index_asset(asset.pk, task_id=task)
        task = asset.sent[-1][1]
    assert status == Asset.Status.INDEXED and len(calls) > 2
    frames = list(asset.frames.order_by("index").values_list("index", "timestamp"))
    whole = [(frame.index, frame.timestamp) for frame in video.sample_frames(drawn, video_probe.probe(drawn), 1.0)]
    assert np.array(frames) == pytest.approx(np.array(whole))  # no frame twice or missing
    assert_spans(spans_of(asset), DRAWN)


@pytest.mark.shared_data
def test_moments_of_the_generated_video_are_within_a_quarter_second(queue, tmp_path, settings):
    from benchmarks import moment_video
    from media_index import calibration

    settings.PEOPLE_ASSIGN_ON_INDEX = False
    face_weights.install_weights()
    generated = moment_video.build(DATA_DIR / "lfw", tmp_path / "source.mp4")
    asset = queue(generated.path, name="generated.mp4")
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    asset.refresh_from_db()
    query = services.find_query_faces(Image.open(generated.query).convert("RGB"))[0].embedding
    moments = services.video_moments(query, asset, calibration.for_model(face_engine.model_name()))
    found = [(moment.start, moment.end) for moment in moments]
    assert len(found) == len(generated.appearances)
    assert np.abs(np.array(found) - np.array(generated.appearances)).max() <= 0.25, found
