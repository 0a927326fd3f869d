"""Uploads: oversized bodies refused unread, query photos bounded in pixels, scans and faces, faces found once."""

import io
import logging
import struct

import numpy as np
import pytest
from django.conf import settings as django_settings
from PIL import Image, ImageFile

from media_index import face_engine, imaging, indexing, intake
from media_index.imaging import jpeg_scans
from media_index.models import Asset
from search import services as search_services
from tests.media_index.conftest import fake_face
from tests.search.conftest import jpeg_upload

pytestmark = pytest.mark.django_db


class Unread:
    """A request body that counts every attempt to read it."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, *args) -> bytes:
        self.reads += 1
        return b"x" * 1024

    readline = read


def post_declaring(client, length: str, **extra):
    body = Unread()
    response = client.generic(
        "POST",
        "/",
        b"",
        content_type="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=length,
        **{"wsgi.input": body},
        **extra,
    )
    return response, body


def test_the_size_limit_comes_before_every_other_middleware():
    assert django_settings.MIDDLEWARE[0] == "revsearch_site.limits.RequestSizeLimitMiddleware"


@pytest.mark.parametrize("length", [str(300 * 1024 * 1024), "9" * 5000, "0" * 5000 + "999999999"])
def test_a_body_over_the_limit_is_refused_unread_without_signing_in(client, length):
    response, body = post_declaring(client, length)
    assert response.status_code == 413  # not the login redirect
    assert "larger than 25 MB (REVSEARCH_MAX_UPLOAD_MB)" in response.content.decode()
    assert body.reads == 0


def test_a_body_over_the_limit_is_refused_unread_when_signed_in(admin_client, settings):
    response, body = post_declaring(admin_client, str(settings.MAX_REQUEST_BYTES + 1))
    assert response.status_code == 413 and body.reads == 0


def test_a_body_within_the_limit_goes_on_to_the_login(client, settings):
    response, _ = post_declaring(client, str(settings.MAX_REQUEST_BYTES))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_body_without_a_length_is_refused_unread(client):
    response, body = post_declaring(client, "", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411 and body.reads == 0


def test_query_photos_have_their_own_pixel_limit(user_client, engine, media_root, settings, tmp_path):
    settings.MAX_QUERY_PIXELS = 10_000
    answer = user_client.post("/", {"photo": jpeg_upload(size=(200, 100))})
    assert answer.status_code == 400
    assert "200x100 is over the limit of 10,000 pixels (REVSEARCH_MAX_QUERY_PIXELS)" in answer.content.decode()
    assert engine.detections == 0 and not settings.QUERY_DIR.exists()
    # The inbox's own limit is not the query's.
    (tmp_path / "wide.jpg").write_bytes(jpeg_upload(size=(200, 100)).read())
    assert imaging.open_photo(tmp_path / "wide.jpg").size == (200, 100)


def many_scans(extra: int, size=(64, 48)) -> bytes:
    """A progressive JPEG with `extra` scans after Pillow's, each a few bytes: one end-of-band run over every block.

    The crafted attack: each scan costs the decoder a walk over all the blocks, yet adds almost nothing to the file.
    """
    buffer = io.BytesIO()
    Image.new("L", size, 128).save(buffer, format="JPEG", progressive=True)
    blocks = -(-size[0] // 8) * -(-size[1] // 8)
    # An AC Huffman table (class 1, id 1) with one code, "0", for EOB14: a run of 2^14 + 14 more bits of blocks.
    table = bytes([0x11, 1] + [0] * 15 + [0xE0])
    dht = b"\xff\xc4" + struct.pack(">H", 2 + len(table)) + table
    # One component (1) with DC table 0 and AC table 1, spectral band 1-63, first pass.
    sos = b"\xff\xda" + struct.pack(">H", 8) + bytes([1, 1, 0x01, 1, 63, 0])
    bits = "0" + format(max(blocks, 1 << 14) - (1 << 14), "014b")
    bits += "1" * (-len(bits) % 8)
    data = bytes(int(bits[at : at + 8], 2) for at in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")
    return buffer.getvalue()[:-2] + (dht + sos + data) * extra + b"\xff\xd9"


def scans_of(data: bytes) -> int:
    return jpeg_scans(io.BytesIO(data), stop_after=10_000)


def test_scans_are_counted_by_walking_the_segments():
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    for options in ({}, {"progressive": True}, {"progressive": True, "quality": 100}):
        buffer = io.BytesIO()
        noise.save(buffer, format="JPEG", **options)
        data = buffer.getvalue()
        # Coded data never holds FF DA (an FF there is followed by 00), so here a plain count agrees.
        assert scans_of(data) == data.count(b"\xff\xda") >= 1
    assert scans_of(many_scans(150)) == many_scans(150).count(b"\xff\xda") > 150
    # A JPEG thumbnail inside an APP1 segment is skipped whole, its scans not counted.
    thumbnail = many_scans(20)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(thumbnail)) + b"Exif\x00\x00" + thumbnail
    with_thumbnail = data[:2] + app1 + data[2:]
    assert scans_of(with_thumbnail) == scans_of(data)
    # Counting stops where asked, and leaves the stream where it was.
    stream = io.BytesIO(many_scans(150))
    stream.seek(7)
    assert jpeg_scans(stream, stop_after=101) == 101 and stream.tell() == 7
    assert scans_of(b"not a jpeg") == 0 and scans_of(data[:1000]) >= 1


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails a test that decodes a photo's pixels."""

    def load(self):
        raise AssertionError(f"{self.format} decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def test_a_jpeg_with_too_many_scans_is_refused_before_decoding(tmp_path, settings, no_decoding):
    path = tmp_path / "scans.jpg"
    path.write_bytes(many_scans(150))
    with pytest.raises(imaging.UnreadablePhoto, match="more than 100 progressive scans.*REVSEARCH_MAX_JPEG_SCANS"):
        imaging.open_photo(path)


def test_the_scan_limit_is_a_setting(tmp_path, settings):
    path = tmp_path / "scans.jpg"
    path.write_bytes(many_scans(150))
    settings.MAX_JPEG_SCANS = scans_of(path.read_bytes())
    assert imaging.open_photo(path).size == (64, 48)
    settings.MAX_JPEG_SCANS -= 1
    with pytest.raises(imaging.UnreadablePhoto, match="progressive scans"):
        imaging.open_photo(path)


def test_an_inbox_photo_with_too_many_scans_fails_with_the_reason(tmp_path, engine, monkeypatch):
    from media_index import tasks

    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda args, task_id: None)
    path = tmp_path / "scans.jpg"
    path.write_bytes(many_scans(150))
    asset = intake.register_path(path)
    indexing.index_asset(asset.pk)
    asset.refresh_from_db()
    assert asset.status == Asset.Status.FAILED and "progressive scans" in asset.error


