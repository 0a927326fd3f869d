"""Tokens: stored as digests, checked on every request (401 without one, 403 for a read-only one writing),
revocable, throttled per token; made in the admin and by `manage.py api_token`."""

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from openapi_spec_validator import validate

from api import tokens
from api.models import ApiToken
from people.models import PeopleEvent, Person
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_a_token_is_kept_only_as_its_digest(api_user):
    token, secret = tokens.issue(api_user, "a script")
    stored = ApiToken.objects.get(pk=token.pk)
    assert secret.startswith(tokens.PREFIX) and len(secret) > 40
    assert secret not in {stored.digest, stored.prefix, stored.name} and stored.digest == tokens.digest(secret)
    assert secret.startswith(stored.prefix)
    assert tokens.find(secret) == token
    assert tokens.find(secret + "x") is None and tokens.find(stored.digest) is None


def test_requests_without_a_good_token_get_401_as_json(api_user, write_secret, client):
    revoked, revoked_secret = tokens.issue(api_user)
    tokens.revoke(revoked)
    headers = [
        {},
        {"HTTP_AUTHORIZATION": "Bearer"},
        {"HTTP_AUTHORIZATION": "Bearer rvs_not-a-token"},
        {"HTTP_AUTHORIZATION": f"Token {write_secret}"},
        {"HTTP_AUTHORIZATION": f"Bearer {revoked_secret}"},
        {"HTTP_AUTHORIZATION": "Bearer " + "rvs_" + "\u0000" * 30},
    ]
    for header in headers:
        answer = client.get("/api/v1/tasks", **header)
        assert answer.status_code == 401, header
        assert answer["Content-Type"].startswith("application/json")
        assert "Bearer" in answer.json()["message"] and answer["WWW-Authenticate"].startswith("Bearer")


def test_a_deactivated_users_tokens_stop_working(api_user, write_secret, monkeypatch):
    from media_index import monitoring

    monkeypatch.setattr(monitoring, "snapshot", lambda: {"counts": {}})
    assert ApiClient(write_secret).get("/api/v1/tasks").status_code == 200
    api_user.is_active = False
    api_user.save()
    assert ApiClient(write_secret).get("/api/v1/tasks").status_code == 401


