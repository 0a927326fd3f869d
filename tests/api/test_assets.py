"""The assets endpoints: list with filters and pages, one asset, its file, upload into the inbox, reindex, delete."""

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from api.assets import StatusName
from media_index import vector_store
from media_index.models import Asset, Face, Frame
from people.models import Person
from tests.conftest import SAMPLES
from tests.people.conftest import make_asset, make_face

pytestmark = pytest.mark.django_db

ASSETS = "/api/v1/assets"


@pytest.fixture
def inbox(settings, tmp_path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    settings.INBOX_DIR = folder
    return folder


@pytest.fixture
def vectors_deleted(monkeypatch) -> list[int]:
    """Milvus, faked: the face ids whose vectors were deleted."""
    deleted: list[int] = []
    monkeypatch.setattr(vector_store, "delete_faces", lambda ids: deleted.extend(ids))
    return deleted


def in_inbox(inbox: Path, relative: str, content: bytes = b"photo", **fields) -> Asset:
    path = inbox / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    asset = make_asset(fields.pop("kind", Asset.Kind.IMAGE), path=str(path.resolve()))
    Asset.objects.filter(pk=asset.pk).update(size=len(content), **fields)
    asset.refresh_from_db()
    return asset


def ids(answer) -> list[int]:
    return [item["id"] for item in answer.json()["items"]]


def upload(client, name: str, content: bytes, **form):
    return client.post(ASSETS, {"file": SimpleUploadedFile(name, content)} | form)


# Listing


def test_the_list_is_newest_first_in_pages(api):
    assets = [make_asset() for _ in range(5)]
    start = timezone.now()
    for age, asset in enumerate(reversed(assets)):
        Asset.objects.filter(pk=asset.pk).update(created_at=start - timedelta(minutes=age))
    newest_first = [asset.pk for asset in reversed(assets)]

    first = api.get(ASSETS, {"per_page": 2})
    assert first.status_code == 200
    assert {key: first.json()[key] for key in ("count", "page", "per_page", "pages")} == {
        "count": 5, "page": 1, "per_page": 2, "pages": 3,
    }  # fmt: skip
    assert ids(first) == newest_first[:2]
    assert ids(api.get(ASSETS, {"per_page": 2, "page": 3})) == newest_first[4:]
    assert ids(api.get(ASSETS, {"per_page": 2, "page": 4})) == []  # past the end: empty, not an error
    assert ids(api.get(ASSETS)) == newest_first


def test_assets_made_in_the_same_instant_come_newest_row_first(api):
    made = [make_asset() for _ in range(3)]
    Asset.objects.update(created_at=timezone.now())
    assert ids(api.get(ASSETS)) == [asset.pk for asset in reversed(made)]


@pytest.mark.parametrize(
    "query",
    [{"page": 0}, {"page": -1}, {"page": "two"}, {"per_page": 0}, {"per_page": 201}, {"per_page": "many"}],
)
def test_bad_pages_are_400_with_a_message(api, query):
    answer = api.get(ASSETS, query)
    assert answer.status_code == 400
    assert answer.json()["message"]


def test_items_carry_their_fields_and_links(api, inbox):
    photo = in_inbox(inbox, "trip/a.jpg", taken_at=datetime(2024, 6, 1, 12, tzinfo=UTC).timestamp())
    make_face(photo)
    make_face(photo)
    refused = make_asset(path=str(inbox / "notes.txt"))
    Asset.objects.filter(pk=refused.pk).update(kind=Asset.Kind.OTHER, status=Asset.Status.UNSUPPORTED, error="no")

    items = {item["id"]: item for item in api.get(ASSETS).json()["items"]}
    item = items[photo.pk]
    assert item["path"] == photo.path and item["display_path"] == os.path.join("trip", "a.jpg")
    assert (item["kind"], item["status"], item["size"], item["faces"]) == ("photo", "indexed", 5, 2)
    assert datetime.fromisoformat(item["date"]) == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert item["url"] == reverse("search:asset", args=[photo.pk])
    assert item["file"] == f"/api/v1/assets/{photo.pk}/file"
    assert (items[refused.pk]["kind"], items[refused.pk]["file"], items[refused.pk]["faces"]) == ("other", "", 0)


def test_the_list_filters_by_status_and_kind(api):
    photo, video = make_asset(), make_asset(Asset.Kind.VIDEO)
    failed = make_asset()
    Asset.objects.filter(pk=failed.pk).update(status=Asset.Status.FAILED)
    other = make_asset()
    Asset.objects.filter(pk=other.pk).update(kind=Asset.Kind.OTHER, status=Asset.Status.UNSUPPORTED)

    assert ids(api.get(ASSETS, {"status": "failed"})) == [failed.pk]
    assert set(ids(api.get(ASSETS, {"kind": "photo"}))) == {photo.pk, failed.pk}
    assert ids(api.get(ASSETS, {"kind": "video"})) == [video.pk]
    assert ids(api.get(ASSETS, {"kind": "other"})) == [other.pk]
    assert ids(api.get(ASSETS, {"kind": "photo", "status": "indexed"})) == [photo.pk]


@pytest.mark.parametrize(
    "query", [{"status": "done"}, {"kind": "image"}, {"since": "yesterday"}, {"until": "2024-13-01"}]
)
def test_unknown_filter_values_are_400(api, query):
    answer = api.get(ASSETS, query)
    assert answer.status_code == 400 and answer.json()["message"]


def test_the_status_filter_knows_every_status():
    assert set(get_args(StatusName)) == set(Asset.Status.values)


def test_the_list_filters_by_folder_inside_the_inbox(api, inbox):
    top = in_inbox(inbox, "top.jpg")
    trip = in_inbox(inbox, "trip/a.jpg")
    deeper = in_inbox(inbox, "trip/day2/b.jpg")
    in_inbox(inbox, "trips/c.jpg")  # shares the folder's name as a prefix, but is not in it
    make_asset(path="/archive/trip/d.jpg")  # registered from elsewhere

    assert set(ids(api.get(ASSETS, {"folder": "trip"}))) == {trip.pk, deeper.pk}
    assert set(ids(api.get(ASSETS, {"folder": "trip/day2/"}))) == {deeper.pk}
    assert set(ids(api.get(ASSETS, {"folder": "./trip/./day2"}))) == {deeper.pk}
    assert top.pk in ids(api.get(ASSETS, {"folder": ""})) and len(ids(api.get(ASSETS, {"folder": "."}))) == 4
    assert ids(api.get(ASSETS, {"folder": "nowhere"})) == []


@pytest.mark.parametrize("folder", ["/archive", "..", "trip/../../archive", "bad\x00"])
def test_folders_outside_the_inbox_are_400(api, inbox, folder):
    answer = api.get(ASSETS, {"folder": folder})
    assert answer.status_code == 400 and answer.json()["message"]


def test_the_list_filters_by_date_taken_else_file_time(api, settings):
    settings.TIME_ZONE = "UTC"

    def on(day: str, taken: bool) -> Asset:
        moment = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
        asset = make_asset(mtime=moment if not taken else 0.0)
        Asset.objects.filter(pk=asset.pk).update(taken_at=moment if taken else None)
        return asset

    may = on("2024-05-31T23:59:59", taken=True)
    june = on("2024-06-01T00:00:00", taken=False)
    late_june = on("2024-06-30T23:59:59", taken=True)
    july = on("2024-07-01T00:00:00", taken=False)

    assert set(ids(api.get(ASSETS, {"since": "2024-06-01"}))) == {june.pk, late_june.pk, july.pk}
    assert set(ids(api.get(ASSETS, {"until": "2024-06-30"}))) == {may.pk, june.pk, late_june.pk}
    assert set(ids(api.get(ASSETS, {"since": "2024-06-01", "until": "2024-06-30"}))) == {june.pk, late_june.pk}
    assert ids(api.get(ASSETS, {"since": "2024-07-02"})) == []


# One asset


def test_a_photo_comes_with_its_faces_and_people(api, media_root):
    photo = make_asset()
    Asset.objects.filter(pk=photo.pk).update(width=640, height=480)
    ada = Person.objects.create(name="Ada")
    named = make_face(photo, ada, crop=True)
    unnamed = make_face(photo, probability=0.5)

    answer = api.get(f"{ASSETS}/{photo.pk}")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["id"], body["kind"], body["width"], body["height"], body["duplicate_of"]) == (
        photo.pk, "photo", 640, 480, None,
    )  # fmt: skip
    assert body["frames"] == [] and body["moments"] == []
    faces = {face["id"]: face for face in body["faces"]}
    assert faces[named.pk]["person"] == {"id": ada.pk, "name": "Ada", "label": ada.label}
    assert faces[named.pk]["crop"].startswith("/api/v1/media/crops/")
    assert faces[named.pk]["bbox"] == [1.0, 2.0, 30.0, 40.0] and faces[named.pk]["frame_time"] is None
    assert (faces[unnamed.pk]["person"], faces[unnamed.pk]["crop"], faces[unnamed.pk]["probability"]) == (
        None, None, 0.5,
    )  # fmt: skip


