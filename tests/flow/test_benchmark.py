"""The benchmark command, run small: a fresh service indexes LFW photos, is searched, and its figures add up."""

import json
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR, DATA_DIR

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]


def test_a_small_benchmark_reports_photos_search_and_memory():
    done = subprocess.run(
        [sys.executable, "manage.py", "benchmark", "--json", "--only", "photos,search", "--photos", "20"]
        + ["--workers", "1", "--search-faces", "300", "--searches", "3", "--data", str(DATA_DIR / "lfw")],
        cwd=BASE_DIR, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(done.stdout)

    [photos] = report["photos"]
    assert photos["workers"] == 1 and photos["photos"] == 20
    assert photos["statuses"]["indexed"] == 20 and photos["faces"] >= 20
    # seconds is rounded to 0.1 s, so 20 / seconds may be off by up to 20 * 0.05 / seconds**2 (a short run is ~3 s).
    rounding = 20 * 0.05 / photos["seconds"] ** 2
    assert photos["photos_per_second"] == pytest.approx(20 / photos["seconds"], abs=rounding + 0.01)
    processes = {process["name"]: process for process in photos["processes"]}
    # One pool process did all the indexing: it used CPU, and its models take memory.
    assert processes["celery worker child"]["cpu_seconds"] > 0.5
    assert processes["celery worker child"]["peak_rss_mb"] > 200
    assert {"serve", "watcher", "web (gunicorn)", "redis", "milvus"} <= set(processes)

    search = report["search"]
    assert search["faces"] >= 300  # the real faces topped up with synthetic ones
    assert search["searches"] == 3 and search["failed"] == 0
    assert 0 < search["latency_ms"]["p50"] <= search["latency_ms"]["p95"]
    assert report["stages"] == {} and report["video"] == [] and report["milvus"] == []
