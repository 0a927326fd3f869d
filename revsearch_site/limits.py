"""The limit on hostile input that applies before any app code: request bodies by size."""

import json
import logging

from django.conf import settings
from django.http import HttpResponse
from django.urls import NoReverseMatch, reverse

logger = logging.getLogger(__name__)

# A Content-Length with more digits than this is larger than any limit, and is not converted (int() refuses
# strings of 4,300 digits or more).
MAX_DIGITS = 18
# Room in an asset upload's body for the multipart framing and the form's other fields.
FORM_ROOM = 64 * 1024


class RequestSizeLimitMiddleware:
    """Refuse a request body over MAX_REQUEST_BYTES with 413, before anything reads it, signed in or not; an upload
    into the inbox through the API (POST to api:assets_upload) has MAX_ASSET_UPLOAD_BYTES instead.

    A body without a Content-Length (chunked) gets 411: Django reads no such body under WSGI, and saying so
    beats a form that silently arrives empty. Under /api/ both answers are JSON, as every API error is.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH", "").strip()
        upload_limit = settings.MAX_ASSET_UPLOAD_BYTES + FORM_ROOM
        if declared.isascii() and declared.isdigit() and _over(declared, min(settings.MAX_REQUEST_BYTES, upload_limit)):
            # Whether it is an asset upload is looked up only for a body over the lower limit, which few requests are.
            upload = _is_asset_upload(request)
            if _over(declared, upload_limit if upload else settings.MAX_REQUEST_BYTES):
                return _too_large(request, declared, upload)
        if not declared and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return _refusal(request, "Send the upload with a Content-Length.", 411)
        return self.get_response(request)


def _is_asset_upload(request) -> bool:
    if request.method != "POST":
        return False
    try:
        return request.path == reverse("api:assets_upload")
    except NoReverseMatch:  # a URL configuration without the API
        return False


def _too_large(request, declared: str, asset_upload: bool) -> HttpResponse:
    logger.warning("refused a %s body of %s bytes for %s", request.method, declared[:30], request.path[:200])
    if asset_upload:
        limit = settings.MAX_ASSET_UPLOAD_BYTES // (1024 * 1024)
        text = f"The upload is larger than {limit} MB (REVSEARCH_MAX_ASSET_UPLOAD_MB): send a smaller file."
    else:
        limit = settings.MAX_UPLOAD_BYTES // (1024 * 1024)
        text = f"The upload is larger than {limit} MB (REVSEARCH_MAX_UPLOAD_MB): send a smaller photo."
    return _refusal(request, text, 413)


def _refusal(request, text: str, status: int) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        return HttpResponse(json.dumps({"message": text}), status=status, content_type="application/json")
    return HttpResponse(f"{text}\n", status=status, content_type="text/plain; charset=utf-8")


def _over(digits: str, limit: int) -> bool:
    digits = digits.lstrip("0")
    return len(digits) > MAX_DIGITS or int(digits or "0") > limit
