"""Photos end to end: files dropped into the inbox are indexed by the real worker and found by photo."""

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

pytestmark = pytest.mark.flow

KNN_TRAIN = EXAMPLES / "knn_examples" / "train"
TWO_PEOPLE_WIDTH = 1126  # Obama stands on the left of two_people.jpg, Biden on the right


def person_of(result: dict) -> str:
    """Who a result shows, from where the file came from (and for two_people.jpg, which side the face is on)."""
    path = Path(result["path"])
    if path.name == "two_people.jpg":
        left, _, right, _ = result["bbox"]
        return "obama" if (left + right) / 2 < TWO_PEOPLE_WIDTH / 2 else "biden"
    if path.parent.name in {"obama", "biden", "alex_lacamoire", "kit_harington", "rose_leslie"}:
        return path.parent.name
    return path.stem.rstrip("0123456789")  # obama.jpg, biden.jpg at the top of the inbox


@pytest.fixture(scope="module")
def indexed(service):
    """The issue's photo set copied into the inbox while the service runs (plus one placed before it started)."""
    for name in ("obama.jpg", "biden.jpg", "two_people.jpg"):
        shutil.copy(EXAMPLES / name, service.inbox / name)
    shutil.copytree(KNN_TRAIN, service.inbox / "train")
    (service.inbox / "notes.txt").write_text("not a photo")
    arrived = 1 + 3 + len(list(KNN_TRAIN.rglob("*.jp*g"))) + 1
    return service.wait_until_idle(expected_assets=arrived)


def test_every_photo_is_indexed_once(indexed):
    # 13 photos (one an RGBA PNG), two of them copies of others (train/obama/obama.jpg, train/biden/biden.jpg).
    assert indexed["indexed"] == 11
    assert indexed["duplicate"] == 2
    assert indexed["unsupported"] == 1
    assert indexed["failed"] == indexed["no_faces"] == 0
    # two_people.jpg holds two faces, each other photo one.
    assert indexed["faces"] == 12


def test_search_by_photo_ranks_the_same_person_first(service, indexed):
    lines = service.manage("search_photo", "--json", str(EXAMPLES / "obama2.jpg"), str(EXAMPLES / "biden.jpg"))
    obama, biden = (json.loads(line) for line in lines.splitlines())

    assert obama["query"] == str(EXAMPLES / "obama2.jpg")
    assert person_of(obama["results"][0]) == "obama"
    assert len(obama["results"]) == 12
    assert all(Path(r["path"]).is_absolute() and r["kind"] == "image" for r in obama["results"])

    people = [person_of(result) for result in biden["results"]]
    biden_ranks = [rank for rank, person in enumerate(people) if person == "biden"]
    # Every Biden face (biden.jpg, biden2.jpg, the right of two_people.jpg) above every other person.
    assert len(biden_ranks) == 3
    assert max(biden_ranks) < min(rank for rank, person in enumerate(people) if person != "biden")
    scores = [result["score"] for result in biden["results"]]
    assert scores == sorted(scores, reverse=True)
    assert min(scores) >= 0 and max(scores) <= 100


def test_health_reports_every_part(service, indexed):
    import requests

    health = requests.get(f"{service.url}/healthz", timeout=30).json()
    assert health["status"] == "ok"
    assert health["milvus"]["vectors"] == indexed["faces"]
    assert health["workers"]["workers"]


def test_search_page_in_the_web_server(service, indexed):
    session = service.signed_in()
    form = session.get(f"{service.url}/", timeout=30)
    with (EXAMPLES / "obama2.jpg").open("rb") as photo:
        answer = session.post(
            f"{service.url}/",
            data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
            files={"photo": ("obama2.jpg", photo, "image/jpeg")},
            headers={"Referer": form.url},
            timeout=120,
        )
    assert answer.status_code == 200 and "/search/" in answer.url
    page = answer.text
    assert page.count('class="result"') == 12
    first = page.index('class="result"')
    assert "obama" in page[first : page.index("</li>", first)]


def test_pages_need_a_login(service, indexed):
    import requests

    answer = requests.get(f"{service.url}/", timeout=30, allow_redirects=False)
    assert answer.status_code == 302 and "/admin/login/" in answer.headers["Location"]
