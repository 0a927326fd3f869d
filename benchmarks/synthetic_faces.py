"""Made-up faces in an index, so that search can be timed at archive sizes (`manage.py add_synthetic_faces`)."""

import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
from django.conf import settings

from benchmarks.synthetic_vectors import face_set
from media_index import face_engine, vector_store

logger = logging.getLogger(__name__)

Say = Callable[[str], None]
SYNTHETIC_PATH = "/synthetic-benchmark-faces"


def add_synthetic_faces(count: int, batch: int = 10_000, say: Say = print, vectors: np.ndarray | None = None) -> int:
    """Face rows and vectors of made-up people, so that searches can be timed over a large archive.

    They belong to assets under SYNTHETIC_PATH (four faces each) and share one grey crop, so result pages render.
    `vectors` (count x dimension, unit norm) are stored in order when given; else face_set makes them."""
    from media_index.models import Asset, Face

    crop_name = "crops/synthetic.jpg"
    crop_path = Path(settings.MEDIA_ROOT) / crop_name
    crop_path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.new("RGB", (face_engine.CROP_SIZE,) * 2, "grey").save(crop_path, "JPEG")
    vectors = face_set(count, 0, seed=int(time.time())).vectors if vectors is None else vectors
    model_name = face_engine.model_name()
    made = 0
    for start in range(0, count, batch):
        chunk = vectors[start : start + batch]
        assets = Asset.objects.bulk_create(
            Asset(
                path=f"{SYNTHETIC_PATH}/{secrets.token_hex(8)}.jpg",
                sha256=secrets.token_hex(32),
                kind=Asset.Kind.IMAGE,
                size=0,
                mtime=0.0,
                status=Asset.Status.INDEXED,
                model_name=model_name,
                preview=crop_name,
                width=face_engine.CROP_SIZE,
                height=face_engine.CROP_SIZE,
            )
            for _ in range(0, len(chunk), 4)
        )
        faces = Face.objects.bulk_create(
            Face(
                asset=assets[i // 4], left=0, top=0, right=100, bottom=100, probability=1.0, crop=crop_name,
                model_name=model_name,
            )
            for i in range(len(chunk))
        )  # fmt: skip
        vector_store.insert(
            [
                vector_store.FaceVector(face.id, vector, face.asset_id, "image")
                for face, vector in zip(faces, chunk, strict=True)
            ]
        )
        made += len(faces)
        say(f"added {made:,}/{count:,} synthetic faces")
    vector_store.flush()  # as the watcher would within seconds
    return made
