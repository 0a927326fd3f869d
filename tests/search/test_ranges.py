"""Files are served with HTTP Range support so that videos seek; the player page starts at ?t=."""

import pytest

from media_index.models import Asset
from search.http import FILE_HEADERS, Unsatisfiable, byte_range

pytestmark = pytest.mark.django_db


@pytest.fixture
def video(inbox) -> Asset:
    path = inbox / "clip.mp4"
    path.write_bytes(bytes(range(256)) * 4)  # 1,024 bytes whose values tell where they came from
    return Asset.objects.create(path=str(path), sha256="0" * 64, kind="video", size=1024, mtime=0, status="indexed")


def fetch(client, video, range_header=None, **headers):
    if range_header is not None:
        headers["HTTP_RANGE"] = range_header
    response = client.get(f"/assets/{video.pk}/file", **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    response.close()
    return response, body


@pytest.mark.parametrize(
    "header, status, first, length, content_range",
    [
        (None, 200, 0, 1024, None),
        ("bytes=0-99", 206, 0, 100, "bytes 0-99/1024"),
        ("bytes=1000-", 206, 1000, 24, "bytes 1000-1023/1024"),
        ("bytes=-10", 206, 1014, 10, "bytes 1014-1023/1024"),
        ("bytes=500-5000", 206, 500, 524, "bytes 500-1023/1024"),
        ("Bytes=0-0", 206, 0, 1, "bytes 0-0/1024"),  # the unit is case-insensitive
        ("bytes=-5000", 206, 0, 1024, "bytes 0-1023/1024"),  # more than the file: all of it
        ("bytes=0-" + "9" * 5000, 206, 0, 1024, "bytes 0-1023/1024"),  # the digits that once answered 500
        ("bytes=" + "0" * 5000 + "7-7", 206, 7, 1, "bytes 7-7/1024"),
        # Not one valid range: ignored, the whole file (RFC 9110 14.2).
        ("bytes=" + "9" * 5000, 200, 0, 1024, None),
        ("bytes=0-1,5-9", 200, 0, 1024, None),
        ("bytes=5-3", 200, 0, 1024, None),
        ("bytes=--5", 200, 0, 1024, None),
        ("bytes=-", 200, 0, 1024, None),
        ("bytes=0x10-", 200, 0, 1024, None),
        ("bytes=١-٣", 200, 0, 1024, None),  # Arabic-Indic digits, which int() would take
        ("items=0-10", 200, 0, 1024, None),
        ("", 200, 0, 1024, None),
    ],
)
def test_byte_ranges(admin_client, video, header, status, first, length, content_range):
    response, body = fetch(admin_client, video, header)
    assert response.status_code == status
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert len(body) == length and body[0] == first % 256
    assert body == video_bytes()[first : first + length]
    if content_range:
        assert response["Content-Range"] == content_range and response["Content-Length"] == str(length)
    for name, value in FILE_HEADERS.items():
        assert response[name] == value


def video_bytes() -> bytes:
    return bytes(range(256)) * 4


@pytest.mark.parametrize("header", ["bytes=2000-", "bytes=1024-1030", "bytes=-0", "bytes=" + "9" * 5000 + "-"])
def test_an_unsatisfiable_range_is_416(admin_client, video, header):
    response, _ = fetch(admin_client, video, header)
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1024"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_if_range_sends_the_whole_file(admin_client, video):
    """No validator is ever sent, so none that a client sends back can be matched: the whole file, as RFC 9110 says."""
    response, body = fetch(admin_client, video, "bytes=0-9", HTTP_IF_RANGE='"abc"')
    assert response.status_code == 200 and len(body) == 1024


def test_an_empty_file_is_sent_whole(admin_client, video):
    open(video.path, "wb").close()
    response, body = fetch(admin_client, video, "bytes=0-")
    assert response.status_code == 200 and body == b""


@pytest.mark.parametrize(
    "header, size, expected",
    [
        ("bytes=0-0", 1, (0, 0)),
        ("bytes=0-", 10, (0, 9)),
        ("  bytes=2-4  ", 10, (2, 4)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=0-1, 3-4", 10, None),
        ("bytes=1-0", 10, None),
        ("bytes 0-1", 10, None),
        ("bytes=\n0-1", 10, None),
    ],
)
def test_the_range_parser(header, size, expected):
    assert byte_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=-0", "bytes=10-20"])
def test_the_range_parser_says_unsatisfiable(header):
    with pytest.raises(Unsatisfiable):
        byte_range(header, 10)


def test_the_player_starts_at_the_moment(admin_client, video):
    page = admin_client.get(f"/assets/{video.pk}/?t=3.5").content.decode()
    assert f'src="/assets/{video.pk}/file#t=3.50"' in page
    assert f'href="/admin/media_index/asset/{video.pk}/change/"' in page
    for start in ("soon", "nan", "inf", "-inf", "1e999", "-4"):
        assert admin_client.get(f"/assets/{video.pk}/?t={start}").context["start"] == 0.0


def test_files_need_a_login(client, video):
    assert client.get(f"/assets/{video.pk}/file").status_code == 302
