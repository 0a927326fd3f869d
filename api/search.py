"""POST /search with a photo, GET /search/{id} for another face of it: the web form's search, as JSON."""

from typing import Literal

from django.conf import settings
from django.http import HttpRequest
from django.utils.datastructures import MultiValueDict
from ninja import File, Form, Path, Query, Router, Schema
from ninja.errors import HttpError
from ninja.files import UploadedFile

from media_index.imaging import UnreadablePhoto
from search import http, services
from search.forms import SearchForm

from . import links
from .assets import KIND_NAMES

router = Router(tags=["search"])

QUERY_ID = r"^[0-9a-f]{32}$"
KINDS = {"photo": "image", "video": "video"}
MAX_TOP = 200


class QueryFaceOut(Schema):
    number: int
    bbox: list[float]
    probability: float


class PersonRef(Schema):
    id: int
    name: str


class MomentOut(Schema):
    start: float
    end: float
    score: float
    distance: float
    same_person: bool
    frame_time: float
    frame: str | None
    url: str


class ResultOut(Schema):
    asset: int
    face: int
    path: str
    kind: str
    score: float
    distance: float
    same_person: bool
    bbox: list[float]
    person: PersonRef | None
    ranges: list[MomentOut]
    url: str
    file: str


class SearchOut(Schema):
    id: str
    width: int
    height: int
    faces: list[QueryFaceOut]
    chosen: int | None
    results: list[ResultOut]


@router.post("", response={200: SearchOut}, summary="Search with a photo")
def search_photo(
    request: HttpRequest,
    photo: File[UploadedFile],
    face: Form[int | None] = None,
    top: Form[int | None] = None,
    kind: Form[Literal["photo", "video"] | None] = None,
):
    """Finds the faces in the photo and searches one (the largest unless `face` picks another): photos and video
    moments of that person, best first. The answer's `id` searches another face of the same photo for a day."""
    _check_top(top)
    form = SearchForm(data={}, files=MultiValueDict({"photo": [photo]}))
    if not form.is_valid():
        too_large = (photo.size or 0) > settings.MAX_UPLOAD_BYTES
        raise HttpError(413 if too_large else 400, " ".join(str(error) for error in form.errors["photo"]))
    try:
        query_id = services.save_query(form.cleaned_data["photo"])
    except UnreadablePhoto as error:
        raise HttpError(400, str(error)) from None
    return _answer(query_id, face, top, kind)


@router.get("/{query_id}", response={200: SearchOut}, summary="Search another face of a photo already sent")
def search_again(
    request: HttpRequest,
    query_id: Path[str],
    face: Query[int | None] = None,
    top: Query[int | None] = None,
    kind: Query[Literal["photo", "video"] | None] = None,
):
    if not _is_query_id(query_id):
        raise HttpError(404, f"{query_id[:40]!r} is no search id: they are 32 hex digits, from POST /search.")
    _check_top(top)
    return _answer(query_id, face, top, kind)


def _is_query_id(text: str) -> bool:
    return services.QUERY_ID.fullmatch(text) is not None


def _check_top(top: int | None) -> None:
    if top is not None and not 1 <= top <= MAX_TOP:
        raise HttpError(400, f"top must be between 1 and {MAX_TOP}.")


def _answer(query_id: str, face: int | None, top: int | None, kind: str | None) -> dict:
    try:
        result = services.search_query(query_id, face, top, KINDS.get(kind or ""))
    except services.QueryExpired:
        raise HttpError(404, "This search has expired (kept a day) or never was: send the photo again.") from None
    if face is not None and result.faces and result.chosen != face:
        raise HttpError(400, f"face must be between 0 and {len(result.faces) - 1}: the photo has {len(result.faces)}.")
    return {
        "id": query_id,
        "width": result.width,
        "height": result.height,
        "faces": [
            {"number": number, "bbox": _rounded(found.box), "probability": found.probability}
            for number, found in enumerate(result.faces)
        ],
        "chosen": result.chosen,
        "results": [_result(match) for match in result.matches],
    }


def _result(match: services.Match) -> dict:
    asset = match.asset
    return {
        "asset": asset.pk,
        "face": match.face.pk,
        "path": asset.path,
        "kind": KIND_NAMES.get(asset.kind, "other"),
        "score": match.score,
        "distance": round(match.distance, 4),
        "same_person": match.same_person,
        "bbox": _rounded(match.face.box),
        "person": {"id": match.person.pk, "name": match.person.name} if match.person else None,
        "ranges": [
            {
                "start": round(moment.start, 3),
                "end": round(moment.end, 3),
                "score": moment.score,
                "distance": round(moment.distance, 4),
                "same_person": moment.same_person,
                "frame_time": round(moment.frame.timestamp, 3),
                "frame": links.media(moment.frame.thumbnail),
                "url": links.asset_page(asset.pk, moment.start),
            }
            for moment in match.moments
        ],
        "url": links.asset_page(asset.pk),
        "file": links.asset_file(asset.pk) if http.is_servable(asset) else "",
    }


def _rounded(box) -> list[float]:
    return [round(value, 1) for value in box]