def test_a_video_comes_with_the_frames_that_hold_faces_and_its_moments(api, settings):
    settings.VIDEO_SAMPLE_FPS = 1.0
    video = make_asset(Asset.Kind.VIDEO)
    Asset.objects.filter(pk=video.pk).update(duration=20.0, frames_total=20, frames_done=20)
    frames = [Frame.objects.create(asset=video, index=index, timestamp=float(index)) for index in range(12)]
    faces = [make_face(video, frame=frames[index]) for index in (1, 2, 3, 10, 11)]

    body = api.get(f"{ASSETS}/{video.pk}").json()
    assert (body["kind"], body["duration"], body["frames_total"]) == ("video", 20.0, 20)
    assert [frame["index"] for frame in body["frames"]] == [1, 2, 3, 10, 11]  # the empty frames are left out
    assert [(moment["start"], moment["end"]) for moment in body["moments"]] == [(1.0, 3.0), (10.0, 11.0)]
    assert body["moments"][1]["url"].endswith(f"/{video.pk}/?t=10.00")
    assert [face["frame_time"] for face in body["faces"]] == [1.0, 2.0, 3.0, 10.0, 11.0]
    assert [face["id"] for face in body["faces"]] == [face.pk for face in faces]


@pytest.mark.parametrize(("method", "path"), [("get", ""), ("get", "/file"), ("post", "/reindex"), ("delete", "")])
def test_unknown_assets_are_404_json(api, method, path):
    for unknown in ("999999", "9" * 30):
        answer = getattr(api, method)(f"{ASSETS}/{unknown}{path}")
        assert answer.status_code == 404 and answer.json()["message"]


