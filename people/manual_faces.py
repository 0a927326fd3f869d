"""A face the detector missed, added by a user who drew its box on the photo's page.

The face is cropped and embedded exactly as a detected one (face_engine.embed_faces: the box plus FaceNet's margin,
resized to 160x160), and stored like one: row, crop, vector. It is marked added_by_hand, with probability 1.0: no
detector scored it, a user saw it. With a person chosen it is pinned to them; without, clustering places it.
"""

import logging
import math
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from media_index import face_engine, inbox, vector_store
from media_index.imaging import UnreadablePhoto, jpeg, open_photo
from media_index.models import Asset, Face

from . import assignment, audit, blocklist
from .models import PeopleEvent, Person

logger = logging.getLogger(__name__)

# The smallest box accepted, in pixels of the upright photo: below it the crop holds too little to embed.
MIN_SIDE = 20
# What a face drawn by hand gets for MTCNN's probability: a user saw it.
HAND_PROBABILITY = 1.0

Box = tuple[float, float, float, float]


class CannotAdd(ValueError):
    """The face cannot be added: a box that is not inside the photo, or a photo that cannot be read; says why."""


def check_box(box: Box, width: int, height: int) -> Box:
    """The box (left, top, right, bottom) if it lies inside a width x height photo and is at least MIN_SIDE a side."""
    if not all(math.isfinite(edge) for edge in box):
        raise CannotAdd("The box's edges must be numbers of pixels.")
    left, top, right, bottom = box
    if left < 0 or top < 0 or right > width or bottom > height:
        raise CannotAdd(
            f"The box ({left:g}, {top:g})-({right:g}, {bottom:g}) is not inside the photo, which is"
            f" {width}x{height} pixels: draw it on the photo."
        )
    if right - left < MIN_SIDE or bottom - top < MIN_SIDE:
        raise CannotAdd(
            f"The box is {max(right - left, 0):g}x{max(bottom - top, 0):g} pixels: a face needs at least"
            f" {MIN_SIDE}x{MIN_SIDE}. Draw it larger."
        )
    return left, top, right, bottom


def add_face(asset: Asset, box: Box, person: Person | None = None, *, user=None) -> Face:
    """Crop, embed and store the face in this box of an indexed photo; returns the stored Face.

    1. Refuse anything but an indexed photo, a box outside it or too small, and a face of a forgotten person.
    2. Store the row and crop, then the vector, in one transaction (the crop is deleted if it fails).
    3. Pin it to person when given, else let clustering place it; leave an ADD_FACE event.
    """
    if asset.kind != Asset.Kind.IMAGE or asset.status not in (Asset.Status.INDEXED, Asset.Status.NO_FACES):
        raise CannotAdd(f"{asset.display_path} is not an indexed photo: faces are added to indexed photos only.")
    photo = _open(asset)
    box = check_box(box, *photo.size)
    model_name = face_engine.model_name()
    face = face_engine.embed_faces([photo], [[(box, HAND_PROBABILITY)]])[0][0]
    if blocklist.forgotten_mask([face.embedding], model_name)[0]:
        raise CannotAdd("This face matches a person who was forgotten on request: it is not stored.")
    row = Face(
        asset=asset, left=box[0], top=box[1], right=box[2], bottom=box[3], probability=HAND_PROBABILITY,
        model_name=model_name, added_by_hand=True, person=person, person_pinned=person is not None,
    )  # fmt: skip
    try:
        with transaction.atomic():
            row.crop.save(f"asset{asset.pk}.jpg", ContentFile(jpeg(face.crop)), save=False)
            row.save()
            vector_store.insert([vector_store.FaceVector(row.pk, face.embedding, asset.pk, asset.kind)])
            if person is None:
                assignment.assign_new_faces([row], [face.embedding])
            Asset.objects.filter(pk=asset.pk, status=Asset.Status.NO_FACES).update(status=Asset.Status.INDEXED)
            detail = {"face": row.pk, "asset": asset.pk, "box": list(box), "pinned": person is not None}
            audit.record(PeopleEvent.Action.ADD_FACE, row.person, user, detail)
    except Exception:
        if row.crop:
            default_storage.delete(row.crop.name)
        raise
    logger.info("asset %s: face %s added by hand, person %s", asset.pk, row.pk, row.person_id)
    return row


def _open(asset: Asset):
    """The photo upright, opened inside its inbox as indexing opens it; CannotAdd says why it cannot be."""
    path = Path(asset.path)
    try:
        with inbox.open_inside(path, inbox.inbox_of(path)) as stream:
            return open_photo(stream)
    except FileNotFoundError:
        raise CannotAdd(f"{asset.display_path} is gone: it was moved or deleted since it was indexed.") from None
    except (UnreadablePhoto, inbox.Escape) as error:
        raise CannotAdd(f"{asset.display_path}: {error}") from None
    except (OSError, ValueError) as error:
        raise CannotAdd(f"{asset.display_path} cannot be read ({error}).") from None
