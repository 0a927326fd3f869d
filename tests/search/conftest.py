"""Fixtures shared by the search tests: a signed-in reviewer, and a face engine faked for indexing and for queries."""

import io
import shutil

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from PIL import Image

from media_index import face_engine, indexing, intake
from media_index.models import Asset
from tests.conftest import SAMPLES
from tests.media_index.conftest import fake_face


class FakeEngine:
    """Every photo shows `faces`: for indexing (find_faces) and for queries (detect_faces, then embed_faces).

    Counts what a query costs: `detections` calls to detect_faces, and how many faces each embed_faces call got.
    """

    def __init__(self, faces: list[face_engine.Face]) -> None:
        self.faces = faces
        self.detections = 0
        self.embedded: list[int] = []

    def find_faces(self, image, model=None) -> list[face_engine.Face]:
        return list(self.faces)

    def detect_faces(self, images, model=None) -> list[list[face_engine.Detection]]:
        self.detections += 1
        return [[(face.box, face.probability) for face in self.faces] for _ in images]

    def embed_faces(self, images, detections, model=None) -> list[list[face_engine.Face]]:
        by_box = {face.box: face for face in self.faces}
        self.embedded.append(sum(len(found) for found in detections))
        return [[by_box[box] for box, _ in found] for found in detections]


@pytest.fixture
def engine(monkeypatch) -> FakeEngine:
    """Two faces: index 0 (the larger) is person 1, index 1 is person 2."""
    fake = FakeEngine([fake_face(1, box=(10, 10, 60, 70)), fake_face(2, box=(100, 20, 140, 70))])
    for name in ("find_faces", "detect_faces", "embed_faces"):
        monkeypatch.setattr(face_engine, name, getattr(fake, name))
    monkeypatch.setattr(face_engine, "model_name", lambda model=None: "test-model")
    return fake


@pytest.fixture
def user_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reviewer", password="a-long-password-1"))
    return client


@pytest.fixture
def inbox(settings, tmp_path):
    """The watched inbox: the only folder asset files are served from."""
    settings.INBOX_DIR = tmp_path / "inbox"
    settings.INBOX_DIR.mkdir()
    return settings.INBOX_DIR


@pytest.fixture
def indexed_asset(inbox, engine, vector_store_on, media_root, monkeypatch) -> Asset:
    """two_people.jpg in the inbox, indexed with the engine's two faces (crops and preview in media_root)."""
    from media_index import tasks

    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda args, task_id: None)
    asset = intake.register_path(shutil.copy(SAMPLES / "two_people.jpg", inbox / "two_people.jpg"))
    indexing.index_asset(asset.pk)
    return Asset.objects.get(pk=asset.pk)


def jpeg_upload(name: str = "query.jpg", size=(200, 100), **options) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, format="JPEG", **options)
    buffer.seek(0)
    buffer.name = name
    return buffer


def close(response) -> None:
    """Close a test client's response (its file) as the client does: without closing the test's database
    connection, which request_finished would do inside a test's transaction on PostgreSQL."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
