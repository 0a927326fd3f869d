"""The pages: upload a photo, pick a face, see the photos and video moments of that person, and each asset."""

import math
import re

from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from media_index.imaging import UnreadablePhoto
from media_index.models import Asset
from media_index.upkeep import status_counts

from . import http, services
from .forms import SearchForm

# A face number: a few ASCII digits (str.isdigit would also pass "²", which int() refuses).
FACE_NUMBER = re.compile(r"[0-9]{1,4}")


def search_form(request):
    form = SearchForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            query_id = services.save_query(form.cleaned_data["photo"])
        except UnreadablePhoto as error:
            form.add_error("photo", str(error))
        else:
            return redirect("search:result", query_id=query_id)
    status = 400 if form.errors else 200
    return render(request, "search/form.html", {"form": form, "counts": status_counts()}, status=status)


@require_GET
def search_result(request, query_id: str):
    picked = request.GET.get("face", "")
    try:
        result = services.search_query(query_id, int(picked) if FACE_NUMBER.fullmatch(picked) else None)
    except services.QueryExpired:
        raise Http404("This search has expired; upload the photo again.") from None
    faces = [
        {
            "number": number,
            "style": _box_style(face.box, result.width, result.height),
            "thumb": _thumb_style(face.box, result.width, result.height),
        }
        for number, face in enumerate(result.faces)
    ]
    strong = [match for match in result.matches if match.same_person]
    weak = [match for match in result.matches if not match.same_person]
    context = {"query_id": query_id, "result": result, "faces": faces, "strong": strong, "weak": weak}
    return render(request, "search/result.html", context | {"form": SearchForm()})


@require_GET
def query_photo(request, query_id: str):
    return http.query_photo_response(request, services.query_path(query_id))


@require_GET
def asset_file(request, asset_id: int):
    """The original file, as it is in the archive; byte ranges are honoured so videos can seek."""
    return http.asset_response(request, get_object_or_404(Asset, pk=asset_id))


@require_GET
def asset_detail(request, asset_id: int):
    """One asset: a photo with its faces boxed, or a video in the player with a timeline of where faces are."""
    asset = get_object_or_404(Asset, pk=asset_id)
    try:
        start = float(request.GET.get("t", "0"))
    except ValueError:
        start = 0.0
    start = start if math.isfinite(start) and start > 0 else 0.0  # "nan", "inf" and "1e999" parse as floats
    context = {"asset": asset, "start": start, "faces": [], "moments": [], "servable": http.is_servable(asset)}
    if asset.is_video:
        duration = asset.duration or 1.0
        context["moments"] = [
            {
                "start": run[0].timestamp,
                "end": run[-1].timestamp,
                "frame": next((frame for frame in run if frame.thumbnail), None),
                "style": f"left:{100 * run[0].timestamp / duration:.2f}%;"
                f"width:{max(100 * (run[-1].timestamp - run[0].timestamp) / duration, 1.0):.2f}%",
            }
            for run in services.face_moments(asset)
        ]
    elif asset.width and asset.height:
        context["faces"] = [
            {"face": face, "style": _box_style(face.box, asset.width, asset.height)}
            for face in asset.faces.select_related("person")
        ]
        # A face the detector missed can be drawn on an indexed photo's preview (people:add_face).
        context["drawable"] = bool(asset.preview) and asset.status in (Asset.Status.INDEXED, Asset.Status.NO_FACES)
    return render(request, "search/asset.html", context)


@require_GET
def media_file(request, path: str):
    """Face crops, frame thumbnails and previews; behind the login like everything else."""
    return http.media_response(request, path)


def _box_style(box, width: int, height: int) -> str:
    """A face box as CSS percentages of the photo, so it scales with the photo on screen."""
    left, top, right, bottom = box
    return (
        f"left:{100 * left / width:.2f}%;top:{100 * top / height:.2f}%;"
        f"width:{100 * (right - left) / width:.2f}%;height:{100 * (bottom - top) / height:.2f}%"
    )


def _thumb_style(box, width: int, height: int) -> str:
    """One face of the photo filling a square tile, so a face can be picked from a list however crowded the photo."""
    left, top, right, bottom = box
    side = min(1.3 * max(right - left, bottom - top), width, height)
    x = min(max((left + right - side) / 2, 0), width - side)
    y = min(max((top + bottom - side) / 2, 0), height - side)
    # A percentage position p puts the photo's point p at the tile's point p: p = x / (width - side).
    position_x = 100 * x / (width - side) if width > side else 0
    position_y = 100 * y / (height - side) if height > side else 0
    return (
        f"background-size:{100 * width / side:.2f}% {100 * height / side:.2f}%;"
        f"background-position:{position_x:.2f}% {position_y:.2f}%"
    )
