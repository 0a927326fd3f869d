"""System checks: uploaded query photos and face crops must never be written where the watcher indexes."""

import logging
from pathlib import Path

from django.conf import settings
from django.core import checks

logger = logging.getLogger(__name__)


def check_uploads_outside_inbox(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A query photo or face crop in the inbox would be indexed as an archive photo and found by every search."""
    inbox = Path(settings.INBOX_DIR).resolve()
    errors: list[checks.CheckMessage] = []
    for name, folder in (("QUERY_DIR", settings.QUERY_DIR), ("MEDIA_ROOT", settings.MEDIA_ROOT)):
        folder = Path(folder).resolve()
        if folder.is_relative_to(inbox):
            where = f"{name} {folder} is inside the watched inbox {inbox}"
        elif inbox.is_relative_to(folder):
            where = f"the watched inbox {inbox} is inside {name} {folder}"
        else:
            continue
        errors.append(
            checks.Error(
                f"{where}: uploaded query photos and face crops would be indexed as archive photos.",
                hint="Set REVSEARCH_INBOX to a folder apart from REVSEARCH_HOME's queries/ and media/ (by default "
                "it is $REVSEARCH_HOME/inbox), or move REVSEARCH_HOME out of the inbox.",
                id="search.E001",
            )
        )
    return errors
