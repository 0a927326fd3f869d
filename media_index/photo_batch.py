"""Photos indexed together: one task holds several photos, their faces found in one go, each photo stored on its own.

Detection stacks photos of the same size into one MTCNN batch and FaceNet embeds the crops of all of them in one
batch, which costs a photo well under half of what it costs alone (docs/performance.md, "Photos"). Exactly-once
holds as for one photo: the task's id is each photo's task id, and each claim is indexing.claim's compare-and-set.
"""

import logging
from collections import defaultdict
from collections.abc import Callable

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from PIL import Image

from . import face_engine, indexing, vector_store
from .dispatch import enqueue
from .models import Asset

logger = logging.getLogger(__name__)


def find_faces_together(images: list[Image.Image]) -> list[list[face_engine.Face]]:
    """face_engine.find_faces for photos of any sizes: detected a size at a time, all crops embedded together."""
    images = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
    by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
    for number, image in enumerate(images):
        by_size[image.size].append(number)
    detections: list[list[face_engine.Detection]] = [[] for _ in images]
    for numbers in by_size.values():
        for number, found in zip(numbers, face_engine.detect_faces([images[n] for n in numbers]), strict=True):
            detections[number] = found
    return face_engine.embed_faces(images, detections)


def index_photos(asset_ids: list[int], task_id: str) -> dict[int, str | None]:
    """Index the photos of one task (dispatch sends them together); each one's final status, None if not ours.

    1. A batch delivered again after its worker died goes one photo at a time (indexing.index_asset): the photo
       that kills the worker is then the one whose worker_deaths reach the limit, and the others index.
    2. Otherwise each photo is claimed (one re-queued alone since is left to its own task), read, and its faces
       found with the others'; a photo that cannot be read or detected is done alone, so that it fails alone.
    3. Each photo is then stored and finished in its own transaction (indexing.index_claimed).
    While Milvus is down all that are left wait for the task's retry: `retrying`, so the retry counts no death.
    """
    died = Asset.objects.filter(pk__in=asset_ids, task_id=task_id, claimed_by=task_id, status=Asset.Status.PROCESSING)
    if died.exists():
        logger.warning("photos %s: the worker died while indexing them together; now one at a time", asset_ids)
        return _each(asset_ids, task_id, lambda pk: indexing.index_asset(pk, task_id))
    claimed = {}
    for pk in asset_ids:
        asset, interrupted = indexing.claim(pk, task_id)
        if asset is None:
            logger.info("asset %s is not this task's to index; nothing to do", pk)
        else:
            claimed[pk] = (asset, interrupted)
    try:
        found = _found([asset for asset, _ in claimed.values()])
    except SoftTimeLimitExceeded:
        # Each goes on in a task of its own, where one that is too slow alone fails alone (claimed_by stays this
        # task's, so the new task drops what this one may have stored of it).
        for asset, _ in claimed.values():
            enqueue(asset)
        logger.warning("photos %s: the time limit came while finding their faces; each is sent alone", list(claimed))
        return dict.fromkeys(asset_ids)
    statuses = _each(list(claimed), task_id, lambda pk: indexing.index_claimed(*claimed[pk], found.get(pk)))
    return dict.fromkeys(asset_ids) | statuses


def _found(assets: list[Asset]) -> dict[int, indexing.FoundFaces]:
    """Each readable photo and its faces, found together; one that cannot be read or detected is left out."""
    photos = {}
    for asset in assets:
        if asset.kind != Asset.Kind.IMAGE or asset.worker_deaths >= settings.WORKER_DEATH_LIMIT:
            continue  # index_claimed has other work for these (a video, or a photo to fail unread)
        try:
            photos[asset.pk] = indexing.read_photo(asset)
        except SoftTimeLimitExceeded:
            raise
        except Exception as error:  # read again alone by index_claimed, which fails it with the reason
            logger.info("asset %s is read alone: %s", asset.pk, error)
    if not photos:
        return {}
    try:
        faces = find_faces_together(list(photos.values()))
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        # Which photo broke the batch is not known: each is done alone, and the culprit fails alone.
        logger.exception("photos %s: finding their faces together failed; each is done alone", list(photos))
        return {}
    return {pk: (photo, found) for (pk, photo), found in zip(photos.items(), faces, strict=True)}


def _each(asset_ids: list[int], task_id: str, index: Callable[[int], str | None]) -> dict[int, str | None]:
    """index(pk) for each photo; if Milvus goes down, those not done yet wait for the retry with it."""
    statuses: dict[int, str | None] = {}
    try:
        for pk in asset_ids:
            statuses[pk] = index(pk)
    except vector_store.VectorStoreUnavailable as error:
        waiting = Asset.objects.filter(pk__in=asset_ids, task_id=task_id, status=Asset.Status.PROCESSING)
        waiting.update(status=Asset.Status.RETRYING, error=str(error))
        raise
    return statuses


def give_up(asset_ids: list[int], task_id: str, error: Exception) -> dict[int, str | None]:
    """The retries are spent: the photos of this task still waiting fail (`reindex --failed` recovers them)."""
    waiting = Asset.objects.filter(pk__in=asset_ids, task_id=task_id, status__in=Asset.UNFINISHED)
    return dict.fromkeys(asset_ids) | {pk: indexing.give_up(pk, error) for pk in waiting.values_list("pk", flat=True)}
