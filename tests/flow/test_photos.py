"""Photos end to end: files dropped into the inbox are indexed by the real worker and found by photo."""

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from benchmarks.instance import Instance
from benchmarks.servers import milvus_standalone, postgres
from revsearch_site import processes
from tests.conftest import EXAMPLES
from tests.flow.conftest import drop_photo_set, photo_service

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]

TWO_PEOPLE_WIDTH = 1126  # Obama stands on the left of two_people.jpg, Biden on the right


def person_of(result: dict) -> str:
    """Who a result shows, from where the file came from (and for two_people.jpg, which side the face is on)."""
    path = Path(result["path"])
    if path.name == "two_people.jpg":
        left, _, right, _ = result["bbox"]
        return "obama" if (left + right) / 2 < TWO_PEOPLE_WIDTH / 2 else "biden"
    if path.parent.name in {"obama", "biden", "alex_lacamoire", "kit_harington", "rose_leslie"}:
        return path.parent.name
    return path.stem.split("-")[0].rstrip("0123456789")  # obama.jpg, obama-240p.jpg, biden.jpg at the top


@pytest.fixture(scope="module", params=["embedded", "milvus-standalone-postgres"])
def photos(request) -> tuple[Instance, dict[str, int]]:
    """The photo flow's service and its counts once indexed: on the embedded defaults (Milvus Lite, SQLite), and
    on a real Milvus server and a real PostgreSQL server, both started here, as a scaled-out deployment runs."""
    if request.param == "embedded":
        yield request.getfixturevalue("service"), request.getfixturevalue("indexed")
        return
    # A folder the `postgres` user can reach (pytest's own are private to root).
    home = Path(tempfile.mkdtemp(prefix="revsearch-flow-"))
    home.chmod(0o755)
    milvus_port, postgres_port = processes.free_port(), processes.free_port()
    servers = [
        milvus_standalone(milvus_port, home / "milvus").start(home / "milvus.log"),
        postgres(postgres_port, home / "postgres").start(home / "postgres.log"),
    ]
    try:
        for server in servers:
            server.wait_ready(timeout=120)
        env = {
            "MILVUS_URI": f"http://127.0.0.1:{milvus_port}",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{postgres_port}/postgres",
        }
        with photo_service(home / "service", **env) as service:
            yield service, drop_photo_set(service)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_every_photo_is_indexed_once(photos):
    _service, indexed = photos
    # 14 photos (one an RGBA PNG), two of them copies of others (train/obama/obama.jpg, train/biden/biden.jpg).
    assert indexed["indexed"] == 12
    assert indexed["duplicate"] == 2
    assert indexed["unsupported"] == 1
    assert indexed["failed"] == indexed["no_faces"] == 0
    # two_people.jpg holds two faces, each other photo one.
    assert indexed["faces"] == 13


def test_search_by_photo_ranks_the_same_person_first(photos):
    service, _indexed = photos
    lines = service.manage("search_photo", "--json", str(EXAMPLES / "obama2.jpg"), str(EXAMPLES / "biden.jpg"))
    # Photos only: the other flow tests may have added videos by now.
    obama, biden = (
        answer | {"results": [r for r in answer["results"] if r["kind"] == "image"]}
        for answer in map(json.loads, lines.splitlines())
    )

    assert obama["query"] == str(EXAMPLES / "obama2.jpg")
    assert person_of(obama["results"][0]) == "obama"
    assert len(obama["results"]) == 13
    assert all(Path(r["path"]).is_absolute() for r in obama["results"])

    # Every Obama face (obama.jpg, obama2.jpg, obama-240p.jpg, the left of two_people.jpg) first.
    assert_ranked_first(obama["results"], "obama", expected=4)
    # Every Biden face (biden.jpg, biden2.jpg, the right of two_people.jpg) above every other person.
    assert_ranked_first(biden["results"], "biden", expected=3)
    scores = [result["score"] for result in biden["results"]]
    assert scores == sorted(scores, reverse=True)
    assert min(scores) >= 0 and max(scores) <= 100


def assert_ranked_first(results: list[dict], person: str, expected: int) -> None:
    people = [person_of(result) for result in results]
    ranks = [rank for rank, who in enumerate(people) if who == person]
    assert len(ranks) == expected, people
    assert max(ranks) < min(rank for rank, who in enumerate(people) if who != person), people


def test_health_reports_every_part(photos):
    service, indexed = photos
    import requests

    assert requests.get(f"{service.url}/healthz", timeout=30).json() == {"status": "ok"}  # all anonymous callers see
    health = service.signed_in().get(f"{service.url}/healthz", timeout=30).json()
    assert health["status"] == "ok"
    assert health["milvus"]["vectors"] == service.status()["faces"] >= indexed["faces"]
    assert health["workers"]["workers"]


def test_search_page_in_the_web_server(photos):
    service, _indexed = photos
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
    assert page.count('class="result"') == 13
    first = page.index('class="result"')
    assert "obama" in page[first : page.index("</li>", first)]


def test_pages_need_a_login(photos):
    service, _indexed = photos
    import requests

    answer = requests.get(f"{service.url}/", timeout=30, allow_redirects=False)
    assert answer.status_code == 302 and "/admin/login/" in answer.headers["Location"]


def test_the_vectors_match_the_database(photos):
    service, _indexed = photos
    assert "the index is consistent" in service.manage("check_index")