def test_the_file_is_served_with_byte_ranges(api, inbox):
    photo = in_inbox(inbox, "a.jpg", b"0123456789")
    whole = api.get(f"{ASSETS}/{photo.pk}/file")
    assert whole.status_code == 200 and b"".join(whole.streaming_content) == b"0123456789"
    part = api.get(f"{ASSETS}/{photo.pk}/file", HTTP_RANGE="bytes=2-4")
    assert part.status_code == 206 and b"".join(part.streaming_content) == b"234"


def test_a_file_that_is_not_served_is_404(api, inbox, tmp_path):
    refused = in_inbox(inbox, "notes.txt", kind=Asset.Kind.OTHER, status=Asset.Status.UNSUPPORTED)
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"secret")
    (inbox / "link.jpg").symlink_to(outside)
    linked = make_asset(path=str(inbox / "link.jpg"))
    for asset in (refused, linked):
        answer = api.get(f"{ASSETS}/{asset.pk}/file")
        assert answer.status_code == 404 and answer.json()["message"]


# Tokens


def test_without_a_token_nothing_answers(client, inbox):
    asset = make_asset()
    for answer in (
        client.get(ASSETS),
        client.get(f"{ASSETS}/{asset.pk}"),
        client.get(f"{ASSETS}/{asset.pk}/file"),
        upload(client, "photo.jpg", b"data"),
        client.post(f"{ASSETS}/{asset.pk}/reindex"),
        client.delete(f"{ASSETS}/{asset.pk}"),
    ):
        assert answer.status_code == 401 and "token" in answer.json()["message"]
    assert Asset.objects.filter(pk=asset.pk).exists() and list(inbox.iterdir()) == []


