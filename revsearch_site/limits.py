"""The limit on hostile input that applies before any app code: request bodies by size."""

import logging

from django.conf import settings
from django.http import HttpResponse

logger = logging.getLogger(__name__)

# A Content-Length with more digits than this is larger than any limit, and is not converted (int() refuses
# strings of 4,300 digits or more).
MAX_DIGITS = 18


class RequestSizeLimitMiddleware:
    """Refuse a request body over MAX_REQUEST_BYTES with 413, before anything reads it, signed in or not.

    A body without a Content-Length (chunked) gets 411: Django reads no such body under WSGI, and saying so
    beats a form that silently arrives empty.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH", "").strip()
        if declared.isascii() and declared.isdigit() and _over(declared, settings.MAX_REQUEST_BYTES):
            logger.warning("refused a %s body of %s bytes for %s", request.method, declared[:30], request.path[:200])
            limit = settings.MAX_UPLOAD_BYTES // (1024 * 1024)
            return HttpResponse(
                f"The upload is larger than {limit} MB (REVSEARCH_MAX_UPLOAD_MB): send a smaller photo.\n",
                status=413,
                content_type="text/plain; charset=utf-8",
            )
        if not declared and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return HttpResponse(
                "Send the upload with a Content-Length.\n", status=411, content_type="text/plain; charset=utf-8"
            )
        return self.get_response(request)


def _over(digits: str, limit: int) -> bool:
    digits = digits.lstrip("0")
    return len(digits) > MAX_DIGITS or int(digits or "0") > limit
