"""People end to end: LFW photos dropped into the inbox become people as they are indexed and regrouped once the
queue is idle; a user names, merges, moves and forgets through the pages, and a forgotten person's photo dropped
again stores no face.

Five people with ten photos each (the first five, by name, of those LFW has at least ten of) and twenty people with a
single photo (strangers: no person may hold one), through the real watcher, worker, Redis and Milvus Lite.
"""

import json
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.instance import Instance
from tests.conftest import DATA_DIR
from tests.flow.conftest import ADMIN_PASSWORD

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]

LFW = DATA_DIR / "lfw"
PER_PERSON = 10
LFW_CENTRE = 125  # LFW's photos are 250 x 250, centred on the person they are named after
STRANGERS = 20


def lfw_people() -> tuple[dict[str, list[Path]], list[Path]]:
    """Ten photos each of the first five people with at least ten, and one photo of every 200th single person."""
    folders = sorted(folder for folder in LFW.iterdir() if folder.is_dir())
    photos = {folder.name: sorted(folder.glob("*.jpg")) for folder in folders}
    known = {name: found[:PER_PERSON] for name, found in photos.items() if len(found) >= PER_PERSON}
    singles = [found[0] for found in photos.values() if len(found) == 1]
    return dict(list(known.items())[:5]), singles[::200][:STRANGERS]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Instance, dict[str, list[Path]], list[Path]]:
    known, strangers = lfw_people()
    service = Instance(tmp_path_factory.mktemp("people"), ADMIN_PASSWORD, workers=2)
    # The watcher regroups everything once the queue is idle and this many faces came (70 come here).
    service.env["REVSEARCH_PEOPLE_REGROUP_AFTER_FACES"] = "50"
    with service.prepare():
        for name, photos in known.items():
            (service.inbox / name).mkdir(parents=True)
            for photo in photos:
                shutil.copy(photo, service.inbox / name / photo.name)
        (service.inbox / "strangers").mkdir()
        for photo in strangers:
            shutil.copy(photo, service.inbox / "strangers" / photo.name)
        service.wait_until_idle(expected_assets=len(known) * PER_PERSON + len(strangers))
        yield service, known, strangers


def people(service: Instance) -> list[dict]:
    return json.loads(service.manage("people", "--json"))


def who_is_in(service: Instance, person_id: int) -> Counter:
    """The true identities of a person's faces: the folder for the face LFW centres each photo on, "background"
    for another face in the photo (someone standing behind, who may well be in two photos and form a person)."""
    record = json.loads(service.manage("person", str(person_id), "--json"))
    return Counter(identity(photo) for photo in record["photos"])


def identity(photo: dict) -> str:
    left, top, right, bottom = photo["box"]
    centred = abs((left + right) / 2 - LFW_CENTRE) < LFW_CENTRE / 4 and abs((top + bottom) / 2 - LFW_CENTRE) < 50
    return Path(photo["path"]).parent.name if centred else "background"


def post(session, url: str, data: dict):
    answer = session.post(
        url, data=data | {"csrfmiddlewaretoken": session.cookies["csrftoken"]}, headers={"Referer": url}, timeout=60
    )
    assert answer.status_code < 400, answer.text[:2000]
    return answer


def regrouped(service: Instance, timeout: float = 180) -> dict[int, Counter]:
    """Each person's true identities, once the watcher's regroup task has run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = json.loads(service.manage("people", "--json", "--log", "20"))
        if any(event["action"] == "rebuild" for event in events):
            return {entry["id"]: who_is_in(service, entry["id"]) for entry in people(service)}
        time.sleep(2)
    raise TimeoutError(f"no regrouping within {timeout:.0f} s")


def test_people_form_name_merge_move_and_forget(archive):
    service, known, _ = archive
    # Five people formed, each of one person's photos only, none holding a stranger; people formed from faces in the
    # background (someone behind one of them in two photos) may be there too, of background faces only.
    formed = regrouped(service)
    for identities in formed.values():
        assert len(identities) == 1 and "strangers" not in identities, formed
    formed = {person_id: identities for person_id, identities in formed.items() if "background" not in identities}
    assert len(formed) == 5, formed
    person_of = {next(iter(identities)): person_id for person_id, identities in formed.items()}
    assert set(person_of) == set(known)
    for name, person_id in person_of.items():
        assert formed[person_id][name] >= PER_PERSON - 1  # one photo may be too far from the others to be sure

    session = service.signed_in()
    first, second, third, fourth, _ = sorted(known)
    # Name one; the search box finds them by name (any case) and their page lists their photos.
    post(session, f"{service.url}/people/{person_of[first]}/rename", {"name": "Abdullah Gül"})
    found = session.get(f"{service.url}/people/find", params={"name": "abdullah gül"}, timeout=30)
    assert found.url.rstrip("/").endswith(f"/people/{person_of[first]}")
    assert "Abdullah Gül" in found.text and found.text.count("/assets/") >= PER_PERSON - 1

    # Merge two: one person with both sets of photos.
    post(session, f"{service.url}/people/{person_of[second]}/merge", {"target": f"#{person_of[third]}"})
    merged = who_is_in(service, person_of[third])
    assert set(merged) == {second, third}
    assert person_of[second] not in {entry["id"] for entry in people(service)}

    # Move a face out ("not this person"): it leaves them, and regrouping everything does not bring it back.
    record = json.loads(service.manage("person", str(person_of[fourth]), "--json"))
    face = record["photos"][0]["face"]
    post(session, f"{service.url}/people/{person_of[fourth]}/move", {"faces": [str(face)], "out": "on"})
    service.manage("cluster_faces", "--full")
    after = json.loads(service.manage("person", str(person_of[fourth]), "--json"))
    assert face not in {photo["face"] for photo in after["photos"]}
    assert len(after["photos"]) == len(record["photos"]) - 1

    # Forget the named one: their faces go, the files stay, and the same photo dropped again stores no face of theirs
    # (only those of anyone behind them, as the original keeps).
    answer = post(session, f"{service.url}/people/{person_of[first]}/forget", {"confirm": "yes"})
    assert "Abdullah" in answer.text and re.search(r"\b(9|10) faces\b", answer.text), answer.text[:2000]
    assert all(photo.name in {p.name for p in (service.inbox / first).iterdir()} for photo in known[first])
    assert person_of[first] not in {entry["id"] for entry in people(service)}
    copy = service.inbox / "again" / "copy.jpg"
    copy.parent.mkdir()
    copy.write_bytes(known[first][0].read_bytes() + b"\0")  # a different file (one byte more), the same photo
    assets = service.wait_for(
        lambda found: found.get(str(copy), {}).get("status") in {"indexed", "no_faces"}, "the copy is indexed"
    )
    original = assets[str(service.inbox / first / known[first][0].name)]
    assert assets[str(copy)]["faces"] == original["faces"]  # which lost their face when they were forgotten
