"""Writing what was found: a face's row with its crop; faces of forgotten people are dropped before anything is."""

import logging

from django.core.files.base import ContentFile

from people import blocklist

from . import face_engine
from .imaging import jpeg
from .models import Asset, Face, Frame

logger = logging.getLogger(__name__)

# Longest side, in pixels, of a photo's or video's preview and of a frame's thumbnail on result pages.
PREVIEW_SIDE = 480
FRAME_SIDE = 480


def without_forgotten(asset: Asset, faces: list[face_engine.Face]) -> list[face_engine.Face]:
    """The faces that are not of a forgotten person: theirs are dropped here, never stored (people/blocklist.py)."""
    forgotten = blocklist.forgotten_mask([face.embedding for face in faces], face_engine.model_name())
    kept = [face for face, drop in zip(faces, forgotten, strict=True) if not drop]
    if len(kept) < len(faces):
        logger.info("asset %s: %d faces of forgotten people dropped", asset.pk, len(faces) - len(kept))
    return kept


def face_row(asset: Asset, face: face_engine.Face, model_name: str, frame: Frame | None = None) -> Face:
    left, top, right, bottom = face.box
    row = Face(
        asset=asset, frame=frame, left=left, top=top, right=right, bottom=bottom,
        probability=face.probability, model_name=model_name,
    )  # fmt: skip
    row.crop.save(f"asset{asset.pk}.jpg", ContentFile(jpeg(face.crop)), save=False)
    row.save()
    return row
