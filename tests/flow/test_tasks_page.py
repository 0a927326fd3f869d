"""The tasks page while a folder is being indexed: its JSON shows the queue move, and the page follows without a reload.

The service is one of this module's own, so the photos added here change nothing other flow tests count.
"""

import math
import re
import shutil
import time

import pytest
from django.conf import settings
from playwright.sync_api import sync_playwright

from benchmarks.instance import Instance
from tests.conftest import DATA_DIR
from tests.flow.conftest import ADMIN_PASSWORD
from tests.flow.test_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]

LFW = DATA_DIR / "lfw"
# The first photo of each of the first 40 people in LFW: one face each (none without the data: the test is skipped).
PEOPLE = sorted(folder for folder in LFW.iterdir() if folder.is_dir()) if LFW.is_dir() else []
PHOTOS = [sorted(folder.glob("*.jpg"))[0] for folder in PEOPLE][:40]
DONE = "document.querySelector('[data-key=\"stages.done\"]').textContent"


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    """The service with one worker process, so the queue stays visible for a few seconds."""
    instance = Instance(tmp_path_factory.mktemp("tasks"), ADMIN_PASSWORD, workers=1)
    with instance.prepare():
        yield instance


def test_the_tasks_page_shows_a_live_queue_while_a_folder_is_indexed(watched):
    session = watched.signed_in()
    status_url = f"{watched.url}/tasks/status.json"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{watched.url}/tasks/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", ADMIN_PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#waiting")
        assert page.evaluate(DONE) == "0"

        folder = watched.inbox / "people"
        folder.mkdir()
        for photo in PHOTOS:
            shutil.copy(photo, folder / photo.name)
        busy, shot_taken = [], False
        deadline = time.monotonic() + 180
        while True:
            data = session.get(status_url, timeout=30).json()
            stages = data["stages"]
            if stages["waiting"] or stages["running"]:
                busy.append(stages)
                if not shot_taken:
                    page.wait_for_timeout(2600)  # one refresh of the page, to catch it mid-queue
                    page.screenshot(path=SCREENSHOTS / "10-tasks-while-indexing.png", full_page=True)
                    shot_taken = True
            finished = stages["done"] + stages["failed"] >= len(PHOTOS) and not (stages["waiting"] or stages["running"])
            # A task's message is acknowledged just after it marks its photos done (late acknowledgement).
            if finished and data["broker"]["messages"] == data["broker"]["taken"] == 0:
                break
            assert time.monotonic() < deadline, f"not indexed in time: {data}"
            time.sleep(0.2)

        assert busy, "never saw an asset waiting or running"
        assert stages == {"waiting": 0, "running": 0, "done": len(PHOTOS), "failed": 0}
        assert data["broker"] == {"messages": 0, "taken": 0, "error": ""}
        assert data["workers"] == 1
        assert data["throughput"]["last_hour"] == len(PHOTOS)
        assert sum(minute["done"] for minute in data["throughput"]["history"]) == len(PHOTOS)
        # The page was loaded before the copy and never reloaded: its own polling brought the figures.
        page.wait_for_function(f"{DONE} === '{len(PHOTOS)}'", timeout=15_000)
        assert page.inner_text("#live") == ""
        page.screenshot(path=SCREENSHOTS / "11-tasks-done.png", full_page=True)
        page.goto(f"{watched.url}/admin/")
        page.screenshot(path=SCREENSHOTS / "12-admin-index.png")
        page.click("#tasks-module a >> nth=0")
        page.wait_for_url(f"{watched.url}/tasks/")
        browser.close()

    # The worker stored each task's result, which the admin lists: photos that arrived together share a task.
    results = session.get(f"{watched.url}/admin/django_celery_results/taskresult/", timeout=30)
    counted = re.search(r"(\d+) task results", results.text)
    assert results.ok and counted, results.text[:2000]
    assert math.ceil(len(PHOTOS) / settings.PHOTO_BATCH) <= int(counted[1]) <= len(PHOTOS)
    assert "media_index.tasks.index_photos_task" in results.text
