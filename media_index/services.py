"""Ingestion: files become Asset rows, and assets become Face rows plus vectors in Milvus."""

import hashlib
import io
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from . import face_engine, vector_store
from .models import Asset, Face

logger = logging.getLogger(__name__)

# Names that editors, browsers and copy tools use for files still being written.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".swp")
PREVIEW_SIDE = 480
PILLOW_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO"}


class UnreadablePhoto(Exception):
    """The file is not a photo that can be decoded; the message says why."""


def is_candidate(path: Path) -> bool:
    """Whether a file in the inbox should become an asset: hidden and half-written files should not."""
    return not path.name.startswith(".") and not path.name.lower().endswith(PARTIAL_SUFFIXES)


def file_sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def walk_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every candidate file under the given files and folders, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if p.is_file() and is_candidate(p))
        elif path.is_file() and is_candidate(path):
            yield path


def register_path(path: Path) -> Asset | None:
    """Record one file as an asset and queue its indexing; a file already known and unchanged is left alone.

    1. Skip files that vanished or are unchanged since they were registered (same size and mtime).
    2. Files that are neither photo nor video become `unsupported`.
    3. Content already held by another asset becomes `duplicate` of it and is not indexed again.
    4. Anything else is `queued`, and its task is sent once the row is committed.
    """
    path = path.resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    existing = Asset.objects.filter(path=str(path)).first()
    if existing and existing.size == stat.st_size and existing.mtime == stat.st_mtime:
        return existing
    sha256 = file_sha256(path)
    kind = Asset.kind_of(path)
    fields = {"sha256": sha256, "kind": kind, "size": stat.st_size, "mtime": stat.st_mtime, "error": ""}
    with transaction.atomic():
        original = Asset.objects.filter(sha256=sha256, duplicate_of=None).exclude(path=str(path)).first()
        if kind == Asset.Kind.OTHER:
            fields |= {
                "status": Asset.Status.UNSUPPORTED,
                "error": f"{path.suffix or 'no suffix'}: not a photo",
            }
        elif original:
            fields |= {"status": Asset.Status.DUPLICATE, "duplicate_of": original}
        else:
            fields |= {"status": Asset.Status.QUEUED, "duplicate_of": None}
        if existing:
            remove_faces(existing)
        asset, _ = Asset.objects.update_or_create(path=str(path), defaults=fields)
        if asset.status == Asset.Status.QUEUED:
            enqueue(asset)
    logger.info("registered asset %s %s as %s", asset.pk, path, asset.status)
    return asset


def enqueue(asset: Asset) -> None:
    """Send the asset's indexing task once the transaction that queued it commits."""
    from .tasks import index_asset_task

    transaction.on_commit(lambda: index_asset_task.delay(asset.pk))


def requeue(assets: Iterable[Asset]) -> int:
    """Index the given assets again from scratch (the admin's re-index action)."""
    count = 0
    for asset in assets:
        with transaction.atomic():
            remove_faces(asset)
            Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.QUEUED, error="", indexed_at=None)
            enqueue(asset)
        count += 1
    return count


def requeue_unfinished() -> int:
    """Queue again the assets left queued or processing when the service stopped (run before workers start)."""
    unfinished = Asset.objects.filter(status__in=[Asset.Status.QUEUED, Asset.Status.PROCESSING])
    with transaction.atomic():
        assets = list(unfinished.select_for_update())
        unfinished.update(status=Asset.Status.QUEUED)
        for asset in assets:
            enqueue(asset)
    return len(assets)


def open_photo(path: Path | BinaryIO) -> Image.Image:
    """Decode a photo upright (EXIF orientation applied) as RGB, refusing decompression bombs."""
    # Our own limit, checked on the header before any pixel is decoded, replaces Pillow's warning.
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as image:
            if image.format not in PILLOW_FORMATS:
                raise UnreadablePhoto(f"{image.format} is not a supported photo format")
            if image.width * image.height > settings.MAX_IMAGE_PIXELS:
                raise UnreadablePhoto(
                    f"{image.width}x{image.height} is over the limit of {settings.MAX_IMAGE_PIXELS} pixels"
                    " (REVSEARCH_MAX_IMAGE_PIXELS)"
                )
            image.load()
            return ImageOps.exif_transpose(image).convert("RGB")
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UnreadablePhoto(f"cannot decode the photo: {error}") from error


