"""Rows for the people tests, made directly: these tests are about decisions on faces, not about finding them."""

import itertools

import numpy as np
import pytest
from django.core.files.base import ContentFile

from media_index.models import Asset, Face, Frame
from people.models import Person

_paths = itertools.count()


def unit(seed: int, dimension: int = 512) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dimension).astype(np.float32)
    return vector / np.linalg.norm(vector)


def make_asset(kind: str = Asset.Kind.IMAGE, path: str | None = None, mtime: float = 1_700_000_000.0) -> Asset:
    suffix = ".mp4" if kind == Asset.Kind.VIDEO else ".jpg"
    return Asset.objects.create(
        path=path or f"/archive/file{next(_paths)}{suffix}", sha256="0" * 64, kind=kind, size=1, mtime=mtime,
        status=Asset.Status.INDEXED, model_name="test-model",
    )  # fmt: skip


def make_face(
    asset: Asset, person: Person | None = None, *, probability: float = 0.99, frame: Frame | None = None,
    track: int | None = None, pinned: bool = False, crop: bool = False,
) -> Face:  # fmt: skip
    face = Face(
        asset=asset, frame=frame, left=1, top=2, right=30, bottom=40, probability=probability,
        model_name="test-model", person=person, person_pinned=pinned, track=track,
    )  # fmt: skip
    if crop:
        face.crop.save(f"asset{asset.pk}.jpg", ContentFile(b"jpeg"), save=False)
    face.save()
    return face


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("editor", password="not used")
