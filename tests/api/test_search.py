"""POST /api/v1/search and GET /api/v1/search/{id}: the web form's search as JSON, with its limits."""

import pytest

from media_index.models import Face
from people.models import Person
from tests.search.conftest import jpeg_upload

pytestmark = pytest.mark.django_db


@pytest.mark.shared_data
def test_a_photo_search_answers_faces_and_results_and_another_face_by_id(api, indexed_asset, engine):
    answer = api.post("/api/v1/search", {"photo": jpeg_upload()})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert [face["number"] for face in body["faces"]] == [0, 1] and body["chosen"] == 0
    assert (body["width"], body["height"]) == (200, 100)
    best = body["results"][0]
    assert best["asset"] == indexed_asset.pk and best["kind"] == "photo" and best["path"] == indexed_asset.path
    assert best["bbox"] == [10.0, 10.0, 60.0, 70.0] and best["distance"] == pytest.approx(0, abs=1e-3)
    assert best["same_person"] and best["score"] > 99 and best["person"] is None and best["ranges"] == []
    assert best["url"] == f"/assets/{indexed_asset.pk}/" and best["file"] == f"/api/v1/assets/{indexed_asset.pk}/file"

    other = api.get(f"/api/v1/search/{body['id']}?face=1&top=1")
    assert other.status_code == 200 and other.json()["chosen"] == 1
    assert [result["bbox"][0] for result in other.json()["results"]] == [100.0]
    assert engine.detections == 1  # the second face was searched without finding the faces again
    assert api.get(f"/api/v1/search/{body['id']}?face=2").status_code == 400
    assert api.get(f"/api/v1/search/{body['id']}?kind=video").json()["results"] == []


@pytest.mark.shared_data
def test_a_named_persons_face_comes_with_their_name(api, indexed_asset, engine):
    person = Person.objects.create(name="Ada")
    Face.objects.filter(asset=indexed_asset, left=10).update(person=person)
    best = api.post("/api/v1/search", {"photo": jpeg_upload()}).json()["results"][0]
    assert best["person"] == {"id": person.pk, "name": "Ada"}


def test_bad_searches_get_400_or_413_with_a_message(api, engine, media_root, settings):
    not_a_photo = api.post("/api/v1/search", {"photo": jpeg_upload("notes.txt")})
    assert not_a_photo.status_code == 400 and "txt" in not_a_photo.json()["message"]
    assert api.post("/api/v1/search", {}).status_code == 400
    assert api.post("/api/v1/search", {"photo": jpeg_upload(), "top": "0"}).status_code == 400
    assert api.post("/api/v1/search", {"photo": jpeg_upload(), "kind": "audio"}).status_code == 400
    assert api.get("/api/v1/search/not-an-id").status_code == 404
    expired = api.get("/api/v1/search/" + "a" * 32)
    assert expired.status_code == 404 and "expired" in expired.json()["message"]
    settings.MAX_UPLOAD_BYTES = 1000
    too_big = api.post("/api/v1/search", {"photo": jpeg_upload(size=(600, 600))})
    assert too_big.status_code == 413 and "MB" in too_big.json()["message"]


def test_a_read_only_token_may_search(read_api, engine, media_root, vector_store_on):
    answer = read_api.post("/api/v1/search", {"photo": jpeg_upload()})
    assert answer.status_code == 200 and len(answer.json()["faces"]) == 2


def test_crops_are_served_to_tokens_only(api, client, media_root):
    (media_root / "faces").mkdir(parents=True)
    (media_root / "faces" / "a.jpg").write_bytes(b"\xff\xd8jpeg")
    assert client.get("/api/v1/media/faces/a.jpg").status_code == 401
    answer = api.get("/api/v1/media/faces/a.jpg")
    assert answer.status_code == 200 and b"".join(answer.streaming_content) == b"\xff\xd8jpeg"
    assert api.get("/api/v1/media/../secret_key").status_code == 404