def index_asset(asset_id: int) -> str | None:
    """Find, embed and store every face of one queued asset; returns the final status, or None if not claimed.

    1. Claim the asset (queued → processing); a second delivery of the same task claims nothing.
    2. Decode the photo and find its faces.
    3. Write Face rows with crops, insert their vectors, then mark the asset indexed or no_faces.
    A bad file ends `failed` with the reason; Milvus being down raises VectorStoreUnavailable for a retry.
    """
    claimed = Asset.objects.filter(pk=asset_id, status=Asset.Status.QUEUED).update(status=Asset.Status.PROCESSING)
    if not claimed:
        logger.info("asset %s is not queued; nothing to do", asset_id)
        return None
    asset = Asset.objects.get(pk=asset_id)
    logger.info("indexing asset %s %s", asset.pk, asset.path)
    try:
        if asset.kind != Asset.Kind.IMAGE:
            return _finish(asset, Asset.Status.UNSUPPORTED, "videos are not indexed yet")
        photo = open_photo(Path(asset.path))
        faces = face_engine.find_faces(photo)
        _store_faces(asset, faces, photo)
    except FileNotFoundError:
        return _finish(asset, Asset.Status.FAILED, f"{asset.path} is gone; it was moved or deleted after it arrived")
    except UnreadablePhoto as error:
        return _finish(asset, Asset.Status.FAILED, f"{asset.path}: {error}")
    except vector_store.VectorStoreUnavailable:
        Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.QUEUED)
        raise
    except Exception as error:
        # Whatever else goes wrong is this file's problem: record it, and let the queue go on.
        logger.exception("asset %s failed unexpectedly", asset.pk)
        return _finish(asset, Asset.Status.FAILED, f"{asset.path}: unexpected {type(error).__name__}: {error}")
    status = Asset.Status.INDEXED if faces else Asset.Status.NO_FACES
    return _finish(asset, status, "", faces=len(faces))


def _store_faces(asset: Asset, faces: list[face_engine.Face], photo: Image.Image) -> None:
    """Write the faces, their crops and the photo's preview, then the vectors: if Milvus refuses, nothing is left."""
    model_name = face_engine.model_name()
    with transaction.atomic():
        remove_faces(asset)
        rows = []
        for face in faces:
            left, top, right, bottom = face.box
            row = Face(
                asset=asset, left=left, top=top, right=right, bottom=bottom,
                probability=face.probability, model_name=model_name,
            )  # fmt: skip
            row.crop.save(f"asset{asset.pk}.jpg", ContentFile(_jpeg(face.crop)), save=False)
            row.save()
            rows.append(row)
        preview = photo.copy()
        preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        asset.preview.save(f"asset{asset.pk}.jpg", ContentFile(_jpeg(preview)), save=False)
        asset.model_name = model_name
        asset.save(update_fields=["model_name", "preview"])
        try:
            vector_store.insert(
                [
                    vector_store.FaceVector(row.pk, face.embedding, asset.pk, asset.kind)
                    for row, face in zip(rows, faces, strict=True)
                ]
            )
        except Exception:
            for row in rows:
                row.crop.delete(save=False)
            asset.preview.delete(save=False)
            raise


def _finish(asset: Asset, status: str, error: str, faces: int = 0) -> str:
    Asset.objects.filter(pk=asset.pk).update(
        status=status, error=error, indexed_at=timezone.now(), updated_at=timezone.now()
    )
    if error:
        logger.warning("asset %s %s: %s", asset.pk, status, error)
    else:
        logger.info("asset %s %s with %d faces", asset.pk, status, faces)
    return status


def remove_faces(asset: Asset) -> None:
    """Drop an asset's vectors, crops and Face rows: before it is indexed again, or deleted."""
    if asset.faces.exists():
        vector_store.delete_asset(asset.pk)
        for face in asset.faces.all():
            face.crop.delete(save=False)
        asset.faces.all().delete()
    if asset.preview:
        asset.preview.delete(save=False)
        Asset.objects.filter(pk=asset.pk).update(preview="")


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def status_counts() -> dict[str, int]:
    """How many assets are in each status (for the command line and health pages)."""
    counts = {status: 0 for status in Asset.Status.values}
    for row in Asset.objects.values("status").order_by().annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts
