"""The soak command, run small: a fresh instance, a drop of LFW photos while clients search, every check passing."""

import json
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR, DATA_DIR

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]


def test_a_small_soak_passes_every_check():
    done = subprocess.run(
        [sys.executable, "manage.py", "soak", "--photos", "40", "--searchers", "2", "--data", str(DATA_DIR / "lfw")]
        + ["--json"],
        cwd=BASE_DIR, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(done.stdout)

    assert report["passed"]
    assert {check["name"]: check["ok"] for check in report["checks"]} == {
        "every file became exactly one asset": True,
        "every asset in a final status": True,
        "no asset failed": True,
        "every face is exactly one vector": True,
        "check_index": True,
        "every search during the load answered": True,
        "the service stopped cleanly": True,
    }
    assert report["photos"] == report["settled"] == 40
    assert report["statuses"]["indexed"] + report["statuses"]["no_faces"] + report["statuses"]["duplicate"] == 40
    # Every LFW photo shows at least one face; some show a second person in the background.
    assert report["faces"] >= report["statuses"]["indexed"] == 40
    assert report["searches"] > 0 and report["failed_searches"] == 0
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p95"] <= report["latency_ms"]["max"]
    assert report["seconds"] > 0 and report["photos_per_second"] > 0
    assert not report["home"], "a passing soak removes its temporary home"
