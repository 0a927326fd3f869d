"""A poison file with the real worker: its pool process is killed every time it indexes it; the queue goes on."""

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from benchmarks.instance import Instance
from tests.flow.conftest import ADMIN_PASSWORD
from tests.flow.test_faults import GREENSPAN, celery_main, children, long_video, settled

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]

DEATH_LIMIT = 3


def kill_pool_whenever_it_indexes(instance: Instance, path: Path, timeout: float = 300) -> int:
    """SIGKILL the worker's pool process each time it starts indexing path, until the death limit is reached."""
    killed, runs = 0, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = instance.log_tail(10**7)
        starts = [line for line in log.splitlines() if "indexing asset" in line and line.endswith(str(path))]
        if len(starts) > runs:
            runs = len(starts)
            # The run that sees the limit reached only fails the file: that one is left alone.
            if f"({DEATH_LIMIT} of at most {DEATH_LIMIT} deaths)" in log:
                return killed
            for pid, _command in children(celery_main(instance)):
                os.kill(pid, signal.SIGKILL)
            killed += 1
        time.sleep(0.1)
    raise TimeoutError(f"{path.name} was started {runs} times in {timeout:.0f} s, killed {killed} times")


def test_a_file_that_kills_its_worker_every_time_fails_after_the_limit_and_the_queue_goes_on(tmp_path):
    instance = Instance(tmp_path / "home", ADMIN_PASSWORD, workers=1)
    # In one piece: the deaths counted are the asset's own, one for each run of its task this test kills (a video
    # split into stretches counts them per stretch, tests/media_index/test_stretches.py).
    instance.env |= {"REVSEARCH_WORKER_DEATH_LIMIT": str(DEATH_LIMIT), "REVSEARCH_VIDEO_STRETCH_SECONDS": "0"}
    with instance.prepare():
        worker = celery_main(instance)
        [(pool, _command)] = children(worker)
        # The pool process is the one the OOM killer should pick, not Redis, Milvus or the web server.
        assert Path(f"/proc/{pool}/oom_score_adj").read_text().strip() == "500"

        poison = long_video(instance.inbox, "poison.mp4", 20)
        assert kill_pool_whenever_it_indexes(instance, poison) == DEATH_LIMIT
        record = instance.wait_for(settled(poison), "the poison file settled")[str(poison)]
        assert record["status"] == "failed", record
        assert f"the worker died {DEATH_LIMIT} times while indexing it" in record["error"], record
        assert (record["faces"], record["frames_done"]) == (0, 0), "a failed file keeps nothing half-indexed"

        after = Path(shutil.copy(GREENSPAN[0], instance.inbox / "after the poison.jpg"))
        record = instance.wait_for(settled(after), "the photo after it indexed")[str(after)]
        assert (record["status"], record["faces"]) == ("indexed", 1), record
        assert celery_main(instance) == worker, "the worker itself stayed up; only its pool process was replaced"
        assert "the index is consistent" in instance.manage("check_index")
