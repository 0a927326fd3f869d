"""Face crops, frame thumbnails and previews, for clients that show what the API answers."""

from django.http import HttpRequest
from ninja import Router

from search import http

router = Router(tags=["files"])


@router.get("/{path:path}", url_name="media", response={200: None}, summary="A face crop, frame thumbnail or preview")
def media(request: HttpRequest, path: str):
    """The JPEGs the service made, as the pages show them (the same checks: search/http.py, open_servable)."""
    return http.media_response(request, path)
