"""Files are served with HTTP Range support so that videos seek; the player page starts at ?t=."""

import pytest

from media_index.models import Asset

pytestmark = pytest.mark.django_db


@pytest.fixture
def video(tmp_path) -> Asset:
    path = tmp_path / "clip.mp4"
    path.write_bytes(bytes(range(256)) * 4)  # 1,024 bytes whose values tell where they came from
    return Asset.objects.create(path=str(path), sha256="0" * 64, kind="video", size=1024, mtime=0, status="indexed")


def fetch(client, video, range_header=None):
    headers = {"HTTP_RANGE": range_header} if range_header else {}
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
    ],
)
def test_byte_ranges(admin_client, video, header, status, first, length, content_range):
    response, body = fetch(admin_client, video, header)
    assert response.status_code == status
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert len(body) == length and body[0] == first % 256
    if content_range:
        assert response["Content-Range"] == content_range and response["Content-Length"] == str(length)


def test_an_unsatisfiable_range_is_416(admin_client, video):
    response, _ = fetch(admin_client, video, "bytes=2000-")
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1024"


def test_the_player_starts_at_the_moment(admin_client, video):
    page = admin_client.get(f"/assets/{video.pk}/?t=3.5").content.decode()
    assert f'src="/assets/{video.pk}/file#t=3.50"' in page
    assert f'href="/admin/media_index/asset/{video.pk}/change/"' in page
    assert admin_client.get(f"/assets/{video.pk}/?t=soon").context["start"] == 0.0


def test_files_need_a_login(client, video):
    assert client.get(f"/assets/{video.pk}/file").status_code == 302