def test_a_read_only_token_reads_but_changes_nothing(read_api, inbox, sent):
    photo = in_inbox(inbox, "a.jpg")
    assert read_api.get(ASSETS).status_code == 200
    assert read_api.get(f"{ASSETS}/{photo.pk}").status_code == 200
    for answer in (
        upload(read_api, "new.jpg", b"data"),
        read_api.post(f"{ASSETS}/{photo.pk}/reindex"),
        read_api.delete(f"{ASSETS}/{photo.pk}?delete_file=true"),
    ):
        assert answer.status_code == 403 and "read-only" in answer.json()["message"]
    photo.refresh_from_db()
    assert photo.status == Asset.Status.INDEXED and (inbox / "a.jpg").exists()
    assert sorted(path.name for path in inbox.rglob("*")) == ["a.jpg"] and sent == []


# Upload


@pytest.mark.shared_data
def test_an_upload_lands_in_the_inbox_and_is_registered_at_once(api, inbox, sent, django_capture_on_commit_callbacks):
    content = (SAMPLES / "person_a_1.jpg").read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        answer = upload(api, "person_a_1.jpg", content)
    assert answer.status_code == 201
    body = answer.json()
    landed = inbox / "uploads" / "person_a_1.jpg"
    assert landed.read_bytes() == content
    assert [path.name for path in landed.parent.iterdir()] == ["person_a_1.jpg"]  # no partial file left
    asset = Asset.objects.get(pk=body["id"])
    assert asset.path == str(landed.resolve()) and asset.status == Asset.Status.QUEUED
    assert (body["status"], body["kind"], body["size"], body["faces"]) == ("queued", "photo", len(content), 0)
    assert body["display_path"] == os.path.join("uploads", "person_a_1.jpg")
    assert sent == [asset.pk]

    with django_capture_on_commit_callbacks(execute=True):
        again = upload(api, "person_a_1.jpg", content, folder="2024/june")
        same_name = upload(api, "person_a_1.jpg", (SAMPLES / "person_a_2.jpg").read_bytes())
    assert again.status_code == 201 and again.json()["status"] == "duplicate"
    assert Asset.objects.get(pk=again.json()["id"]).duplicate_of_id == asset.pk
    assert (inbox / "2024" / "june" / "person_a_1.jpg").is_file()
    assert same_name.status_code == 201 and same_name.json()["path"].endswith("/uploads/person_a_1 (1).jpg")
    assert landed.read_bytes() == content  # never replaced
    assert sent == [asset.pk, same_name.json()["id"]]


def test_a_file_the_watcher_registered_first_is_answered_from_its_row(api, inbox, monkeypatch):
    from django.db import IntegrityError

    from media_index import intake

    # The watcher's row, committed while the upload was registering its own.
    theirs = make_asset(path=str((inbox / "uploads" / "photo.jpg").resolve()))

    def watcher_was_first(path, within=None):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(intake, "register_path", watcher_was_first)
    answer = upload(api, "photo.jpg", b"data")
    assert answer.status_code == 201 and answer.json()["id"] == theirs.pk


@pytest.mark.parametrize("name", ["notes.txt", "photo.jpg.part", "archive.zip", ".jpg"])
def test_an_upload_that_is_no_photo_or_video_is_400(api, inbox, name):
    answer = upload(api, name, b"data")
    assert answer.status_code == 400 and ".jpg" in answer.json()["message"] and ".mp4" in answer.json()["message"]
    assert list(inbox.rglob("*")) == [] and not Asset.objects.exists()


@pytest.mark.parametrize("folder", ["..", "uploads/../../elsewhere", "/tmp", "bad\x01folder"])
def test_an_upload_into_a_folder_outside_the_inbox_is_400(api, inbox, tmp_path, folder):
    answer = upload(api, "photo.jpg", b"data", folder=folder)
    assert answer.status_code == 400 and answer.json()["message"]
    assert sorted(path.name for path in tmp_path.rglob("*.jpg")) == []