def test_a_read_only_token_reads_and_cannot_write(read_api, api, monkeypatch):
    from media_index import monitoring

    retried = []
    monkeypatch.setattr(monitoring, "snapshot", lambda: {"counts": {"failed": 1}})
    monkeypatch.setattr(monitoring, "retry_failed", lambda ids=None: retried.append(ids) or 1)
    assert read_api.get("/api/v1/tasks").json() == {"counts": {"failed": 1}}
    refused = read_api.post("/api/v1/tasks/retry", {"asset": "all"}, content_type="application/json")
    assert refused.status_code == 403 and "read-only" in refused.json()["message"] and retried == []
    done = api.post("/api/v1/tasks/retry", {"asset": 7}, content_type="application/json")
    assert done.status_code == 200 and done.json() == {"queued": 1} and retried == [[7]]
    bad = api.post("/api/v1/tasks/retry", {"asset": "some"}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["message"].startswith("The request is not valid")


def test_each_token_is_throttled_on_its_own(api_user, settings, monkeypatch):
    from media_index import monitoring

    monkeypatch.setattr(monitoring, "snapshot", lambda: {})
    settings.API_RATE = "3/m"
    first, second = ApiClient(tokens.issue(api_user)[1]), ApiClient(tokens.issue(api_user)[1])
    assert [first.get("/api/v1/tasks").status_code for _ in range(3)] == [200, 200, 200]
    throttled = first.get("/api/v1/tasks")
    assert throttled.status_code == 429 and "REVSEARCH_API_RATE" in throttled.json()["message"]
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert second.get("/api/v1/tasks").status_code == 200


def test_the_throttle_lets_requests_through_when_its_cache_is_down(api, settings, monkeypatch):
    from media_index import monitoring

    monkeypatch.setattr(monitoring, "snapshot", lambda: {})
    settings.API_RATE = "1/m"
    settings.CACHES = settings.CACHES | {
        settings.API_THROTTLE_CACHE: {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing answers
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    assert [api.get("/api/v1/tasks").status_code for _ in range(2)] == [200, 200]


def test_the_schema_is_valid_openapi_for_a_token_or_a_session(api, client, admin_client):
    assert client.get("/api/v1/schema/").status_code == 401
    schema = api.get("/api/v1/schema/").json()
    validate(schema)
    assert admin_client.get("/api/v1/schema/").json() == schema
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    assert {"/api/v1/search", "/api/v1/search/{query_id}", "/api/v1/tasks", "/api/v1/tasks/retry"} <= paths
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"


def test_the_docs_page_is_behind_the_login_and_loads_only_our_own_files(client, admin_client):
    assert client.get("/api/v1/docs/").status_code == 302
    page = admin_client.get("/api/v1/docs/").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page and "/api/v1/schema/" in page
    assert "http://" not in page and "https://" not in page and "//cdn" not in page


def test_changes_through_the_api_are_audited_as_the_tokens_user(api, api_user):
    person = Person.objects.create(name="")
    answer = api.patch(f"/api/v1/people/{person.pk}", {"name": "Ada"}, content_type="application/json")
    if answer.status_code == 404:
        pytest.skip("the people endpoints are not in yet")
    assert answer.status_code == 200
    event = PeopleEvent.objects.get(action=PeopleEvent.Action.RENAME)
    assert event.user == api_user and event.detail["new"] == "Ada"


def test_admin_makes_a_token_and_shows_its_secret_once(admin_client, api_user):
    answer = admin_client.post(
        reverse("admin:api_apitoken_add"), {"user": api_user.pk, "name": "cms", "read_only": "on"}, follow=True
    )
    assert answer.status_code == 200
    token = ApiToken.objects.get(name="cms")
    shown = [str(message) for message in answer.context["messages"]]
    secret = next(word for text in shown for word in text.split() if word.startswith(tokens.PREFIX))
    assert tokens.find(secret) == token and token.read_only and token.user == api_user
    again = admin_client.get(reverse("admin:api_apitoken_change", args=[token.pk])).content.decode()
    assert secret not in again and token.digest not in again
    admin_client.post(
        reverse("admin:api_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert tokens.find(secret) is None


def test_the_command_makes_lists_and_revokes_tokens(api_user):
    out = io.StringIO()
    call_command("api_token", "create", "script", "--read-only", "--name", "nightly", stdout=out, stderr=io.StringIO())
    secret = out.getvalue().strip()
    token = tokens.find(secret)
    assert token is not None and token.read_only and token.name == "nightly"
    listed = io.StringIO()
    call_command("api_token", "list", stdout=listed)
    assert token.prefix in listed.getvalue() and "read-only" in listed.getvalue() and secret not in listed.getvalue()
    call_command("api_token", "revoke", token.prefix, stdout=io.StringIO())
    assert tokens.find(secret) is None
    with pytest.raises(CommandError, match="No user is called"):
        call_command("api_token", "create", "nobody")
    with pytest.raises(CommandError, match="No active token"):
        call_command("api_token", "revoke", token.prefix)


def test_every_api_error_is_json(api):
    for answer in (api.get("/api/v1/nothing-here"), api.get("/api/v1/search/" + "0" * 32)):
        assert answer.status_code == 404
        assert "message" in json.loads(answer.content)


def operations(schema: dict) -> list[tuple[str, str, bool]]:
    """Every operation of the schema: its method, a URL with its path parameters filled with values of the right
    shape, and whether it asks for a writable token."""
    found = []
    for path, methods in schema["paths"].items():
        url = re.sub(r"\{[a-z_]+\}", "1", path.replace("{query_id}", "a" * 32).replace("{path}", "faces/a.jpg"))
        for method, operation in methods.items():
            found.append((method, url, "WritableTokenAuth" in str(operation.get("security"))))
    return found


def test_every_operation_wants_a_token_and_every_change_a_writable_one(api, read_api, client):
    every = operations(api.get("/api/v1/schema/").json())
    changes = [(method, url) for method, url, writes in every if writes]
    assert len(every) >= 15 and len(changes) >= 8, every
    assert ("post", "/api/v1/search") not in changes and all(method != "get" for method, _ in changes)
    for method, url, _ in every:
        answer = getattr(client, method)(url)
        assert answer.status_code == 401 and "message" in answer.json(), (method, url)
    for method, url in changes:
        answer = getattr(read_api, method)(url, {}, content_type="application/json")
        assert answer.status_code == 403 and "read-only" in answer.json()["message"], (method, url)
