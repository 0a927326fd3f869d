"""The tasks page: the indexing queue live, and a retry for what failed."""

from django.contrib import messages
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import monitoring


@require_GET
def tasks(request):
    return render(request, "media_index/tasks.html", {"snapshot": monitoring.snapshot()})


@require_GET
def tasks_status(request):
    """The page's figures as JSON, which the page polls to stay live (and scripts can read)."""
    return JsonResponse(monitoring.snapshot())


@require_POST
def retry(request):
    """Queue one failed asset (`asset`=id) or every failed one (`asset`=all) again."""
    target = request.POST.get("asset", "")
    if target == "all":
        count = monitoring.retry_failed()
    elif target.isdigit():
        count = monitoring.retry_failed([int(target)])
    else:
        return HttpResponseBadRequest("asset: give an asset id or `all`")
    if count:
        messages.success(request, f"Queued {count} failed asset{'s' if count != 1 else ''} again.")
    else:
        messages.info(request, "Nothing to retry: no such asset is failed now.")
    return redirect("tasks:page")