def test_an_upload_into_a_link_planted_in_the_inbox_is_refused(api, inbox, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (inbox / "drop").symlink_to(outside, target_is_directory=True)
    for folder in ("drop", "drop/deeper"):
        answer = upload(api, "photo.jpg", b"data", folder=folder)
        assert answer.status_code == 400 and "link" in answer.json()["message"]
    assert list(outside.iterdir()) == [] and not Asset.objects.exists()


def test_an_upload_over_the_asset_limit_is_413(api, inbox, settings):
    settings.MAX_ASSET_UPLOAD_BYTES = 1000
    answer = upload(api, "big.jpg", b"x" * 1001)
    assert answer.status_code == 413 and "REVSEARCH_MAX_ASSET_UPLOAD_MB" in answer.json()["message"]
    assert list(inbox.rglob("*")) == [] and not Asset.objects.exists()


# The request size limit, before anything reads the body


class Unread(io.RawIOBase):
    """A request body that counts every attempt to read it."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, *args) -> bytes:
        self.reads += 1
        return b"x" * 1024

    readline = read


def post_declaring(client, path: str, length: str, **extra):
    body = Unread()
    answer = client.generic(
        "POST", path, b"", content_type="multipart/form-data; boundary=xyz", CONTENT_LENGTH=length,
        **{"wsgi.input": body}, **extra,
    )  # fmt: skip
    return answer, body


def test_asset_uploads_may_be_larger_than_query_photos(api, inbox, sent, settings):
    settings.MAX_REQUEST_BYTES = 2000
    content = b"v" * 10_000
    answer = upload(api, "clip.mp4", content)
    assert answer.status_code == 201 and (inbox / "uploads" / "clip.mp4").read_bytes() == content
    # The query photo's limit still holds everywhere else, the API's search included.
    refused, body = post_declaring(api, "/api/v1/search", "10000")
    assert refused.status_code == 413 and body.reads == 0
    assert "REVSEARCH_MAX_UPLOAD_MB" in refused.json()["message"]


def test_a_body_over_the_asset_limit_is_refused_unread_as_json(api, inbox, settings):
    settings.MAX_ASSET_UPLOAD_BYTES = 1024 * 1024
    answer, body = post_declaring(api, ASSETS, str(1024 * 1024 + 64 * 1024 + 1))
    assert answer.status_code == 413 and body.reads == 0
    assert answer["Content-Type"] == "application/json"
    assert "larger than 1 MB (REVSEARCH_MAX_ASSET_UPLOAD_MB)" in answer.json()["message"]
    within, _ = post_declaring(api, ASSETS, str(1024 * 1024 + 64 * 1024))
    assert within.status_code == 400  # read, and found to be no valid form; not refused by size


def test_only_a_post_to_the_upload_path_has_the_larger_limit(api, settings):
    asset = make_asset()
    over = str(settings.MAX_REQUEST_BYTES + 1)
    answer, body = post_declaring(api, f"{ASSETS}/{asset.pk}/reindex", over)
    assert answer.status_code == 413 and body.reads == 0
    answer, body = post_declaring(api, ASSETS, over, REQUEST_METHOD="PUT")
    assert answer.status_code == 413 and body.reads == 0


def test_a_body_without_a_length_is_411_json_under_the_api_and_text_elsewhere(api, client):
    answer, body = post_declaring(api, ASSETS, "", HTTP_TRANSFER_ENCODING="chunked")
    assert answer.status_code == 411 and body.reads == 0 and "Content-Length" in answer.json()["message"]
    page, _ = post_declaring(client, "/", "", HTTP_TRANSFER_ENCODING="chunked")
    assert page.status_code == 411 and page["Content-Type"].startswith("text/plain")


def test_pages_outside_the_api_keep_their_text_413(client, settings):
    answer, _ = post_declaring(client, "/", str(settings.MAX_REQUEST_BYTES + 1))
    assert answer.status_code == 413 and answer["Content-Type"].startswith("text/plain")
    assert "REVSEARCH_MAX_UPLOAD_MB" in answer.content.decode()


# Reindex


def test_reindex_queues_a_photo_or_video_again(api, sent, django_capture_on_commit_callbacks):
    video = make_asset(Asset.Kind.VIDEO)
    Asset.objects.filter(pk=video.pk).update(frames_done=10, error="old", status=Asset.Status.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(f"{ASSETS}/{video.pk}/reindex")
    assert answer.status_code == 200 and answer.json() == {"queued": 1, "status": "queued"}
    video.refresh_from_db()
    assert (video.status, video.frames_done, video.error) == (Asset.Status.QUEUED, 0, "")
    assert sent == [video.pk]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"status": Asset.Status.DUPLICATE}, "copy"),
        ({"status": Asset.Status.MISSING}, "gone"),
        ({"status": Asset.Status.UNSUPPORTED, "error": "a link out of the inbox"}, "a link out of the inbox"),
        ({"kind": Asset.Kind.OTHER}, "not a photo or video"),
    ],
)
def test_reindex_refuses_what_cannot_be_indexed_with_the_reason(api, sent, fields, reason):
    asset = make_asset()
    Asset.objects.filter(pk=asset.pk).update(**fields)
    answer = api.post(f"{ASSETS}/{asset.pk}/reindex")
    assert answer.status_code == 409 and reason in answer.json()["message"]
    asset.refresh_from_db()
    assert asset.status == fields.get("status", Asset.Status.INDEXED) and sent == []


# Delete


def test_delete_removes_the_entry_its_faces_and_vectors_and_keeps_the_file(
    api, inbox, media_root, vectors_deleted, django_capture_on_commit_callbacks
):
    photo = in_inbox(inbox, "a.jpg")
    faces = [make_face(photo, crop=True), make_face(photo)]
    crop = Path(faces[0].crop.path)
    assert crop.is_file()
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.delete(f"{ASSETS}/{photo.pk}")
    assert answer.status_code == 200
    assert answer.json() == {"deleted": photo.pk, "faces_deleted": 2, "file_deleted": False, "file_kept": ""}
    assert not Asset.objects.filter(pk=photo.pk).exists() and not Face.objects.exists()
    assert sorted(vectors_deleted) == sorted(face.pk for face in faces) and not crop.exists()
    assert (inbox / "a.jpg").read_bytes() == b"photo"


def test_delete_with_the_file_unlinks_it_from_the_inbox(api, inbox, vectors_deleted):
    photo = in_inbox(inbox, "trip/a.jpg")
    answer = api.delete(f"{ASSETS}/{photo.pk}?delete_file=true")
    assert answer.json() == {"deleted": photo.pk, "faces_deleted": 0, "file_deleted": True, "file_kept": ""}
    assert not (inbox / "trip" / "a.jpg").exists() and not Asset.objects.exists()


def test_delete_never_removes_a_file_outside_the_inbox_or_through_a_link(api, inbox, tmp_path, vectors_deleted):
    outside = tmp_path / "archive.jpg"
    outside.write_bytes(b"kept")
    elsewhere = make_asset(path=str(outside))
    (inbox / "link.jpg").symlink_to(outside)
    linked = make_asset(path=str(inbox / "link.jpg"))
    (inbox / "folder").symlink_to(tmp_path, target_is_directory=True)
    through = make_asset(path=str(inbox / "folder" / "archive.jpg"))

    kept = {}
    for asset in (elsewhere, linked, through):
        answer = api.delete(f"{ASSETS}/{asset.pk}?delete_file=true")
        assert answer.status_code == 200 and answer.json()["file_deleted"] is False
        kept[asset.pk] = answer.json()["file_kept"]
    assert "outside the inbox" in kept[elsewhere.pk]
    assert "a link" in kept[linked.pk] and "link" in kept[through.pk]
    assert outside.read_bytes() == b"kept" and (inbox / "link.jpg").is_symlink()
    assert not Asset.objects.exists()  # the entries go all the same


def test_deleting_an_original_lets_its_copy_take_over(
    api, inbox, sent, vectors_deleted, django_capture_on_commit_callbacks
):
    original = in_inbox(inbox, "a.jpg")
    copy = in_inbox(inbox, "b.jpg", status=Asset.Status.DUPLICATE)
    Asset.objects.filter(pk=copy.pk).update(duplicate_of=original)
    with django_capture_on_commit_callbacks(execute=True):
        api.delete(f"{ASSETS}/{original.pk}?delete_file=1")
    copy.refresh_from_db()
    assert (copy.status, copy.duplicate_of_id) == (Asset.Status.QUEUED, None) and sent == [copy.pk]


def test_the_uploaded_sample_can_be_fetched_back(api, inbox, sent):
    content = b"\xff\xd8" + b"jpeg" * 100
    created = upload(api, "back.jpg", content).json()
    fetched = api.get(created["file"])
    assert fetched.status_code == 200 and b"".join(fetched.streaming_content) == content
