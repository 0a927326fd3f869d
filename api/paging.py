"""Lists come a page at a time: the same query values and the same answer for every list of the API."""

from collections.abc import Callable
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from ninja.errors import HttpError

PER_PAGE = 50
MAX_PER_PAGE = 200


def page_of(rows: QuerySet, page: int, per_page: int, record: Callable[[Any], dict]) -> dict:
    """Page `page` (from 1) of the ordered rows, `per_page` to a page, each row as record(row): with the count of
    rows and of pages. A page past the last comes back with no items, so a client can read on until one is empty."""
    if page < 1:
        raise HttpError(400, "page counts from 1.")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise HttpError(400, f"per_page must be between 1 and {MAX_PER_PAGE}.")
    paginator = Paginator(rows, per_page)  # two queries whatever the page: a count and a slice
    shown = paginator.page(page).object_list if page <= paginator.num_pages else []
    return {
        "count": paginator.count,
        "page": page,
        "per_page": per_page,
        "pages": paginator.num_pages,
        "items": [record(row) for row in shown],
    }
