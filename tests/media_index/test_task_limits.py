"""Task limits: how the Celery configuration sizes them, and what Celery does with a task past its hard limit."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from revsearch_site import processes
from revsearch_site.celery import app
from tests.conftest import BASE_DIR

pytestmark = pytest.mark.processes


def test_a_lost_or_timed_out_task_goes_back_to_the_queue_and_limits_nest() -> None:
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.task_acks_on_timeout is False
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert settings.VIDEO_SLICE_SECONDS < conf.task_soft_time_limit < conf.task_time_limit < visibility
    assert visibility > settings.RETRY_BACKOFF_MAX_SECONDS
    assert conf.worker_max_memory_per_child == settings.WORKER_MAX_MEMORY_MB * 1024


def settings_in(home: Path, **env: str) -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter with the given environment; prints the limits."""
    code = (
        "from revsearch_site import settings as s;"
        "print(s.CELERY_TASK_SOFT_TIME_LIMIT, s.CELERY_TASK_TIME_LIMIT, s.TASK_VISIBILITY_TIMEOUT)"
    )
    environment = {"PATH": os.environ["PATH"], "REVSEARCH_HOME": str(home), "REDIS_URL": "redis://127.0.0.1:1/0"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=environment | env, capture_output=True, text=True
    )


def test_time_limits_follow_the_video_slice_and_the_visibility_timeout_stays_above(tmp_path: Path) -> None:
    assert settings_in(tmp_path).stdout.split() == ["420", "450", "900"]
    longer = settings_in(tmp_path, REVSEARCH_VIDEO_SLICE_SECONDS="1200", REVSEARCH_TASK_TIME_MARGIN="60")
    assert longer.stdout.split() == ["1260", "1290", "1350"]
    too_short = settings_in(tmp_path, REVSEARCH_TASK_TIMEOUT="400")
    assert too_short.returncode != 0
    assert "REVSEARCH_TASK_TIMEOUT=400: must be more than the task time limit (450 s" in too_short.stderr


STUCK_APP = """
import os, time
os.environ["DJANGO_SETTINGS_MODULE"] = "revsearch_site.settings"
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded


app = Celery("stuck")
app.config_from_object("django.conf:settings", namespace="CELERY")  # the service's own task settings
app.conf.update(broker_url=os.environ["BROKER"], result_backend=None, task_soft_time_limit=1, task_time_limit=2)


@app.task(bind=True)
def stuck(self):
    with open(os.environ["RUNS"], "a") as runs:
        runs.write(f"{self.request.id}\\n")
    if len(open(os.environ["RUNS"]).read().split()) > 1:
        return "the second delivery ends"
    try:
        time.sleep(60)
    except SoftTimeLimitExceeded:
        time.sleep(60)  # stuck where the soft limit cannot stop it: only the hard limit can
"""


def test_a_task_killed_at_its_hard_time_limit_is_delivered_again_with_its_id(tmp_path: Path) -> None:
    # Celery 5.7 acknowledges such a task by default: its asset would stay `processing` for ever.
    (tmp_path / "stuck_app.py").write_text(STUCK_APP)
    runs = tmp_path / "runs"
    port = processes.free_port()
    redis = processes.redis(port, tmp_path / "redis").start()
    broker = f"redis://127.0.0.1:{port}/0"
    env = os.environ | {
        "BROKER": broker, "RUNS": str(runs), "PYTHONPATH": f"{tmp_path}:{BASE_DIR}",
        "REVSEARCH_HOME": str(tmp_path / "home"), "REDIS_URL": broker,
    }  # fmt: skip
    argv = [sys.executable, "-m", "celery", "-A", "stuck_app", "worker", "--pool=prefork", "--concurrency=1"]
    worker = processes.Process("stuck-worker", argv + ["--without-gossip", "--without-mingle"], env=env)
    try:
        redis.wait_ready()
        worker.start(tmp_path / "worker.log")
        sender = subprocess.run(
            [sys.executable, "-c", "import stuck_app; print(stuck_app.stuck.delay().id)"],
            env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
        )  # fmt: skip
        task_id = sender.stdout.strip()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(runs.read_text().split() if runs.exists() else []) < 2:
            time.sleep(0.2)
        assert runs.read_text().split() == [task_id, task_id], (tmp_path / "worker.log").read_text()[-3000:]
        assert "Hard time limit (2s) exceeded" in (tmp_path / "worker.log").read_text()
    finally:
        worker.stop()
        redis.stop()
