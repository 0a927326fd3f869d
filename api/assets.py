"""Assets: list, one asset, its file, upload into the inbox, reindex, delete."""

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import File, Form, Query, Router, Schema
from ninja.errors import HttpError
from ninja.files import UploadedFile

from media_index import dispatch, inbox, intake, uploads
from media_index.models import Asset, Face
from search import http, services

from . import links, paging
from .auth import WRITE

router = Router(tags=["assets"])

# Asset.Status's values, spelled out so that the schema shows them without a component of its own.
StatusName = Literal[
    "queued", "processing", "retrying", "indexed", "no_faces", "failed", "unsupported", "duplicate", "missing"
]
KINDS = {"photo": Asset.Kind.IMAGE, "video": Asset.Kind.VIDEO, "other": Asset.Kind.OTHER}
KIND_NAMES: dict[str, str] = {kind.value: name for name, kind in KINDS.items()}


class AssetFields(Schema):
    id: int
    path: str
    display_path: str
    kind: Literal["photo", "video", "other"]
    status: str
    error: str
    warning: str
    size: int
    created_at: datetime
    indexed_at: datetime | None
    date: str
    url: str
    file: str


class AssetOut(AssetFields):
    faces: int


class AssetPageOut(Schema):
    count: int
    page: int
    per_page: int
    pages: int
    items: list[AssetOut]


class AssetPersonOut(Schema):
    id: int
    name: str
    label: str


class AssetFaceOut(Schema):
    id: int
    bbox: list[float]
    probability: float
    person: AssetPersonOut | None
    crop: str | None
    frame_time: float | None


class AssetFrameOut(Schema):
    index: int
    timestamp: float
    thumbnail: str | None


class AssetMomentOut(Schema):
    start: float
    end: float
    url: str


class AssetDetailOut(AssetFields):
    width: int | None
    height: int | None
    duration: float | None
    frames_total: int
    frames_done: int
    model_name: str
    duplicate_of: int | None
    faces: list[AssetFaceOut]
    frames: list[AssetFrameOut]
    moments: list[AssetMomentOut]


class AssetReindexOut(Schema):
    queued: int
    status: str


class AssetDeleteOut(Schema):
    deleted: int
    faces_deleted: int
    file_deleted: bool
    file_kept: str


@router.get("", response=AssetPageOut, summary="List assets, newest first, with filters")
def list_assets(
    request: HttpRequest,
    status: Query[StatusName | None] = None,
    kind: Query[Literal["photo", "video", "other"] | None] = None,
    folder: Query[str | None] = None,
    since: Query[date | None] = None,
    until: Query[date | None] = None,
    page: Query[int] = 1,
    per_page: Query[int] = paging.PER_PAGE,
):
    """`folder` is relative to the inbox; `since` and `until` (inclusive) compare the date taken, else the file's
    time, in the server's time zone. A page past the last one comes back with no items."""
    assets = Asset.objects.all()
    if status:
        assets = assets.filter(status=status)
    if kind:
        assets = assets.filter(kind=KINDS[kind])
    if folder is not None:
        assets = assets.filter(path__startswith=_folder_prefix(folder))
    if since or until:
        assets = assets.annotate(when=Coalesce("taken_at", "mtime"))
        if since:
            assets = assets.filter(when__gte=_unix(since))
        if until:
            assets = assets.filter(when__lt=_unix(until + timedelta(days=1)))
    rows = assets.annotate(face_count=Count("faces")).order_by("-created_at", "-pk")
    return paging.page_of(rows, page, per_page, lambda asset: _item(asset) | {"faces": asset.face_count})


@router.get("/{asset_id}", response=AssetDetailOut, summary="One asset with its faces, frames and moments")
def asset_detail(request: HttpRequest, asset_id: int):
    """A photo's faces, or a video's faces with the frames that hold them and the moments the asset page shows."""
    asset = _asset(asset_id)
    faces = list(asset.faces.select_related("person", "frame").order_by("pk"))
    detail = _item(asset) | {
        "width": asset.width,
        "height": asset.height,
        "duration": asset.duration,
        "frames_total": asset.frames_total,
        "frames_done": asset.frames_done,
        "model_name": asset.model_name,
        "duplicate_of": asset.duplicate_of_id,
        "faces": [_face(face) for face in faces],
        "frames": [],
        "moments": [],
    }
    if asset.is_video:
        moments = services.face_moments(asset)  # runs of the frames that hold a face, as the asset page shows them
        detail["frames"] = [
            {"index": frame.index, "timestamp": frame.timestamp, "thumbnail": links.media(frame.thumbnail)}
            for run in moments
            for frame in run
        ]
        detail["moments"] = [
            {"start": run[0].timestamp, "end": run[-1].timestamp, "url": links.asset_page(asset.pk, run[0].timestamp)}
            for run in moments
        ]
    return detail


@router.get("/{asset_id}/file", url_name="asset_file", response={200: None}, summary="The asset's original file")
def asset_file(request: HttpRequest, asset_id: int):
    """The file as it is in the inbox; byte ranges are honoured so videos can seek. 404 when it is not served."""
    return http.asset_response(request, _asset(asset_id))


