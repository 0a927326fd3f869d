"""Every API error is JSON, {"message": ...}, with the status that says what went wrong."""

import logging
from collections.abc import Callable
from functools import partial

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from media_index.vector_store import VectorStoreUnavailable

logger = logging.getLogger(__name__)

NO_TOKEN = "Give a valid API token: `Authorization: Bearer <token>` (see docs/api.md to make one)."


def install(api: NinjaAPI) -> None:
    handlers: dict[type[Exception], Callable[..., HttpResponse]] = {
        ValidationError: _invalid,
        AuthenticationError: _unauthenticated,
        Throttled: _throttled,
        HttpError: _http_error,
        Http404: _not_found,
        ObjectDoesNotExist: _gone,
        VectorStoreUnavailable: _unavailable,
        Exception: _failed,
    }
    for error, handler in handlers.items():
        api.add_exception_handler(error, partial(handler, api=api))


def message(api: NinjaAPI, request: HttpRequest, status: int, text: str, **extra) -> HttpResponse:
    return api.create_response(request, {"message": text} | extra, status=status)


def _invalid(request: HttpRequest, error: ValidationError, api: NinjaAPI) -> HttpResponse:
    problems = [
        {"where": ".".join(str(part) for part in problem.get("loc", ())), "problem": problem.get("msg", "")}
        for problem in error.errors
    ]
    summary = "; ".join(f"{problem['where']}: {problem['problem']}" for problem in problems[:5])
    return message(api, request, 400, f"The request is not valid: {summary}", errors=problems)


def _unauthenticated(request: HttpRequest, error: AuthenticationError, api: NinjaAPI) -> HttpResponse:
    response = message(api, request, 401, NO_TOKEN)
    response["WWW-Authenticate"] = 'Bearer realm="revsearch"'
    return response


def _throttled(request: HttpRequest, error: Throttled, api: NinjaAPI) -> HttpResponse:
    wait = f" Try again in {error.wait:.0f} s." if error.wait else ""
    return message(api, request, 429, f"Too many requests with this token (REVSEARCH_API_RATE).{wait}")


def _http_error(request: HttpRequest, error: HttpError, api: NinjaAPI) -> HttpResponse:
    return message(api, request, error.status_code, str(error))


def _not_found(request: HttpRequest, error: Http404, api: NinjaAPI) -> HttpResponse:
    return message(api, request, 404, str(error) or "Not found.")


def _gone(request: HttpRequest, error: ObjectDoesNotExist, api: NinjaAPI) -> HttpResponse:
    """A row deleted by someone else between this request's lookup and its change."""
    return message(api, request, 404, "It was deleted meanwhile: list again and retry.")


def _unavailable(request: HttpRequest, error: VectorStoreUnavailable, api: NinjaAPI) -> HttpResponse:
    logger.warning("API %s %s: the vector store is unavailable: %s", request.method, request.path, error)
    return message(api, request, 503, "The vector store (Milvus) is unavailable: try again in a minute.")


def _failed(request: HttpRequest, error: Exception, api: NinjaAPI) -> HttpResponse:
    logger.exception("API %s %s failed", request.method, request.path)
    return message(api, request, 500, "The server failed on this request; its log says why.")
