"""Servers the tests and benchmarks start for themselves: PostgreSQL, Milvus standalone, and either Milvus in a folder.

`manage.py serve` never starts these; its own processes are in revsearch_site.processes.
"""

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from revsearch_site import processes

logger = logging.getLogger(__name__)

POSTGRES_BIN = Path("/usr/lib/postgresql")
MILVUS_NAMES = {"lite": "Milvus Lite", "standalone": "Milvus standalone"}
# The standalone server's health port is fixed: a second standalone (e.g. a test's) cannot start beside it.
STANDALONE_FIXED_PORT = 9091


def milvus_standalone(port: int, data_dir: Path) -> processes.Process:
    """A real Milvus standalone server (PyPI `milvus`: embedded etcd, local storage), for tests against one.

    SIGINT to the wrapper stops the server too; SIGTERM leaves the server binary running. Some of its ports
    (metrics, health) are fixed and listen on every interface, so only one runs on a machine at a time.
    """
    argv = [str(Path(sys.executable).with_name("milvus-server")), "--data", str(data_dir), "--proxy-port", str(port)]
    for role in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode"):
        argv += ["--extra-config", f"{role}.ip=127.0.0.1"]
    return processes.Process("milvus-standalone", argv, ready_port=port, stop_signal=signal.SIGINT)


def postgres(port: int, data_dir: Path) -> processes.Process:
    """A throwaway PostgreSQL server from Debian's package (for tests against a real one), made on first use.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` user, which must be able to reach
    data_dir (make it under a folder of its own in /tmp, not a private one).
    """
    versions = sorted(POSTGRES_BIN.glob("*/bin/postgres"), key=lambda path: int(path.parts[-3]))
    if not versions:
        raise RuntimeError(f"PostgreSQL is not installed (no {POSTGRES_BIN}/*/bin/postgres): run `make test`")
    binaries = versions[-1].parent
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        if as_owner:
            shutil.chown(data_dir, "postgres", "postgres")
        initdb = [str(binaries / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        subprocess.run(as_owner + initdb + ["--no-sync"], check=True, capture_output=True)
    argv = as_owner + [str(binaries / "postgres"), "-D", str(data_dir), "-p", str(port), "-k", str(data_dir)]
    argv += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"]
    # SIGINT is PostgreSQL's fast shutdown.
    return processes.Process("postgres", argv, ready_port=port, stop_signal=signal.SIGINT)


@contextlib.contextmanager
def running_milvus(
    kind: str, folder: Path, progress: Callable[[str], None], attempts: int = 20
) -> Iterator[processes.Process]:
    """A Milvus server of this kind on a free loopback port, with its data in folder, stopped afterwards.

    A standalone server cannot start while another one holds its fixed ports (the tests start one now and then):
    then this waits and tries again.
    """
    for attempt in range(1, attempts + 1):
        if kind == "standalone" and processes.port_open(STANDALONE_FIXED_PORT):
            progress(f"port {STANDALONE_FIXED_PORT} is taken (another Milvus standalone?); waiting 30 s")
            time.sleep(30)
            continue
        port = processes.free_port()
        maker = milvus_standalone if kind == "standalone" else processes.milvus_lite
        server = maker(port, folder / f"{kind}-{attempt}").start(folder / f"{kind}-{attempt}.log")
        try:
            server.wait_ready(timeout=120)
        except RuntimeError as error:
            server.stop()
            progress(f"{MILVUS_NAMES[kind]} did not start ({error}); trying again in 30 s")
            time.sleep(30)
            continue
        try:
            yield server
        finally:
            server.stop()
        return
    raise RuntimeError(f"{MILVUS_NAMES[kind]} did not start in {attempts} attempts; see the logs in {folder}")


def session_rss_mb(session_id: int) -> float:
    """Resident memory of every process in a session, in MB: the server and what it started, from /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name may hold spaces and brackets: fields are counted after its closing bracket.
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == session_id:
                total += int((stat.parent / "statm").read_text().split()[1]) * page
    return total / 2**20
