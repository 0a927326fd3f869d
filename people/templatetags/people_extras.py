"""Template filters of the people pages."""

from django import template
from django.core.files.storage import default_storage

register = template.Library()


@register.filter
def media_url(name: str | None) -> str:
    """The URL of a stored file by its name (a crop named by a query's annotation), or '' for none."""
    return default_storage.url(name) if name else ""
