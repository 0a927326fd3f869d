"""When the watcher flushes new vectors: in batches of faces, or a while after the first (Milvus is faked)."""

import pytest

from media_index import upkeep, vector_store
from media_index.models import Asset, Face

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def add_faces(count: int) -> None:
    asset = Asset.objects.create(
        path=f"/archive/{Asset.objects.count()}.jpg", sha256="0" * 64, kind="image", size=1, mtime=0
    )
    Face.objects.bulk_create(
        Face(asset=asset, left=0, top=0, right=1, bottom=1, probability=1, model_name="m") for _ in range(count)
    )


@pytest.fixture
def flushes(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(vector_store, "flush", lambda: calls.append(Face.objects.count()))
    return calls


def test_a_few_new_faces_are_flushed_once_the_first_has_waited_long_enough(flushes):
    clock = Clock()
    flusher = upkeep.VectorFlusher(clock)
    assert not flusher.check()  # nothing stored yet
    add_faces(3)
    assert not flusher.check()
    clock.now += upkeep.VECTOR_FLUSH_SECONDS - 1
    add_faces(2)
    assert not flusher.check()  # the wait counts from the first new face, not the last
    clock.now += 1
    assert flusher.check()
    assert flushes == [5]
    clock.now += 3 * upkeep.VECTOR_FLUSH_SECONDS
    assert not flusher.check()  # nothing new since
    assert flushes == [5]


def test_many_new_faces_are_flushed_at_once(flushes, monkeypatch):
    monkeypatch.setattr(upkeep, "VECTOR_FLUSH_ROWS", 10)
    flusher = upkeep.VectorFlusher(Clock())
    add_faces(9)
    assert not flusher.check()
    add_faces(1)
    assert flusher.check()
    add_faces(4)
    assert not flusher.check()  # counted from the last flush
    assert flushes == [10]


def test_faces_already_there_at_start_are_flushed_once(flushes, monkeypatch):
    monkeypatch.setattr(upkeep, "VECTOR_FLUSH_ROWS", 10)
    add_faces(12)  # left unflushed by a service that stopped
    flusher = upkeep.VectorFlusher(Clock())
    assert flusher.check()
    assert not flusher.check()
    assert flushes == [12]