@router.post("", auth=WRITE, url_name="assets_upload", response={201: AssetOut}, summary="Upload a photo or video")
def upload(request: HttpRequest, file: File[UploadedFile], folder: Form[str] = uploads.DEFAULT_FOLDER):
    """Writes the file into the inbox's `folder` (relative; made if missing) under its own name, `name (1).ext` if
    that is taken, and registers it at once. Content the archive holds already comes back with status "duplicate"
    and is not indexed again; anything else is queued, and its status tells when it is indexed."""
    if file.size is not None and file.size > settings.MAX_ASSET_UPLOAD_BYTES:
        limit = settings.MAX_ASSET_UPLOAD_BYTES // (1024 * 1024)
        raise HttpError(413, f"The upload is larger than {limit} MB (REVSEARCH_MAX_ASSET_UPLOAD_MB).")
    try:
        path = uploads.save_upload(file.chunks(), file.name or "", folder)
    except uploads.UploadRefused as refused:
        raise HttpError(400, str(refused)) from None
    asset = _register(path)
    return _item(asset) | {"faces": asset.faces.count()}  # 201, the only answer declared; a move keeps its faces


@router.post("/{asset_id}/reindex", auth=WRITE, response=AssetReindexOut, summary="Index an asset again")
def reindex(request: HttpRequest, asset_id: int):
    """Queues the photo or video to be indexed from scratch; its old faces stay searchable until new ones replace
    them. Duplicates, missing and unsupported files are refused (409) with the reason."""
    asset = _asset(asset_id)
    if reason := _not_reindexable(asset):
        raise HttpError(409, reason)
    queued = dispatch.requeue([asset])
    asset.refresh_from_db(fields=["status"])
    return {"queued": queued, "status": asset.status}


@router.delete("/{asset_id}", auth=WRITE, response=AssetDeleteOut, summary="Delete an asset's entry (and its file)")
def delete_asset(request: HttpRequest, asset_id: int, delete_file: Query[bool] = False):
    """Removes the asset's row with its faces, frames, vectors and crops. The original file stays unless
    `delete_file`, and then only a regular file inside the inbox reached without following a link. A file left in
    the inbox is indexed again when the watcher next rescans it, as after deleting the entry in the admin."""
    asset = _asset(asset_id)
    with transaction.atomic():
        faces = asset.faces.count()
        kept = _delete_file(asset) if delete_file else ""
        asset.delete()  # faces, frames, vectors and stored files go too (media_index/signals.py)
    return {"deleted": asset_id, "faces_deleted": faces, "file_deleted": delete_file and not kept, "file_kept": kept}


def _asset(asset_id: int) -> Asset:
    return get_object_or_404(Asset, pk=asset_id)


def _item(asset: Asset) -> dict:
    """The fields every answer about an asset has (the list adds its count of faces, the detail the faces)."""
    return {
        "id": asset.pk,
        "path": asset.path,
        "display_path": asset.display_path,
        "kind": KIND_NAMES.get(asset.kind, "other"),
        "status": asset.status,
        "error": asset.error,
        "warning": asset.warning,
        "size": asset.size,
        "created_at": asset.created_at,
        "indexed_at": asset.indexed_at,
        "date": datetime.fromtimestamp(asset.date, timezone.get_current_timezone()).isoformat(),
        "url": links.asset_page(asset.pk),
        "file": links.asset_file(asset.pk) if http.is_servable(asset) else "",
    }


def _face(face: Face) -> dict:
    person = face.person
    return {
        "id": face.pk,
        "bbox": [round(value, 1) for value in face.box],
        "probability": face.probability,
        "person": {"id": person.pk, "name": person.name, "label": person.label} if person else None,
        "crop": links.media(face.crop),
        "frame_time": face.frame.timestamp if face.frame else None,
    }


def _folder_prefix(folder: str) -> str:
    """The path prefix of a folder of the inbox, checked as an upload's folder is (400 if it leaves the inbox)."""
    try:
        parts = uploads.folder_parts(folder)
    except uploads.UploadRefused as refused:
        raise HttpError(400, str(refused)) from None
    return str(Path(settings.INBOX_DIR).resolve().joinpath(*parts)).rstrip("/") + "/"


def _unix(day: date) -> float:
    """Midnight at the start of the day in the server's time zone, as Unix seconds (how asset dates are kept)."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone()).timestamp()


def _register(path: Path) -> Asset:
    """The uploaded file's asset, registered now so that the client gets its id (the watcher may get there first)."""
    try:
        with transaction.atomic():
            asset = intake.register_path(path, within=settings.INBOX_DIR)
    except IntegrityError:  # the watcher registered it in between
        asset = None
    asset = asset or Asset.objects.filter(path=str(path.resolve())).first()
    if asset is None:
        raise HttpError(409, "The file left the inbox as soon as it arrived (moved or deleted): upload it again.")
    return asset


def _not_reindexable(asset: Asset) -> str:
    """Why the asset cannot be indexed again, or ''."""
    if asset.kind == Asset.Kind.OTHER or asset.status == Asset.Status.UNSUPPORTED:
        return f"Asset {asset.pk} is never read: {asset.error or 'it is not a photo or video'}."
    if asset.status == Asset.Status.DUPLICATE:
        original = f"asset {asset.duplicate_of_id}" if asset.duplicate_of_id else "its original"
        return f"Asset {asset.pk} is a copy of {original}, which is indexed in its place: reindex that one."
    if asset.status == Asset.Status.MISSING:
        return f"Asset {asset.pk}'s file is gone from the inbox: put it back and the watcher indexes it again."
    return ""


def _delete_file(asset: Asset) -> str:
    """Unlink the asset's file from the inbox: '' when done, else why it was kept."""
    if not http.is_servable(asset):
        return "not a photo or video the archive read: never deleted; delete it by hand if needed"
    return inbox.unlink_inside(Path(asset.path), settings.INBOX_DIR)
