"""The review queue as a person uses it, in Chromium: name a person, answer "Is this <name>?" with the keyboard, and
never be asked about the same faces again.

The service groups faces tightly here (REVSEARCH_PEOPLE_CLUSTER_DISTANCE 0.6), as a cautious archive would: a
person forms from their closest photos and leaves the others unplaced, which is what the review queue is for.
"""

import json
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page

from benchmarks.instance import Instance
from tests.conftest import DATA_DIR
from tests.flow.conftest import ADMIN_PASSWORD
from tests.flow.test_browser import SCREENSHOTS, browser  # noqa: F401 - a fixture

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]

PERSON = DATA_DIR / "lfw" / "Abdullah_Gul"
STRANGERS = 5


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Instance:
    service = Instance(tmp_path_factory.mktemp("review"), ADMIN_PASSWORD, workers=2)
    service.env |= {"REVSEARCH_PEOPLE_CLUSTER_DISTANCE": "0.6", "REVSEARCH_PEOPLE_MIN_FACES": "2"}
    with service.prepare() as running:
        photos = sorted(PERSON.glob("*.jpg"))[:12]
        others = sorted(folder for folder in PERSON.parent.iterdir() if folder.is_dir() and folder != PERSON)
        strangers = [sorted(folder.glob("*.jpg"))[0] for folder in others[:STRANGERS]]
        for photo in photos + strangers:
            shutil.copy(photo, running.inbox / photo.name)
        running.wait_until_idle(expected_assets=len(photos) + len(strangers))
        yield running


def person_record(service: Instance, person_id: int) -> dict:
    return json.loads(service.manage("person", str(person_id), "--json"))


def signed_in(browser, service: Instance) -> Page:  # noqa: F811
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{service.url}/people/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/people/$"))
    return page


def test_confirm_suggested_faces_with_the_keyboard(browser, archive):  # noqa: F811
    people = json.loads(archive.manage("people", "--json"))
    assert people, "no person formed"
    largest = max(people, key=lambda entry: entry["faces"])
    before = person_record(archive, largest["id"])
    assert all(Path(photo["path"]).name.startswith("Abdullah_Gul_") for photo in before["photos"]), before

    page = signed_in(browser, archive)
    page.click(f"a.card[href$='/people/{largest['id']}/']")
    page.fill("form[action$='/rename'] input[name=name]", "Abdullah Gul")
    page.click("form[action$='/rename'] button[type=submit]")
    page.wait_for_selector("text=Abdullah Gul")
    page.goto(f"{archive.url}/people/{largest['id']}/review/")
    page.screenshot(path=SCREENSHOTS / "people-review.png", full_page=True)
    suggested = page.locator("#review input[name=faces]")
    asked = suggested.count()
    assert asked >= 1, "the unplaced photos of the person were not suggested"
    names = page.locator("#review ol.review a").all_inner_texts()
    assert all(name.startswith("Abdullah_Gul_") for name in names), names  # no stranger is asked about

    page.keyboard.press("y")
    page.wait_for_load_state("networkidle")
    after = person_record(archive, largest["id"])
    assert len(after["photos"]) == len(before["photos"]) + asked
    page.goto(f"{archive.url}/people/{largest['id']}/review/")
    confirmed = {str(photo["face"]) for photo in after["photos"]}
    still_asked = set(page.locator("#review input[name=faces]").evaluate_all("boxes => boxes.map(b => b.value)"))
    assert not still_asked & confirmed
