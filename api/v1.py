"""The JSON API, version 1: its routers, its auth and throttle for every operation, its errors and its schema."""

from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, re_path
from ninja import NinjaAPI

from . import assets, errors, media, people, search, tasks, tokens
from .auth import READ
from .throttling import TokenRateThrottle

# Every operation may answer these, each as {"message": ...}; changes may also be refused to a read-only token.
ERRORS = {
    400: "The request is not valid: the message says what to fix.",
    401: "No token, or one that is unknown or revoked.",
    404: "No such thing (or the search expired).",
    413: "The upload is larger than the limit.",
    429: "Too many requests with this token: wait as Retry-After says.",
    503: "The vector store (Milvus) is unavailable: try again in a minute.",
}
READ_ONLY_REFUSED = {403: "The token is read-only."}


class RevSearchAPI(NinjaAPI):
    """The API with its errors in the schema: every operation lists the error answers it can give."""

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = {
            "title": "Problem",
            "type": "object",
            "properties": {"message": {"title": "Message", "type": "string"}},
            "required": ["message"],
        }
        problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in schema["paths"].values():
            for operation in operations.values():
                writes = any("WritableTokenAuth" in scheme for scheme in operation.get("security", []))
                errors_here = ERRORS | (READ_ONLY_REFUSED if writes else {})
                for status, description in errors_here.items():
                    operation["responses"].setdefault(status, {"description": description, "content": problem})
        return schema


api = RevSearchAPI(
    title="RevSearch API",
    version="1",
    description="Search the archive by photo, list and upload assets, review people and watch the queue. "
    "Every request carries `Authorization: Bearer <token>` (docs/api.md).",
    urls_namespace="api",
    openapi_url="/schema/",
    docs_url="/docs/",
    auth=READ,
    throttle=[TokenRateThrottle()],
)
errors.install(api)
api.add_router("/search", search.router)
api.add_router("/assets", assets.router)
api.add_router("/people", people.router)
api.add_router("/tasks", tasks.router)
api.add_router("/media", media.router)


def schema_access(view):
    """The schema is for scripts (a token) and for signed-in users of the docs page (a session); nobody else."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            kind, _, secret = request.headers.get("Authorization", "").partition(" ")
            if kind.lower() != "bearer" or tokens.find(secret.strip()) is None:
                return JsonResponse({"message": errors.NO_TOKEN}, status=401)
        return view(request, *args, **kwargs)

    return login_not_required(guarded)


@login_not_required
def no_such_endpoint(request: HttpRequest, rest: str) -> JsonResponse:
    return JsonResponse({"message": "No such endpoint: see /api/v1/docs/ for the API's operations."}, status=404)


def urlpatterns() -> list:
    """The API's URLs. Its operations answer for themselves (401 as JSON), outside the site's login redirect; the
    schema takes a token or a session; the docs page stays behind the login like the other pages; any other path
    under the API is a JSON 404."""
    patterns, _app, _namespace = api.urls
    for pattern in patterns:
        if not isinstance(pattern, URLPattern):
            continue
        if pattern.name == "openapi-json":
            pattern.callback = schema_access(pattern.callback)
        elif pattern.name != "openapi-view":
            login_not_required(pattern.callback)
    return [*patterns, re_path(r"^(?P<rest>.*)$", no_such_endpoint)]
