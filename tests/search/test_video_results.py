"""Videos in search results: one result per video, its moments merged from nearby frames, ranked with photos."""

import math

import numpy as np
import pytest

from media_index import vector_store
from media_index.calibration import ScoreScale
from media_index.models import Asset, Face, Frame
from search import services

pytestmark = pytest.mark.django_db(transaction=True)

QUERY = np.eye(512, dtype=np.float32)[0]
SCALE = ScoreScale(threshold=1.0, midpoint=1.0, slope=10.0, source="test", identification=0.9)


def at_distance(distance: float, seed: int) -> np.ndarray:
    """A unit vector at exactly this L2 distance from QUERY."""
    direction = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    direction[0] = 0
    direction /= np.linalg.norm(direction)
    angle = 2 * math.asin(distance / 2)
    return (math.cos(angle) * QUERY + math.sin(angle) * direction).astype(np.float32)


def make_asset(name: str, kind: str) -> Asset:
    return Asset.objects.create(
        path=f"/archive/{name}", sha256=name.ljust(64, "0"), kind=kind, size=1, mtime=0, status="indexed"
    )


def add_face(asset: Asset, distance: float, seed: int, timestamp: float | None = None) -> Face:
    frame = None
    if timestamp is not None:
        frame, _ = Frame.objects.get_or_create(asset=asset, index=round(timestamp), defaults={"timestamp": timestamp})
    face = Face.objects.create(
        asset=asset, frame=frame, left=0, top=0, right=10, bottom=10, probability=1, model_name="test"
    )
    vector_store.insert(
        [vector_store.FaceVector(face.pk, at_distance(distance, seed), asset.pk, asset.kind, timestamp or 0.0)]
    )
    return face


@pytest.fixture
def archive(vector_store_on, settings):
    settings.VIDEO_SAMPLE_FPS = 1.0
    clip = make_asset("clip.mp4", "video")
    # On screen at 1-3 s (the gap of 2 s at 3 s is still one moment) and at 7-8 s; someone else at 0, 4, 5 s.
    for seed, (timestamp, distance) in enumerate(
        [(0, 1.4), (1, 0.7), (3, 0.5), (4, 1.3), (5, 1.35), (7, 0.8), (8, 0.9)]
    ):
        add_face(clip, distance, seed, timestamp)
    crowd = make_asset("crowd.mp4", "video")
    for seed, timestamp in enumerate([0, 1, 2]):
        add_face(crowd, 1.2, 100 + seed, timestamp)
    photo = make_asset("portrait.jpg", "image")
    add_face(photo, 0.6, 200)
    stranger = make_asset("stranger.jpg", "image")
    add_face(stranger, 1.5, 300)
    return {"clip": clip, "crowd": crowd, "photo": photo, "stranger": stranger}


def test_videos_and_photos_rank_together_by_their_best_face(archive):
    matches = services.find_matches(QUERY, top_k=10, scale=SCALE)
    assert [match.asset.name for match in matches] == ["clip.mp4", "portrait.jpg", "crowd.mp4", "stranger.jpg"]
    assert matches[0].distance == pytest.approx(0.5, abs=1e-3)
    assert matches[0].face.frame.timestamp == 3


def test_moments_merge_frames_within_two_sample_intervals(archive):
    clip = services.find_matches(QUERY, top_k=10, scale=SCALE)[0]
    assert [(m.start, m.end) for m in clip.moments] == [(1.0, 3.0), (7.0, 8.0)]
    assert clip.moments[0].frame.timestamp == 3 and clip.moments[0].distance == pytest.approx(0.5, abs=1e-3)
    assert clip.moments[1].score == SCALE.score(clip.moments[1].distance)
    assert clip.same_person and clip.moments[1].same_person
    assert clip.best_moment == clip.moments[0]


def test_a_video_with_no_near_frame_still_offers_its_nearest(archive):
    crowd = services.find_matches(QUERY, top_k=10, scale=SCALE)[2]
    assert len(crowd.moments) == 1
    assert crowd.moments[0].start == crowd.moments[0].end
    assert not crowd.same_person and not crowd.moments[0].same_person


def test_results_can_be_limited_to_videos(archive):
    matches = services.find_matches(QUERY, top_k=10, kind="video", scale=SCALE)
    assert [match.asset.name for match in matches] == ["clip.mp4", "crowd.mp4"]


def test_top_k_counts_results_not_faces(archive):
    matches = services.find_matches(QUERY, top_k=2, scale=SCALE)
    assert [match.asset.name for match in matches] == ["clip.mp4", "portrait.jpg"]
