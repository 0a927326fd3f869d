"""Unusual and hostile photos: each is indexed correctly or fails with a reason, and the next one goes on."""

import os

import numpy as np
import pytest
from PIL import Image

from media_index import face_engine, indexing, intake
from media_index.models import Asset
from tests.media_index.conftest import fake_face, put

pytestmark = pytest.mark.django_db(transaction=True)


def index(path):
    asset = intake.register_path(path)
    if asset.status == Asset.Status.QUEUED:
        indexing.index_asset(asset.pk)
    asset.refresh_from_db()
    return asset


@pytest.mark.parametrize(
    "name, make",
    [
        ("cmyk.jpg", lambda path: Image.new("CMYK", (120, 90), (10, 20, 30, 0)).save(path)),
        ("sixteen-bit.png", lambda path: Image.fromarray(np.full((90, 120), 40000, np.uint16)).save(path)),
        ("alpha.png", lambda path: Image.new("RGBA", (120, 90), (200, 100, 50, 128)).save(path)),
        ("grey.tiff", lambda path: Image.new("L", (120, 90), 128).save(path)),
        ("palette.bmp", lambda path: Image.new("P", (120, 90), 3).save(path)),
        ("thirty-two-bit.tiff", lambda path: Image.new("I", (120, 90), 30000).save(path)),
        ("ünïcode name with spaces.webp", lambda path: Image.new("RGB", (120, 90), "blue").save(path)),
    ],
)
def test_unusual_photos_are_decoded_as_rgb(inbox, sent, vector_store_on, media_root, monkeypatch, name, make):
    seen = []

    def find_faces(image):
        seen.append((image.mode, image.size))
        # The picture survives: a mid-tone stays a mid-tone rather than clipping to white or black.
        assert 10 < np.asarray(image).mean() < 245, f"{name} decoded to a flat image"
        return [fake_face(1)]

    monkeypatch.setattr(face_engine, "find_faces", find_faces)
    monkeypatch.setattr(face_engine, "model_name", lambda: "test-model")
    make(inbox / name)
    asset = index(inbox / name)
    assert asset.status == Asset.Status.INDEXED, asset.error
    assert seen == [("RGB", (120, 90))]


def test_a_decompression_bomb_is_refused_before_decoding(inbox, sent, engine, vector_store_on, settings):
    settings.MAX_IMAGE_PIXELS = 50_000_000
    bomb = inbox / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # 400 Mpx that compress to a few kB
    asset = index(bomb)
    assert asset.status == Asset.Status.FAILED
    assert "20000x20000 is over the limit" in asset.error


def test_an_animated_gif_is_not_a_photo(inbox, sent):
    frames = [Image.new("RGB", (40, 40), colour) for colour in ("red", "blue")]
    frames[0].save(inbox / "moving.gif", save_all=True, append_images=frames[1:])
    assert index(inbox / "moving.gif").status == Asset.Status.UNSUPPORTED


@pytest.mark.shared_data
def test_a_truncated_jpeg_fails_with_its_reason(inbox, sent, engine, vector_store_on):
    path = put(inbox, "person_b.jpg")
    path.write_bytes(path.read_bytes()[:20_000])
    asset = index(path)
    assert asset.status == Asset.Status.FAILED and "cannot decode" in asset.error


def test_a_symlink_out_of_the_inbox_is_refused(inbox, sent, tmp_path, settings):
    settings.INBOX_DIR = inbox
    outside = tmp_path / "secret.jpg"
    Image.new("RGB", (40, 40)).save(outside)
    os.symlink(outside, inbox / "link.jpg")
    asset = intake.register_path(inbox / "link.jpg", within=inbox)
    assert asset.status == Asset.Status.UNSUPPORTED and asset.path == str(inbox / "link.jpg")
    assert f"leads to {outside}, outside the inbox" in asset.error
    assert sent == [] and Asset.objects.count() == 1
    # A link that stays inside the inbox is read as the file it leads to.
    os.symlink(inbox / "inside.jpg", inbox / "alias.jpg")
    Image.new("RGB", (40, 40)).save(inbox / "inside.jpg")
    assert intake.register_path(inbox / "alias.jpg", within=inbox).path == str(inbox / "inside.jpg")
