"""Faults on the real processes: slow writers, bad files, killed workers, Redis and Milvus going away."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.instance import Instance
from revsearch_site import processes
from tests.conftest import DATA_DIR, SAMPLES
from tests.flow.conftest import ADMIN_PASSWORD, HAMILTON

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]

FINAL = {"indexed", "no_faces", "failed", "unsupported", "duplicate", "missing"}
# One face each, of people the other flow tests never search for.
PEIRSOL = sorted((DATA_DIR / "lfw" / "Aaron_Peirsol").glob("*.jpg"))
GREENSPAN = sorted((DATA_DIR / "lfw" / "Alan_Greenspan").glob("*.jpg"))


def settled(path: Path):
    """A wait_for condition: the asset of path has reached a final status."""
    return lambda assets: assets.get(str(path), {}).get("status") in FINAL


def children(pid: int) -> list[tuple[int, str]]:
    """The child processes of pid, with their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if parent == pid:
            found.append((int(entry.name), command))
    return found


def celery_main(instance: Instance) -> int:
    [pid] = [pid for pid, command in children(instance.serve.pid) if "celery" in command]
    return pid


@pytest.fixture(scope="module")
def lone(tmp_path_factory):
    """The service with one worker process, small video chunks and stretches of 20 s (a video of 70 s has 3); the
    other flow tests' service is not touched."""
    instance = Instance(tmp_path_factory.mktemp("lone"), ADMIN_PASSWORD, workers=1)
    instance.env |= {"REVSEARCH_VIDEO_CHUNK_FRAMES": "4", "REVSEARCH_VIDEO_STRETCH_SECONDS": "20"}
    with instance.prepare():
        yield instance


# --- Slow writers and bad files -----------------------------------------------------------------------------


