"""Removing what was indexed: faces and frames go in the transaction, their vectors and files once it commits.

Vectors and files are deleted only after the commit, so a rollback never leaves rows whose vectors are gone;
what a crash leaves behind, `check_index` finds.
"""

import logging
from collections.abc import Iterable

from django.core.files.storage import default_storage
from django.db import transaction

from . import vector_store
from .models import Asset, Face, Stretch

logger = logging.getLogger(__name__)


def clear_index(asset: Asset) -> None:
    """Drop an asset's faces and frames; their vectors and files go once that commits (and stay if it rolls back).

    A long video's stretches go first: deleting one waits for a chunk it is storing, which is then dropped too."""
    Stretch.objects.filter(asset=asset).delete()
    face_ids = list(asset.faces.values_list("pk", flat=True))
    files = _stored_files(asset)
    asset.faces.all().delete()
    asset.frames.all().delete()
    Asset.objects.filter(pk=asset.pk).update(preview="", frames_done=0)
    transaction.on_commit(lambda: _forget_vectors_and_files(face_ids, files), robust=True)


def drop_frames(frames) -> None:
    """Delete these frames and their faces; their vectors and files go once that commits."""
    faces = Face.objects.filter(frame__in=frames)
    face_ids = list(faces.values_list("pk", flat=True))
    files = [name for name in faces.values_list("crop", flat=True) if name]
    files += [name for name in frames.values_list("thumbnail", flat=True) if name]
    if not (face_ids or files or frames.exists()):
        return
    faces.delete()
    frames.delete()
    transaction.on_commit(lambda: _forget_vectors_and_files(face_ids, files), robust=True)


def delete_faces(faces: Iterable[Face]) -> int:
    """Delete Face rows (the admin's delete), then, once that commits, their vectors and crops."""
    faces = list(faces)
    with transaction.atomic():
        Face.objects.filter(pk__in=[face.pk for face in faces]).delete()
        ids, files = [face.pk for face in faces], [face.crop.name for face in faces if face.crop]
        transaction.on_commit(lambda: _forget_vectors_and_files(ids, files), robust=True)
    logger.info("deleted %d faces and their vectors", len(faces))
    return len(faces)


def _stored_files(asset: Asset) -> list[str]:
    """The names, in the media storage, of the asset's crops, frame thumbnails and preview."""
    names = [name for name in asset.faces.values_list("crop", flat=True) if name]
    names += [name for name in asset.frames.values_list("thumbnail", flat=True) if name]
    return names + ([asset.preview.name] if asset.preview else [])


def _forget_vectors_and_files(face_ids: list[int], files: list[str]) -> None:
    """After a commit: the vectors and files of faces the database no longer has (`check_index` finds any left)."""
    if face_ids:
        vector_store.delete_faces(face_ids)
    for name in files:
        default_storage.delete(name)


def delete_files(asset: Asset) -> None:
    for name in _stored_files(asset):
        default_storage.delete(name)
