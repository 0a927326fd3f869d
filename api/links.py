"""Where the API points a client: its own endpoints for files (token auth), the site's pages for people to open."""

from urllib.parse import quote

from django.db.models.fields.files import FieldFile
from django.urls import reverse


def asset_page(asset_id: int, start: float | None = None) -> str:
    """The asset's web page (a video starts at `start` seconds)."""
    url = reverse("search:asset", args=[asset_id])
    return f"{url}?t={start:.2f}" if start is not None else url


def asset_file(asset_id: int) -> str:
    return reverse("api:asset_file", kwargs={"asset_id": asset_id})


def media(stored: FieldFile | str | None) -> str | None:
    """A face crop, frame thumbnail or preview (the file, or its stored name), through the API; None when there is
    none."""
    name = stored if isinstance(stored, str) else stored.name if stored else ""
    if not name:
        return None
    return reverse("api:media", kwargs={"path": "PLACEHOLDER"}).replace("PLACEHOLDER", quote(name))
