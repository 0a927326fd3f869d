"""Fakes and fixtures shared by the media_index tests: the face engine is faked where a test is not about it."""

import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from media_index import face_engine
from tests.conftest import SAMPLES


def fake_face(seed: int, box=(10.0, 20.0, 60.0, 80.0)) -> face_engine.Face:
    vector = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return face_engine.Face(box, 0.99, vector / np.linalg.norm(vector), Image.new("RGB", (160, 160), "gray"))


@pytest.fixture
def engine(monkeypatch):
    """find_faces answers with whatever the test puts in `engine.faces`."""
    fake = mock.Mock(faces=[])
    monkeypatch.setattr(face_engine, "find_faces", lambda image: fake.faces)
    monkeypatch.setattr(face_engine, "model_name", lambda: "test-model")
    return fake


@pytest.fixture
def sent(monkeypatch):
    """The asset ids whose indexing task was sent (after commit)."""
    from media_index import tasks

    ids: list[int] = []
    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda args, task_id: ids.append(args[0]))
    monkeypatch.setattr(tasks.index_photos_task, "apply_async", lambda args, task_id: ids.extend(args[0]))
    return ids


@pytest.fixture
def inbox(tmp_path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def put(inbox: Path, sample: str, name: str | None = None) -> Path:
    return Path(shutil.copy(SAMPLES / sample, inbox / (name or sample)))
