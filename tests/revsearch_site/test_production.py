"""Production settings: `check --deploy` is clean behind HTTPS, bad settings are refused, logs are one line."""

import logging
import os
import subprocess
import sys

import pytest

from revsearch_site.log_format import OneLineFormatter
from tests.conftest import BASE_DIR

pytestmark = pytest.mark.processes


PRODUCTION = {
    "DJANGO_SECRET_KEY": "k" * 10 + "a-production-secret-key-of-fifty-characters-or-more-9f3",
    "REVSEARCH_HTTPS": "1",
    "REVSEARCH_ALLOWED_HOSTS": "revsearch.example.org",
    "REVSEARCH_CSRF_TRUSTED_ORIGINS": "https://revsearch.example.org",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=os.environ | {"PYTHONWARNINGS": "ignore"} | env, cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_deployment_check_reports_nothing_with_production_settings():
    done = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


def test_behind_https_pages_redirect_but_the_health_check_answers_over_http(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/").status_code == 301
    assert client.get("/healthz").status_code in (200, 503)


def test_the_deployment_check_catches_plain_http_and_debug():
    done = manage("check", "--deploy", "--fail-level", "WARNING", env={"REVSEARCH_DEBUG": "1"})
    assert done.returncode != 0
    for check in ("security.W008", "security.W012", "security.W016", "security.W018"):
        assert check in done.stderr


def test_a_bad_setting_is_refused_naming_the_variable():
    done = manage("check", env={"REVSEARCH_HTTPS": "perhaps"})
    assert done.returncode != 0 and "REVSEARCH_HTTPS" in done.stderr


def test_a_traceback_is_logged_on_one_line():
    formatter = OneLineFormatter("%(levelname)s %(name)s %(message)s")
    try:
        raise ValueError("bad pixel data\nat row 3")
    except ValueError:
        record = logging.LogRecord("media_index.indexing", logging.ERROR, __file__, 1, "asset %s failed", (42,), None)
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "\n" not in line
    assert line.startswith("ERROR media_index.indexing asset 42 failed | Traceback")
    assert "ValueError: bad pixel data | at row 3" in line