def test_a_file_written_slowly_is_read_once_it_is_complete(lone):
    target = lone.inbox / "slow" / "written slowly.jpg"
    target.parent.mkdir()
    data = PEIRSOL[0].read_bytes()
    with target.open("wb") as out:
        out.write(data[: len(data) // 2])
        out.flush()
        # Longer than the quiet and stable times: a watcher that went by silence alone would read half a photo.
        time.sleep(7)
        assert "written slowly.jpg" not in lone.log_tail(10**7), "read while still being written"
        out.write(data[len(data) // 2 :])
    record = lone.wait_for(settled(target), "the slow file indexed")[str(target)]
    assert (record["status"], record["faces"]) == ("indexed", 1), record
    assert lone.log_tail(10**7).count(f"registered asset {record['id']} {target}") == 1


def bad_inputs(folder: Path, outside: Path) -> dict[str, tuple[str, str, int]]:
    """Hostile and unusual files, each with the status, the words of its error and the faces it should end with."""
    face = Image.open(PEIRSOL[1]).convert("RGB")
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(PEIRSOL[2].read_bytes()[:3000])
    (folder / "text.jpg").write_text("a shopping list, not a photo")
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")  # 400 Mpx in a few kB
    face.convert("CMYK").save(folder / "cmyk.jpg")
    grey = np.asarray(face.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(folder / "sixteen-bit.png")
    face.convert("RGBA").save(folder / "alpha.png")
    frames = [face, face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(folder / "moving.gif", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 8  # Orientation: turn 90° clockwise to view; the pixels below are turned the other way
    face.transpose(Image.Transpose.ROTATE_270).save(folder / "rotated.jpg", exif=exif)
    audio = ["ffmpeg", "-v", "error", "-i", str(HAMILTON), "-vn", "-c:a", "copy", str(folder / "audio only.mp4")]
    subprocess.run(audio, check=True)
    Image.new("RGB", (60, 60)).save(outside)
    os.symlink(outside, folder / "link.jpg")
    shutil.copy(PEIRSOL[3], folder / "Café Ünïcode photo 1.jpg")
    return {
        "empty.jpg": ("failed", "empty", 0),
        "truncated.jpg": ("failed", "cannot decode", 0),
        "text.jpg": ("failed", "cannot decode", 0),
        "bomb.png": ("failed", "20000x20000 is over the limit", 0),
        "cmyk.jpg": ("indexed", "", 1),
        "sixteen-bit.png": ("indexed", "", 1),
        "alpha.png": ("indexed", "", 1),
        "moving.gif": ("unsupported", "not a photo or video", 0),
        "rotated.jpg": ("indexed", "", 1),
        "audio only.mp4": ("failed", "no video stream", 0),
        "link.jpg": ("unsupported", "outside the inbox", 0),
        "Café Ünïcode photo 1.jpg": ("indexed", "", 1),
    }


def test_bad_input_gets_a_status_and_reason_and_the_queue_goes_on(lone, tmp_path):
    folder = lone.inbox / "bad"
    expected = bad_inputs(folder, tmp_path / "outside.jpg")
    worker = celery_main(lone)
    after = lone.inbox / "after-the-bad-ones.jpg"
    shutil.copy(GREENSPAN[0], after)
    paths = [folder / name for name in expected] + [after]
    assets = lone.wait_for(lambda a: all(settled(path)(a) for path in paths), "every bad file settled")
    for name, (status, words, faces) in expected.items():
        record = assets[str(folder / name)]
        assert (record["status"], record["faces"]) == (status, faces), f"{name}: {record}"
        assert words in record["error"], f"{name}: {record['error']!r}"
        if record["error"]:
            assert name in record["error"], f"{name}: the error does not name the file"
    assert assets[str(after)]["status"] == "indexed"
    assert celery_main(lone) == worker, "a bad file took the worker down"
    assert "the index is consistent" in lone.manage("check_index")


# --- A killed worker ----------------------------------------------------------------------------------------


def long_video(folder: Path, name: str, times: int) -> Path:
    """The Hamilton clip `times` over: long enough to kill a worker while it works on it, and new content each time."""
    path = folder / name
    command = ["ffmpeg", "-v", "error", "-stream_loop", str(times - 1), "-i", str(HAMILTON), "-c", "copy", str(path)]
    subprocess.run(command, check=True)
    return path


def wait_until_working(instance: Instance, path: Path, frames: int) -> None:
    instance.wait_for(
        lambda a: a.get(str(path), {}).get("status") == "processing" and a[str(path)]["frames_done"] >= frames,
        f"{path.name} part-way",
        timeout=180,
    )


def assert_whole_and_consistent(instance: Instance, path: Path) -> None:
    record = instance.wait_for(settled(path), f"{path.name} finished", timeout=300)[str(path)]
    assert record["status"] == "indexed" and record["frames_done"] == record["frames"] > 0, record
    assert "the index is consistent" in instance.manage("check_index")


def test_a_killed_pool_process_has_its_task_run_again_from_where_it_stopped(lone):
    """The video (70 s) is split into stretches: the task killed is a stretch's, delivered again and counted."""
    target = long_video(lone.inbox, "killed child.mp4", 7)
    wait_until_working(lone, target, frames=8)
    pool = children(celery_main(lone))
    assert pool
    for pid, _command in pool:
        os.kill(pid, signal.SIGKILL)
    assert_whole_and_consistent(lone, target)
    log = lone.log_tail(10**7)
    assert re.search(r"the worker indexing its stretch \d \(.*\) died \(1 deaths\); task \S+ was delivered again", log)
    assert re.search(r"asset \d+: 3 stretches joined", log)


def test_a_killed_worker_is_started_again_and_its_task_is_done(lone):
    target = long_video(lone.inbox, "killed worker.mp4", 8)
    wait_until_working(lone, target, frames=8)
    os.kill(celery_main(lone), signal.SIGKILL)
    assert_whole_and_consistent(lone, target)
    assert "celery-worker exited with code -9 (1 times in 300 s); starting it again in 0 s" in lone.log_tail(10**7)


# --- Redis and Milvus going away --------------------------------------------------------------------------


class Outside:
    """Redis and Milvus Lite run by the test, so it can stop and start them under a running service."""

    def __init__(self, home: Path) -> None:
        self.redis_port, self.milvus_port = processes.free_port(), processes.free_port()
        self.redis = processes.redis(self.redis_port, home / "redis")
        self.milvus = processes.milvus_lite(self.milvus_port, home / "milvus")

    def start(self, process: processes.Process) -> None:
        process.start()
        process.wait_ready()

    def env(self) -> dict[str, str]:
        return {
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "MILVUS_URI": f"http://127.0.0.1:{self.milvus_port}",
        }


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    home = tmp_path_factory.mktemp("outages")
    parts = Outside(home / "servers")
    instance = Instance(home / "service", ADMIN_PASSWORD, workers=1)
    # Waits of 3 and 6 s: long enough that polling (a manage.py process a poll, slow on a busy machine) sees the
    # asset `retrying` before it fails; with 1 and 2 s it once went from retrying to failed between two polls.
    instance.env |= parts.env() | {"REVSEARCH_RETRY_LIMIT": "2", "REVSEARCH_RETRY_BACKOFF_SECONDS": "3"}
    for process in (parts.redis, parts.milvus):
        parts.start(process)
    try:
        with instance.prepare():
            yield instance, parts
    finally:
        parts.milvus.stop()
        parts.redis.stop()


def test_with_milvus_down_an_asset_retries_then_fails_and_reindex_recovers_it(outside):
    instance, parts = outside
    parts.milvus.stop()
    target = Path(shutil.copy(PEIRSOL[0], instance.inbox / "while milvus was down.jpg"))
    record = instance.wait_for(lambda a: a.get(str(target), {}).get("status") == "retrying", "retrying")[str(target)]
    assert f"Milvus at http://127.0.0.1:{parts.milvus_port}" in record["error"]
    record = instance.wait_for(settled(target), "failed after its retries")[str(target)]
    assert record["status"] == "failed" and "reindex --failed" in record["error"]

    parts.start(parts.milvus)
    assert "queued 1 assets" in instance.manage("reindex", "--failed")
    record = instance.wait_for(settled(target), "indexed once Milvus is back")[str(target)]
    assert (record["status"], record["faces"]) == ("indexed", 1)
    assert "the index is consistent" in instance.manage("check_index")


def test_with_redis_down_the_watcher_keeps_what_it_saw_and_sends_it_later(outside):
    instance, parts = outside
    parts.redis.stop()
    target = Path(shutil.copy(PEIRSOL[1], instance.inbox / "while redis was down.jpg"))
    instance.wait_for(lambda a: a.get(str(target), {}).get("status") == "queued", "registered while Redis is down")
    time.sleep(3)
    assert instance.assets()[str(target)]["status"] == "queued"

    parts.start(parts.redis)
    record = instance.wait_for(settled(target), "indexed once Redis is back")[str(target)]
    assert (record["status"], record["faces"]) == ("indexed", 1)


def test_what_changed_while_the_service_was_down_is_reconciled_at_start(outside):
    instance, _parts = outside
    kept, changed, deleted = (instance.inbox / "down" / name for name in ("kept.jpg", "changed.jpg", "deleted.jpg"))
    kept.parent.mkdir()
    for path, source in ((kept, PEIRSOL[2]), (changed, PEIRSOL[3]), (deleted, GREENSPAN[0])):
        shutil.copy(source, path)
    before = instance.wait_for(lambda a: all(settled(p)(a) for p in (kept, changed, deleted)), "indexed")

    instance.stop()
    shutil.copy(SAMPLES / "no_face.jpg", changed)
    deleted.unlink()
    added = Path(shutil.copy(GREENSPAN[1], kept.parent / "added.jpg"))
    instance.start()

    after = instance.wait_for(
        lambda a: (
            all(settled(p)(a) for p in (added, changed))
            and a[str(changed)]["status"] == "no_faces"
            and a[str(deleted)]["status"] == "missing"
        ),
        "the changes while down reconciled",
    )
    assert after[str(added)]["status"] == "indexed"
    assert after[str(kept)] == before[str(kept)]
    assert after[str(changed)]["id"] == before[str(changed)]["id"]
    assert "the index is consistent" in instance.manage("check_index")
