"""The API end to end: a token made with `api_token`, a photo and a video uploaded through the API into a running
service, indexed by its workers, searched by photo, and the video's moment found where the person is on screen."""

import time

import pytest
import requests

from benchmarks.instance import ADMIN, Instance
from tests.conftest import EXAMPLES
from tests.flow.conftest import ADMIN_PASSWORD, HAMILTON
from tests.flow.test_videos import MIRANDA, miranda_on_screen

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]

LACAMOIRE = EXAMPLES / "alex-lacamoire.png"
UNFINISHED = ("queued", "processing", "retrying")


def client(service: Instance, *args: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + service.manage("api_token", "create", ADMIN, *args).strip()
    return session


def upload(api: requests.Session, url: str, path, folder: str) -> dict:
    with path.open("rb") as stream:
        answer = api.post(f"{url}/api/v1/assets", files={"file": stream}, data={"folder": folder}, timeout=60)
    assert answer.status_code == 201, answer.text
    return answer.json()


def wait_indexed(api: requests.Session, url: str, asset_id: int, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        asset = api.get(f"{url}/api/v1/assets/{asset_id}", timeout=30).json()
        if asset["status"] not in UNFINISHED:
            return asset
        time.sleep(1)
    raise TimeoutError(f"asset {asset_id} was not indexed within {timeout:.0f} s")


def search(api: requests.Session, url: str, photo, kind: str) -> dict:
    with photo.open("rb") as stream:
        answer = api.post(f"{url}/api/v1/search", files={"photo": stream}, data={"kind": kind}, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_script_uploads_a_photo_and_a_video_and_finds_the_moment(tmp_path):
    with Instance(tmp_path / "home", ADMIN_PASSWORD, workers=2).prepare() as service:
        api, read_only, url = client(service), client(service, "--read-only"), service.url
        with LACAMOIRE.open("rb") as stream:
            refused = read_only.post(f"{url}/api/v1/assets", files={"file": stream}, timeout=30)
        assert refused.status_code == 403 and "read-only" in refused.json()["message"]
        assert requests.get(f"{url}/api/v1/assets", timeout=30).status_code == 401

        photo = upload(api, url, LACAMOIRE, "desk")
        video = upload(api, url, HAMILTON, "desk/video")
        assert (service.inbox / "desk" / LACAMOIRE.name).is_file()
        assert (service.inbox / "desk" / "video" / HAMILTON.name).is_file()
        photo, video = wait_indexed(api, url, photo["id"]), wait_indexed(api, url, video["id"])
        assert photo["status"] == "indexed" and len(photo["faces"]) == 1
        assert video["status"] == "indexed" and video["moments"]

        found = search(read_only, url, MIRANDA, "video")
        best = found["results"][0]
        assert best["asset"] == video["id"] and best["same_person"]
        start, end = miranda_on_screen()
        closest = min(best["ranges"], key=lambda moment: abs(moment["start"] - start) + abs(moment["end"] - end))
        assert abs(closest["start"] - start) <= 0.5 and abs(closest["end"] - end) <= 0.5, best["ranges"]
        assert closest["url"] == f"/assets/{video['id']}/?t={closest['start']:.2f}"  # the player, at the moment

        lacamoire = search(read_only, url, LACAMOIRE, "photo")["results"][0]
        assert lacamoire["asset"] == photo["id"] and lacamoire["same_person"]
        file = api.get(f"{url}{lacamoire['file']}", headers={"Range": "bytes=0-7"}, timeout=30)
        assert file.status_code == 206 and file.content == LACAMOIRE.read_bytes()[:8]

        tasks = api.get(f"{url}/api/v1/tasks", timeout=30).json()
        assert tasks["stages"]["done"] == 2 and tasks["stages"]["failed"] == 0
