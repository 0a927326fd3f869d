"""No query string, id or body makes an API operation answer 500, or answer anything but JSON: property-based tests
(Hypothesis) through the client, on every operation of the schema."""

import json
import re

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from people.models import Person
from tests.people.conftest import make_asset, make_face

pytestmark = pytest.mark.django_db

examples = hypothesis_settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What reaches a view: text of any kind, numbers of any size and sign, and ids that exist.
text = st.text(max_size=60)
numbers = st.one_of(st.integers(-(10**30), 10**30).map(str), st.text("0123456789", min_size=1, max_size=30))
values = st.one_of(text, numbers, st.sampled_from(["", "1", "true", "null", "photo", "all", "2026-12-04"]))
bodies = st.one_of(
    st.dictionaries(st.sampled_from(["name", "hidden", "into", "faces", "to", "delete_files", "asset"]), st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), text, st.lists(st.integers(-(2**70), 2**70), max_size=5)
    ), max_size=4),
    text,
)  # fmt: skip


@pytest.fixture
def operations(api) -> list[tuple[str, str]]:
    """(method, path template) of every operation but the uploads, which tests/api/test_assets.py covers."""
    schema = api.get("/api/v1/schema/").json()
    return [
        (method, path.removeprefix("/api/v1"))
        for path, methods in schema["paths"].items()
        for method in methods
        if (method, path) not in {("post", "/api/v1/search"), ("post", "/api/v1/assets")}
    ]


@pytest.fixture
def rows(media_root):
    person = Person.objects.create(name="Ada")
    make_face(make_asset(), person)


def _fill(path: str, value: str) -> str:
    """The path with each parameter replaced by value, taken literally (a backslash in it is no group reference)."""
    segment = value.replace("/", "%2F").replace("?", "%3F").replace("#", "%23")
    return re.sub(r"\{[a-z_]+(:path)?\}", lambda _match: segment, path)


@examples
@given(data=st.data(), segment=st.one_of(numbers, text), query=st.dictionaries(text, values, max_size=4), body=bodies)
def test_every_operation_answers_json_and_never_500(api, operations, rows, data, segment, query, body):
    method, path = data.draw(st.sampled_from(operations))
    url = "/api/v1" + _fill(path, segment)
    if method in ("get", "delete"):
        answer = getattr(api, method)(url, query)
    else:
        payload = json.dumps(body) if isinstance(body, dict) else body
        answer = getattr(api, method)(url, payload, content_type="application/json")
    assert answer.status_code < 500, (method, url, answer.content[:300])
    if not answer.get("Content-Type", "").startswith("image/"):
        assert "message" in answer.json() or answer.status_code < 300, (method, url)
