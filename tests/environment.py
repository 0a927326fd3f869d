"""Loaded with `-p` before Django reads its settings: the test run gets a home of its own.

DATABASE_URL is kept, so the suite can run against any PostgreSQL (pytest-django makes its own test database).
With REVSEARCH_TEST_POSTGRES=1 the run starts a throwaway PostgreSQL server of its own and uses that.
"""

import os
import shutil
import tempfile
from pathlib import Path

from benchmarks import servers
from revsearch_site import processes

HOME = tempfile.mkdtemp(prefix="revsearch-test-")
os.environ["REVSEARCH_HOME"] = HOME
for name in ("REVSEARCH_INBOX", "REDIS_URL", "MILVUS_URI"):
    os.environ.pop(name, None)


_stop_postgres = None


def _start_postgres() -> None:
    global _stop_postgres
    # A folder of its own, readable by the `postgres` user the server runs as.
    folder = Path(tempfile.mkdtemp(prefix="revsearch-test-pg-"))
    folder.chmod(0o755)
    port = processes.free_port()
    server = servers.postgres(port, folder / "data").start(folder / "postgres.log")
    server.wait_ready()
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{port}/revsearch"

    def stop() -> None:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)

    _stop_postgres = stop


def pytest_unconfigure(config) -> None:
    if _stop_postgres:
        _stop_postgres()
    shutil.rmtree(HOME, ignore_errors=True)  # each test process's own home: nothing of a run is left in /tmp


# Under pytest-xdist the first process starts the server, and the test processes it starts inherit DATABASE_URL
# (pytest-django gives each a test database of its own).
if os.environ.get("REVSEARCH_TEST_POSTGRES") == "1" and not os.environ.get("PYTEST_XDIST_WORKER"):
    _start_postgres()
