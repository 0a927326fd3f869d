"""What a process imports as it starts: the watcher, the supervisor and the commands that read or queue need neither
torch nor pymilvus; the worker imports the indexing pipeline once, before it forks its pool."""

import os
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR

pytestmark = pytest.mark.processes

STARTUP = """
import sys
import django

django.setup()
from django.core.management import load_command_class

for name in ("watch", "index_status", "serve"):
    assert load_command_class("media_index", name).requires_system_checks == [], name
PIPELINE = ("torch", "pymilvus", "media_index.indexing", "media_index.photo_batch", "people.rebuild")
print(sorted(name for name in PIPELINE if name in sys.modules))

from revsearch_site.celery import app

app.loader.init_worker()  # what `celery worker` does before it starts its pool
print(sorted(name for name in PIPELINE if name in sys.modules))
"""


def test_django_starts_without_torch_or_pymilvus_and_the_worker_imports_the_pipeline_before_forking(tmp_path):
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "revsearch_site.settings", "REVSEARCH_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", STARTUP], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "[]",
        "['media_index.indexing', 'media_index.photo_batch', 'people.rebuild', 'torch']",  # pymilvus: on first use
    ]


def test_serve_runs_the_system_checks_in_a_child_and_starts_nothing_when_one_fails(tmp_path):
    env = os.environ | {"REVSEARCH_HOME": str(tmp_path), "REVSEARCH_INBOX": str(tmp_path)}  # uploads in the inbox
    done = subprocess.run(
        [sys.executable, "manage.py", "serve"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "the system checks failed, nothing was started" in done.stderr and "search.E001" in done.stderr
    assert not (tmp_path / "redis").exists() and not (tmp_path / "milvus").exists() and not (tmp_path / "logs").exists()
