"""A person continuously on screen is one track and one person, across the chunks a video is stored in.

Real ffmpeg and Milvus Lite; the face engine is faked: one face a frame, of the person the test chooses.
"""

import numpy as np
import pytest

from media_index import face_engine, indexing
from media_index.models import Asset, Face
from tests.media_index.conftest import fake_face
from tests.media_index.test_video_indexing import queued_video  # noqa: F401 - a fixture
from tests.media_index.test_video_limits import generated

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes, pytest.mark.shared_data]


def near(vector: np.ndarray, seed: int) -> np.ndarray:
    moved = vector + np.random.default_rng(seed).normal(scale=0.005, size=vector.shape)
    return (moved / np.linalg.norm(moved)).astype(np.float32)


@pytest.fixture
def on_screen(monkeypatch, settings):
    """Frames 0-5 show Alice at the left, frames 6 on Bob at the same place (a cut)."""
    settings.PEOPLE_CLUSTER_DISTANCE, settings.PEOPLE_MIN_FACES = 0.8, 3
    alice, bob = fake_face(1), fake_face(2)
    shown = {"frames": 0}

    def find_faces_batch(images):
        faces = []
        for _ in images:
            who = alice if shown["frames"] < 6 else bob
            vector = near(who.embedding, shown["frames"])
            faces.append([face_engine.Face(who.box, 0.99, vector, who.crop)])
            shown["frames"] += 1
        return faces

    monkeypatch.setattr(face_engine, "find_faces_batch", find_faces_batch)
    monkeypatch.setattr(face_engine, "model_name", lambda: "test-model")


def test_consecutive_frames_of_one_person_are_one_track_and_one_person(on_screen, queued_video, tmp_path):  # noqa: F811
    # 10 sampled frames of one shot (a track ends at a shot cut: media_index/test_spans.py), stored 4 at a time.
    asset = queued_video(generated(tmp_path / "source.mp4", 10))
    assert indexing.index_asset(asset.pk) == Asset.Status.INDEXED
    faces = list(Face.objects.filter(asset=asset).order_by("frame__index"))
    assert len(faces) == 10
    alice, bob = faces[:6], faces[6:]
    assert {face.track for face in alice} == {alice[0].pk}  # across the chunk boundaries at frames 4 and 8
    assert {face.track for face in bob} == {bob[0].pk}
    assert len({face.person_id for face in alice}) == 1 and alice[0].person_id is not None
    assert len({face.person_id for face in bob}) == 1 and bob[0].person_id not in (None, alice[0].person_id)