def test_a_query_with_too_many_scans_is_refused_with_the_reason(user_client, engine, media_root):
    upload = io.BytesIO(many_scans(150))
    upload.name = "scans.jpg"
    answer = user_client.post("/", {"photo": upload})
    assert answer.status_code == 400 and "more than 100 progressive scans" in answer.content.decode()
    assert engine.detections == 0


@pytest.fixture
def crowd(engine):
    """Fifty faces, largest first as the detector gives them."""
    engine.faces = [fake_face(seed, box=(seed * 10.0, 0.0, seed * 10.0 + 100 - seed, 100.0)) for seed in range(50)]
    return engine.faces


def test_a_query_keeps_only_its_largest_faces(user_client, engine, crowd, media_root, vector_store_on, settings):
    settings.QUERY_MAX_FACES = 30
    answer = user_client.post("/", {"photo": jpeg_upload(size=(600, 200))}, follow=True)
    result = answer.context["result"]
    assert [face.box for face in result.faces] == [face.box for face in crowd[:30]]
    assert engine.embedded == [30]  # the other twenty were never embedded


def test_a_querys_faces_are_found_once_and_reused_for_each_click(
    user_client, engine, media_root, vector_store_on, caplog, monkeypatch
):
    answer = user_client.post("/", {"photo": jpeg_upload()}, follow=True)
    page = answer.request["PATH_INFO"]
    assert answer.context["result"].chosen == 0
    assert user_client.get(page + "?face=1").context["result"].chosen == 1
    assert user_client.get(page + "?face=0").context["result"].chosen == 0
    assert engine.detections == 1 and engine.embedded == [2]

    # Faces kept from another face model are found again, once.
    query_id = page.split("/")[2]
    stored = np.load(search_services.faces_path(query_id))
    assert stored["embeddings"].shape == (2, 512) and stored["boxes"].shape == (2, 4)
    monkeypatch.setattr(face_engine, "model_name", lambda model=None: "another-model")
    user_client.get(page + "?face=1")
    user_client.get(page + "?face=1")
    assert engine.detections == 2

    # Lost or damaged faces are found again rather than failing the page.
    search_services.faces_path(query_id).write_bytes(b"not a zip")
    with caplog.at_level(logging.WARNING):
        assert user_client.get(page + "?face=1").status_code == 200
    assert "cannot read its faces" in caplog.text
    search_services.faces_path(query_id).unlink()
    assert user_client.get(page + "?face=1").context["result"].chosen == 1
    assert engine.detections == 4 and search_services.faces_path(query_id).is_file()


def test_query_ids_are_hex_uuids():
    with pytest.raises(ValueError, match="not a query id"):
        search_services.query_path("../../secret_key")
