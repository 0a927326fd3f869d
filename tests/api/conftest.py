"""API test set-up: a user with a writable and a read-only token, a client that sends one, and the throttle's cache
in memory (the service keeps it in Redis, which unit tests do not start)."""

import uuid

import pytest
from django.test import Client

from api import tokens
from tests.media_index.conftest import sent  # noqa: F401
from tests.media_index.test_task_monitoring import archive, no_redis  # noqa: F401
from tests.search.conftest import engine, inbox, indexed_asset  # noqa: F401 - fixtures for the API's tests


@pytest.fixture(autouse=True)
def api_cache_in_memory(settings):
    """A fresh in-memory cache for each test, so no test sees another's counts."""
    settings.CACHES = settings.CACHES | {
        settings.API_THROTTLE_CACHE: {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"api-{uuid.uuid4().hex}",
        }
    }


@pytest.fixture
def api_user(django_user_model):
    return django_user_model.objects.create_user("script", password="not used")


@pytest.fixture
def write_secret(api_user) -> str:
    return tokens.issue(api_user, "tests")[1]


@pytest.fixture
def read_secret(api_user) -> str:
    return tokens.issue(api_user, "tests, read-only", read_only=True)[1]


class ApiClient(Client):
    """A test client that sends a bearer token with every request."""

    def __init__(self, secret: str) -> None:
        super().__init__(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def api(write_secret) -> ApiClient:
    return ApiClient(write_secret)


@pytest.fixture
def read_api(read_secret) -> ApiClient:
    return ApiClient(read_secret)
