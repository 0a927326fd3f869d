"""What the file views serve: photos and videos from inside the inbox only, never through a link, always sandboxed.

A link at an asset's path is never followed, even one to another file of the inbox: the watcher records a link's
target under the target's own path (register_path resolves it), so a link found at a recorded path was swapped in
after registration. The target is served under its own asset.
"""

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from media_index import intake
from media_index.models import PHOTO_SUFFIXES, VIDEO_SUFFIXES, Asset
from search.http import ASSET_TYPES, FILE_HEADERS, IMAGE_TYPES
from tests.search.conftest import close

pytestmark = pytest.mark.django_db

SECRET = b"the-secret-key-of-the-home"


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file of the home outside the inbox, as the secret key is."""
    path = tmp_path / "home" / "secret_key"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def no_tasks(monkeypatch):
    from media_index import tasks

    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda args, task_id: None)


def photo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), "navy").save(path, format="JPEG")
    return path


def asset_at(path: Path, kind: str = "image", status: str = "indexed") -> Asset:
    """An asset row as if registered and indexed, whatever is at path now."""
    return Asset.objects.create(path=str(path), sha256="0" * 64, kind=kind, size=1, mtime=0, status=status)


def get(client, url: str, **headers):
    """The answer and its whole body, the file closed."""
    response = client.get(url, **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    close(response)
    return response, body


def assert_file_headers(response) -> None:
    for name, value in FILE_HEADERS.items():
        assert response[name] == value


def test_a_link_to_the_secret_key_is_not_served(admin_client, inbox, secret, no_tasks):
    link = inbox / "holiday.jpg"
    link.symlink_to(secret)
    refused = intake.register_path(link, within=inbox)
    assert refused.status == Asset.Status.UNSUPPORTED
    response, body = get(admin_client, f"/assets/{refused.pk}/file")
    assert response.status_code == 404 and SECRET not in body

    # Even a row that says indexed: the link is not followed.
    Asset.objects.filter(pk=refused.pk).update(kind="image", status="indexed")
    response, body = get(admin_client, f"/assets/{refused.pk}/file")
    assert response.status_code == 404 and SECRET not in body


def test_a_link_swapped_in_after_registration_is_not_served(admin_client, inbox, secret, no_tasks):
    path = photo(inbox / "holiday.jpg")
    asset = intake.register_path(path, within=inbox)
    response, body = get(admin_client, f"/assets/{asset.pk}/file")
    assert response.status_code == 200 and body == path.read_bytes() and response["Content-Type"] == "image/jpeg"
    assert_file_headers(response)

    path.unlink()
    path.symlink_to(secret)
    response, body = get(admin_client, f"/assets/{asset.pk}/file")
    assert response.status_code == 404 and SECRET not in body


def test_a_folder_swapped_for_a_link_is_not_served(admin_client, inbox, tmp_path, no_tasks):
    """O_NOFOLLOW guards only the last step; the real path of the open file guards the rest."""
    album = inbox / "album"
    asset = intake.register_path(photo(album / "me.jpg"), within=inbox)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "me.jpg").write_bytes(SECRET)
    shutil.rmtree(album)
    album.symlink_to(outside, target_is_directory=True)
    response, body = get(admin_client, f"/assets/{asset.pk}/file")
    assert response.status_code == 404 and SECRET not in body


def test_a_link_inside_the_inbox_is_not_followed_its_target_is_served(admin_client, inbox, no_tasks):
    target = photo(inbox / "original.jpg")
    link = inbox / "shortcut.jpg"
    link.symlink_to(target)
    registered = intake.register_path(link, within=inbox)
    assert registered.path == str(target)  # the watcher records the target under its own path
    assert get(admin_client, f"/assets/{registered.pk}/file")[0].status_code == 200
    # A row at the link's own path (a file replaced by a link after it was registered): not followed.
    assert get(admin_client, f"/assets/{asset_at(link).pk}/file")[0].status_code == 404


@pytest.mark.parametrize(
    "name, content",
    [
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"/>'),
        ("page.html", b"<script>fetch('/admin/')</script>"),
        ("feed.xml", b'<x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>'),
        ("page.htm", b"<script>alert(1)</script>"),
    ],
)
def test_pages_and_drawings_in_the_inbox_are_never_served(admin_client, inbox, no_tasks, name, content):
    path = inbox / name
    path.write_bytes(content)
    asset = intake.register_path(path, within=inbox)
    assert asset.kind == Asset.Kind.OTHER and asset.status == Asset.Status.UNSUPPORTED
    response, body = get(admin_client, f"/assets/{asset.pk}/file")
    assert response.status_code == 404 and content not in body
    assert "download</a>" not in admin_client.get(f"/assets/{asset.pk}/").content.decode()

    # Whatever its row says, its suffix has no content type to be served as.
    Asset.objects.filter(pk=asset.pk).update(kind="image", status="indexed")
    response, body = get(admin_client, f"/assets/{asset.pk}/file")
    assert response.status_code == 404 and content not in body


def test_a_photo_the_watcher_refused_is_not_served(admin_client, inbox):
    asset = asset_at(photo(inbox / "fine.jpg"), status="unsupported")
    assert get(admin_client, f"/assets/{asset.pk}/file")[0].status_code == 404


@pytest.mark.parametrize("status", ["indexed", "no_faces", "failed", "duplicate", "queued"])
def test_photos_in_the_inbox_are_served_whatever_became_of_their_indexing(admin_client, inbox, status):
    asset = asset_at(photo(inbox / "fine.jpg"), status=status)
    response, _ = get(admin_client, f"/assets/{asset.pk}/file")
    assert response.status_code == 200
    assert 'filename="fine.jpg"' in response["Content-Disposition"]


def test_an_odd_name_cannot_break_the_download_header(admin_client, inbox):
    asset = asset_at(photo(inbox / 'two\nlines "quoted" é.jpg'))
    response, _ = get(admin_client, f"/assets/{asset.pk}/file")
    assert response.status_code == 200
    assert response["Content-Disposition"] == "inline; filename*=utf-8''two%0Alines%20%22quoted%22%20%C3%A9.jpg"


def test_a_file_outside_the_inbox_is_not_served(admin_client, inbox, tmp_path):
    asset = asset_at(photo(tmp_path / "elsewhere" / "fine.jpg"))
    assert get(admin_client, f"/assets/{asset.pk}/file")[0].status_code == 404


def test_a_fifo_or_a_folder_named_like_a_photo_is_404_at_once(admin_client, inbox):
    fifo = inbox / "stream.mp4"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    folder = inbox / "folder.jpg"
    folder.mkdir()
    for path, kind in ((fifo, "video"), (folder, "image")):
        assert get(admin_client, f"/assets/{asset_at(path, kind=kind).pk}/file")[0].status_code == 404


def test_every_photo_and_video_suffix_has_a_content_type_and_nothing_else_does():
    assert set(ASSET_TYPES) == PHOTO_SUFFIXES | VIDEO_SUFFIXES
    assert all(value.startswith(("image/", "video/")) for value in ASSET_TYPES.values())
    assert set(IMAGE_TYPES) == PHOTO_SUFFIXES


def test_crops_are_served_sandboxed_and_only_from_the_media_folder(admin_client, media_root, secret):
    crop = photo(media_root / "crops" / "face.jpg")
    response, body = get(admin_client, "/media/crops/face.jpg")
    assert response.status_code == 200 and body == crop.read_bytes() and response["Content-Type"] == "image/jpeg"
    assert_file_headers(response)

    (media_root / "crops" / "linked.jpg").symlink_to(secret)
    (media_root / "crops" / "drawing.svg").write_bytes(b"<svg onload='alert(1)'/>")
    shutil.copy(secret, media_root.parent / "secret.jpg")
    for url in (
        "/media/crops/linked.jpg",
        "/media/crops/drawing.svg",
        "/media/../secret.jpg",
        "/media/crops/../../secret.jpg",
        "/media/%2e%2e/secret.jpg",
        f"/media/{media_root.parent / 'secret.jpg'}",
        "/media/crops/",
        "/media/crops/face.jpg%00.svg",
    ):
        response, body = get(admin_client, url)
        assert response.status_code == 404, url
        assert SECRET not in body


def test_query_photos_are_served_sandboxed_and_never_through_a_link(admin_client, media_root, secret):
    query_id = "ab" * 16
    photo(media_root.parent / "queries" / f"{query_id}.jpg")
    response, _ = get(admin_client, f"/search/{query_id}/photo")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert_file_headers(response)

    query = media_root.parent / "queries" / f"{query_id}.jpg"
    query.unlink()
    query.symlink_to(secret)
    response, body = get(admin_client, f"/search/{query_id}/photo")
    assert response.status_code == 404 and SECRET not in body
    assert get(admin_client, "/search/" + "0" * 32 + "/photo")[0].status_code == 404
