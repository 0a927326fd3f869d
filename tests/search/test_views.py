"""The search pages through Django's test client; the face engine is faked, Milvus is the real server."""

import io
import re

import pytest
from django.test import Client

from media_index.models import Asset
from tests.conftest import SAMPLES
from tests.search.conftest import jpeg_upload

pytestmark = pytest.mark.django_db(transaction=True)


def test_pages_need_a_login(client):
    answer = client.get("/")
    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")


def test_health_needs_no_login_and_says_what_is_down_to_signed_in_users(client, admin_client, settings):
    from revsearch_site import processes

    settings.REDIS_URL = f"redis://127.0.0.1:{processes.free_port()}/0"
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "degraded"}  # anonymous callers learn only that
    body = admin_client.get("/healthz").json()
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is False and body["workers"]["ok"] is False


@pytest.mark.shared_data
def test_upload_searches_the_largest_face_and_can_pick_another(user_client, indexed_asset):
    answer = user_client.post("/", {"photo": jpeg_upload()}, follow=True)
    assert answer.status_code == 200
    page = answer.content.decode()
    assert page.count('class="box') == 2
    assert "box chosen" in page
    matches = answer.context["result"].matches
    assert matches[0].face.left == 10 and matches[0].distance == pytest.approx(0, abs=1e-3)
    assert matches[0].score > 99 and matches[0].same_person
    assert page.count(">same person<") == sum(match.same_person for match in matches) >= 1
    assert f'href="/assets/{indexed_asset.pk}/file"' in page

    other = user_client.get(answer.request["PATH_INFO"] + "?face=1")
    assert other.context["result"].chosen == 1
    assert other.context["result"].matches[0].face.left == 100


@pytest.mark.shared_data
def test_a_query_without_faces_says_so(user_client, indexed_asset, engine):
    engine.faces = []
    answer = user_client.post("/", {"photo": jpeg_upload()}, follow=True)
    assert "No face was found in this photo" in answer.content.decode()
    assert answer.context["result"].matches == []


@pytest.mark.parametrize(
    "upload, message",
    [
        (io.BytesIO(b"plain text"), "Upload a valid image"),
        (jpeg_upload("photo.gif"), "upload a JPEG, PNG, WebP, BMP or TIFF photo"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason(user_client, media_root, upload, message):
    if not getattr(upload, "name", None):
        upload.name = "notes.jpg"
    answer = user_client.post("/", {"photo": upload})
    assert answer.status_code == 400
    assert message in answer.content.decode()


def test_too_large_uploads_are_refused(user_client, media_root, settings):
    settings.MAX_UPLOAD_BYTES = 100
    answer = user_client.post("/", {"photo": jpeg_upload()})
    assert answer.status_code == 400
    assert "larger than" in answer.content.decode()


def test_the_search_form_needs_its_csrf_token(django_user_model, engine, media_root, settings):
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("reviewer", password="a-long-password-1"))
    token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', client.get("/").content.decode())[1]

    assert client.post("/", {"photo": jpeg_upload()}).status_code == 403
    assert not settings.QUERY_DIR.exists()
    answer = client.post("/", {"photo": jpeg_upload(), "csrfmiddlewaretoken": token})
    assert answer.status_code == 302 and answer["Location"].startswith("/search/")


def test_an_upload_is_kept_with_the_queries_never_in_the_inbox(user_client, engine, media_root, settings):
    settings.INBOX_DIR = media_root.parent / "inbox"
    settings.INBOX_DIR.mkdir()
    (settings.INBOX_DIR / "holiday.jpg").write_bytes(jpeg_upload().read())
    before = sorted(settings.INBOX_DIR.rglob("*"))

    answer = user_client.post("/", {"photo": jpeg_upload("me.jpg")})
    query_id = answer["Location"].split("/")[2]
    assert (settings.QUERY_DIR / f"{query_id}.jpg").is_file()
    assert sorted(settings.INBOX_DIR.rglob("*")) == before
    assert not Asset.objects.exists()


@pytest.mark.shared_data
def test_files_and_crops_are_served_to_signed_in_users_only(user_client, client, indexed_asset):
    url = f"/assets/{indexed_asset.pk}/file"
    answer = user_client.get(url)
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == (SAMPLES / "two_people.jpg").read_bytes()
    answer.close()
    crop_url = indexed_asset.faces.first().crop.url
    crop = user_client.get(crop_url)
    assert crop.status_code == 200 and crop["Content-Type"] == "image/jpeg"
    crop.close()
    client.logout()
    assert client.get(url).status_code == 302
    assert client.get(crop_url).status_code == 302


def test_an_expired_search_is_a_clear_404(user_client, media_root):
    answer = user_client.get("/search/" + "0" * 32 + "/")
    assert answer.status_code == 404


@pytest.mark.shared_data
def test_admin_lists_assets_with_faces(admin_client, indexed_asset):
    answer = admin_client.get("/admin/media_index/asset/?status__exact=indexed")
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "two_people.jpg" in page
    assert re.search(r"<img src=\"/media/crops/", page)


@pytest.mark.shared_data
def test_admin_reindex_action_queues_again(admin_client, indexed_asset, monkeypatch):
    from media_index import tasks

    sent = []
    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda args, task_id: sent.append(args[0]))
    answer = admin_client.post(
        "/admin/media_index/asset/",
        {"action": "reindex", "_selected_action": [indexed_asset.pk]},
        follow=True,
    )
    assert "Queued 1 assets" in answer.content.decode()
    assert sent == [indexed_asset.pk]
    assert Asset.objects.get(pk=indexed_asset.pk).status == Asset.Status.QUEUED
    # A photo's faces stay searchable until its new ones replace them (services.requeue).
    assert indexed_asset.faces.count() == 2
