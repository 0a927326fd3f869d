"""The tasks page's figures (/tasks/status.json), and retrying what failed."""

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema

from media_index import monitoring

from .auth import WRITE

router = Router(tags=["tasks"])


class RetryIn(Schema):
    asset: int | Literal["all"]


class RetryOut(Schema):
    queued: int


@router.get("", response=dict[str, Any], summary="The queue: assets by stage, workers, throughput, failures")
def status(request: HttpRequest):
    """The figures the tasks page shows and polls, as /tasks/status.json gives them."""
    return monitoring.snapshot()


@router.post("/retry", auth=WRITE, response=RetryOut, summary="Queue failed assets again")
def retry(request: HttpRequest, body: RetryIn):
    """One failed asset (`asset`: its id) or every failed one (`asset`: "all"); `queued` says how many went."""
    return {"queued": monitoring.retry_failed() if body.asset == "all" else monitoring.retry_failed([body.asset])}
