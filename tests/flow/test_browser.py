"""The pages as a person uses them: Playwright driving Debian's Chromium against the running service.

Screenshots of every page go to test-output/screenshots/ for a person to look at.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.conftest import BASE_DIR, EXAMPLES
from tests.flow.conftest import ADMIN_PASSWORD

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = BASE_DIR / "test-output" / "screenshots"
# Chromium as root, headless, and quiet: this machine reaches no outside host.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, service, indexed, videos) -> Page:
    """A signed-in page, at the search form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{service.url}/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("form.upload")
    yield page
    context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def search(page: Page, photo: Path) -> None:
    page.set_input_files("main form.upload input[type=file]", str(photo))
    page.click("main form.upload button[type=submit]")
    page.wait_for_url(re.compile(r"/search/[0-9a-f]{32}/"))


def clock_seconds(text: str) -> float:
    minutes, seconds = text.split(":")
    return 60 * int(minutes) + float(seconds)


def test_pick_the_second_face_and_find_that_person(page):
    shot(page, "01-search-form")
    search(page, EXAMPLES / "two_people.jpg")
    boxes = page.locator(".query a.box")
    assert boxes.count() == 2
    shot(page, "02-two-people-results")

    second = boxes.nth(1)
    left = float(re.search(r"left:([\d.]+)%", second.get_attribute("style")).group(1))
    expected = "obama" if left < 50 else "biden"  # Obama stands on the left of two_people.jpg
    second.click()
    page.wait_for_url(re.compile(r"\?face=1$"))
    assert "chosen" in (page.locator(".query a.box").nth(1).get_attribute("class") or "")
    names = page.locator(".result .name a").all_inner_texts()
    # The photo itself comes first (the same face); the next results are the person picked.
    others = [name for name in names if "two_people" not in name]
    assert expected in others[0].lower(), others
    assert page.locator(".result .same").count() >= 2
    shot(page, "03-second-face-results")


def test_a_video_moment_plays_from_its_start_and_leads_to_the_admin(page):
    search(page, EXAMPLES / "lin-manuel-miranda.png")
    first = page.locator(".result").first
    assert "video" in (first.get_attribute("class") or "")
    moment = first.locator(".moments a").first
    start_text, end_text = re.findall(r"\d+:\d+\.\d", moment.inner_text())
    start, end = clock_seconds(start_text), clock_seconds(end_text)
    shot(page, "04-video-results")

    moment.click()
    page.wait_for_function("document.querySelector('#player') && document.querySelector('#player').readyState >= 2")
    page.wait_for_timeout(500)
    now = page.evaluate("document.querySelector('#player').currentTime")
    assert start <= now <= end + 1.0, (start, now, end)
    assert page.locator(".timeline .segment").count() >= 1
    shot(page, "05-video-asset")

    page.click("text=review in the admin")
    page.wait_for_url(re.compile(r"/admin/media_index/asset/\d+/change/"))
    assert "short_hamilton_clip.mp4" in page.content()
    shot(page, "06-admin-review")


def test_a_photo_asset_shows_its_faces_and_pages_fit_a_phone(page, service):
    search(page, EXAMPLES / "obama2.jpg")
    page.locator(".result .name a").first.click()
    page.wait_for_url(re.compile(r"/assets/\d+/$"))
    assert page.locator(".query .box").count() >= 1
    shot(page, "07-photo-asset")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{service.url}/")
    search(page, EXAMPLES / "biden.jpg")
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    shot(page, "08-phone-results")


def test_the_tasks_page_shows_the_queue_and_keeps_itself_up_to_date(page, service):
    page.click("header >> text=Tasks")
    page.wait_for_url(re.compile(r"/tasks/$"))
    status = page.context.request.get(f"{service.url}/tasks/status.json").json()
    assert page.inner_text('[data-key="stages.done"]') == str(status["stages"]["done"])
    # The truncated video failed and notes.txt is unsupported: both are listed, only the failure with a Retry.
    assert page.locator(".failures tbody tr").count() == len(status["failures"]) >= 2
    assert page.locator(".failures tbody form:visible").count() == status["statuses"]["failed"] >= 1
    stamp = page.inner_text('[data-key="generated_at"]')
    page.wait_for_function(
        f"document.querySelector('[data-key=\"generated_at\"]').textContent !== {stamp!r}", timeout=10_000
    )
    assert page.inner_text("#live") == ""
    shot(page, "09-tasks")

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 392


def test_the_api_docs_page_lists_the_operations_and_loads_nothing_from_elsewhere(page, service):
    """The page is Swagger UI from django-ninja's own static files; it reads the schema with the user's session."""
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{service.url}/api/v1/docs/")
    page.wait_for_selector(".opblock")
    shot(page, "10-api-docs")
    listed = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/api/v1/search", "/api/v1/assets", "/api/v1/people", "/api/v1/tasks"} <= {p.strip() for p in listed}
    assert asked and all(url.startswith(service.url) or url.startswith("data:") for url in asked), asked
