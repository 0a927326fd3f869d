"""The home's secrets: the key, the database and the embedded Redis's password are this user's alone."""

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from revsearch_site import private_files, processes
from tests.conftest import BASE_DIR

pytestmark = pytest.mark.processes

# What every process of the service does first (manage.py, Celery, gunicorn): read the settings. It prints what it
# read: the key, the Redis URL, the database's file.
READ_SETTINGS = (
    "from revsearch_site import settings as s; print(s.SECRET_KEY, s.REDIS_URL, s.DATABASES['default']['NAME'])"
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start_in(home: Path, umask: int = 0o022) -> subprocess.Popen:
    """A process that loads the settings for `home` with the laptop defaults (no key, Redis or database given)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "REDIS_URL", "DATABASE_URL")}
    environment["REVSEARCH_HOME"] = str(home)
    argv = [sys.executable, "-c", READ_SETTINGS]
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    return subprocess.Popen(argv, env=environment, cwd=BASE_DIR, umask=umask, **output)


def run_in(home: Path, umask: int = 0o022) -> tuple[list[str], str]:
    process = start_in(home, umask)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out.split(), err


def test_a_new_home_is_private_even_under_a_permissive_umask(tmp_path):
    home = tmp_path / "home"
    (key, redis_url, database), _err = run_in(home, umask=0)
    assert mode(home) == 0o700
    for name in ("secret_key", "redis_password", "db.sqlite3"):
        assert mode(home / name) == 0o600, name
    assert key == (home / "secret_key").read_text() and len(key) >= 50
    assert database == str(home / "db.sqlite3")
    assert redis.connection.parse_url(redis_url)["password"] == (home / "redis_password").read_text()
    assert not [path.name for path in home.iterdir() if path.name.startswith(".")], "a draft was left behind"


def test_processes_starting_at_once_agree_on_the_secrets(tmp_path):
    home = tmp_path / "home"
    started = [start_in(home) for _ in range(6)]
    outputs = {tuple(process.communicate(timeout=120)[0].split()) for process in started}
    assert all(process.returncode == 0 for process in started)
    assert len(outputs) == 1, "two processes read different keys: one read a file half written, or replaced it"
    assert next(iter(outputs))[0] == (home / "secret_key").read_text()


def test_a_loose_home_is_tightened_at_start_with_one_log_line(tmp_path):
    home = tmp_path / "home"
    run_in(home)
    home.chmod(0o755)
    for name in ("secret_key", "db.sqlite3"):
        (home / name).chmod(0o644)
    (home / "db.sqlite3-wal").write_bytes(b"")
    (home / "db.sqlite3-wal").chmod(0o664)

    _values, err = run_in(home)
    lines = [line for line in err.splitlines() if "other users' access" in line]
    assert len(lines) == 1, err
    for name in ("secret_key", "db.sqlite3", "db.sqlite3-wal"):
        assert f"{home / name} 0" in lines[0]
        assert mode(home / name) == 0o600, name
    assert mode(home) == 0o700
    assert "redis_password" not in lines[0], "a file that was private already is not reported"
    # Once private, nothing more is said.
    assert "other users' access" not in run_in(home)[1]


def test_a_private_file_is_made_once_and_never_replaced(tmp_path):
    target = tmp_path / "deeper" / "secret"
    assert private_files.private_file(target, "first")
    assert not private_files.private_file(target, "second")
    assert target.read_text() == "first"
    assert mode(target) == 0o600 and mode(target.parent) == 0o700


def test_an_empty_secret_file_is_refused_naming_it(tmp_path):
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(Exception, match=f"{tmp_path / 'secret_key'} is empty: delete it"):
        private_files.private_secret(tmp_path / "secret_key")


def test_tightening_someone_elses_file_is_reported_not_fatal(tmp_path, caplog, monkeypatch):
    secret = tmp_path / "secret_key"
    secret.write_text("k")
    secret.chmod(0o644)

    def refuse(self, mode):
        raise PermissionError("not the owner")

    monkeypatch.setattr(Path, "chmod", refuse)
    with caplog.at_level(logging.WARNING, logger="revsearch_site.private_files"):
        private_files.make_private(tmp_path, [secret])
    assert f"{secret} 0644 unchanged" in caplog.text and f"chmod go= {secret}" in caplog.text


# --- The embedded Redis's password ---------------------------------------------------------------------------------


@pytest.fixture
def redis_with_password(tmp_path):
    port = processes.free_port()
    server = processes.redis(port, tmp_path / "redis", settings.REDIS_PASSWORD).start(tmp_path / "redis.log")
    try:
        server.wait_ready()
        yield server, port
    finally:
        server.stop()


def test_the_embedded_redis_refuses_clients_without_the_password(redis_with_password, tmp_path):
    server, port = redis_with_password
    once = Retry(NoBackoff(), 0)  # redis-py retries a refused AUTH three times, with pauses
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, socket_timeout=5, retry=once).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, password="a-guess", socket_timeout=5, retry=once).ping()
    # The settings' own URL, on this server's port, gets in.
    url = settings.REDIS_URL.replace(f":{processes.port_of(settings.REDIS_URL)}/", f":{port}/")
    assert redis.Redis.from_url(url, socket_timeout=5).ping()
    # Not on the command line, where `ps` shows it to everyone; in a file only this user can read.
    command_line = Path(f"/proc/{server.popen.pid}/cmdline").read_bytes()
    assert settings.REDIS_PASSWORD.encode() not in command_line
    assert mode(tmp_path / "redis" / "redis.conf") == 0o600


def test_the_default_redis_url_carries_the_homes_password():
    assert settings.REDIS_EMBEDDED
    assert (settings.HOME_DIR / "redis_password").read_text() == settings.REDIS_PASSWORD
    assert redis.connection.parse_url(settings.REDIS_URL)["password"] == settings.REDIS_PASSWORD
    assert settings.CELERY_BROKER_URL == settings.REDIS_URL


def test_serve_starts_the_embedded_redis_with_the_password():
    from media_index.management.commands.serve import Command

    (server,) = [process for process in Command().backing_services() if process.name == "redis"]
    assert settings.REDIS_PASSWORD not in " ".join(server.argv)
    config = Path(server.argv[1])
    assert config.read_text() == f"requirepass {settings.REDIS_PASSWORD}\n"
