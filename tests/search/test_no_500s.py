"""No request header or query string makes a view answer 500: property-based tests (Hypothesis) through the client."""

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from media_index.models import Asset
from search.http import Unsatisfiable, byte_range
from tests.search.conftest import close, jpeg_upload

pytestmark = pytest.mark.django_db

# The fixtures (a client, rows, files) are made once per test and only read by the examples; no example database
# is written into the working tree, and no example is timed.
examples = hypothesis_settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What a WSGI server hands Django: headers and query strings decoded as Latin-1.
latin1 = st.text(st.characters(codec="latin-1"), max_size=300)
# Numbers of any length: int() refuses strings of 4,300 digits or more, which random text seldom reaches.
lengths = st.one_of(st.integers(1, 40), st.integers(4250, 6000))
digits = st.one_of(
    st.text("0123456789", min_size=1, max_size=40),
    lengths.map(lambda length: "9" * length),
    lengths.map(lambda length: "0" * length + "1"),
)
numbers = st.one_of(st.just(""), digits, st.integers(-(10**20), 10**20).map(str))
# Range headers: well-formed ones, ones near them, and anything at all.
range_headers = st.one_of(
    st.builds("bytes={}-{}".format, numbers, numbers),
    st.builds(
        "{}={}-{}{}".format,
        st.sampled_from(["bytes", "BYTES", "bytes ", "items", ""]),
        numbers,
        numbers,
        st.one_of(st.just(""), latin1, st.just(",0-1")),
    ),
    latin1,
)


@examples
@given(header=range_headers, size=st.integers(0, 10**15))
def test_the_range_parser_answers_every_header(header, size):
    try:
        wanted = byte_range(header, size)
    except Unsatisfiable:
        return
    if wanted is not None:
        first, last = wanted
        assert 0 <= first <= last < size


@pytest.fixture
def files(inbox, media_root, engine, vector_store_on, admin_client):
    """A video and a photo in the inbox, a crop, and a saved query with two faces."""
    clip = inbox / "clip.mp4"
    clip.write_bytes(bytes(range(256)) * 4)
    video = Asset.objects.create(path=str(clip), sha256="0" * 64, kind="video", size=1024, mtime=0, status="indexed")
    (media_root / "crops").mkdir(parents=True)
    (media_root / "crops" / "face.jpg").write_bytes(jpeg_upload().read())
    query = admin_client.post("/", {"photo": jpeg_upload()})["Location"]
    return {"video": video, "query": query}


def answer(client, path: str, **extra) -> int:
    """The status of a GET, the response read and closed (a 500 raises here, with its traceback)."""
    response = client.get(path, **extra)
    if response.streaming:
        b"".join(response.streaming_content)
    close(response)
    return response.status_code


@examples
@given(header=range_headers, if_range=st.one_of(st.none(), latin1))
def test_file_views_answer_any_range(admin_client, files, header, if_range):
    extra = {"HTTP_RANGE": header} | ({"HTTP_IF_RANGE": if_range} if if_range is not None else {})
    assert answer(admin_client, f"/assets/{files['video'].pk}/file", **extra) in (200, 206, 416)
    assert answer(admin_client, "/media/crops/face.jpg", **extra) in (200, 206, 416)
    assert answer(admin_client, files["query"] + "photo", **extra) in (200, 206, 416)


@examples
@given(
    face=st.one_of(latin1, digits, st.integers().map(str), st.sampled_from(["²", "١", "-1", "1e3", " 1", "0x1"])),
    start=st.one_of(latin1, st.floats(allow_nan=True).map(str), st.sampled_from(["nan", "inf", "-inf", "1e999"])),
    query_string=latin1,
)
def test_pages_answer_any_parameter(admin_client, files, face, start, query_string):
    video = files["video"].pk
    assert answer(admin_client, files["query"], data={"face": face}) == 200
    assert answer(admin_client, f"/assets/{video}/", data={"t": start}) == 200
    for page in (files["query"], f"/assets/{video}/", f"/assets/{video}/file", "/", "/tasks/"):
        assert answer(admin_client, page, QUERY_STRING=query_string) < 500


@examples
@given(
    asset_id=st.one_of(st.integers(min_value=0), digits),
    query_id=st.one_of(latin1, st.text("0123456789abcdef", min_size=32, max_size=32)),
    media=latin1,
)
def test_views_answer_any_id_or_path(admin_client, files, asset_id, query_id, media):
    for path in (
        f"/assets/{asset_id}/",
        f"/assets/{asset_id}/file",
        f"/search/{quote(query_id, safe='')}/",
        f"/search/{quote(query_id, safe='')}/photo",
        f"/media/{quote(media)}",
    ):
        assert answer(admin_client, path) in (200, 206, 301, 302, 404), path


HEADERS = [
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "HTTP_TRANSFER_ENCODING",
    "HTTP_COOKIE",
    "HTTP_ACCEPT",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_REFERER",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_HOST",
]


@examples
@given(headers=st.dictionaries(st.sampled_from(HEADERS), latin1, max_size=4))
def test_no_header_makes_a_500(admin_client, files, headers):
    for page in (files["query"], f"/assets/{files['video'].pk}/file", "/", "/healthz"):
        assert answer(admin_client, page, **headers) < 500 or page == "/healthz"
    response = admin_client.post("/", {"photo": jpeg_upload()}, **headers)
    close(response)
    assert response.status_code < 500
