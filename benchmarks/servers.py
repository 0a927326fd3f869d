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
# The embedded etcd's configuration: milvus-server moves every other port it finds taken (from Milvus's defaults up,
# 9091 health included), but not etcd's, which Milvus reads from this file when ETCD_CONFIG_PATH names it.
EMBEDDED_ETCD = """name: default
listen-client-urls: http://127.0.0.1:{client}
advertise-client-urls: http://127.0.0.1:{client}
listen-peer-urls: http://127.0.0.1:{peer}
initial-advertise-peer-urls: http://127.0.0.1:{peer}
initial-cluster: default=http://127.0.0.1:{peer}
"""


def milvus_standalone(port: int, data_dir: Path) -> processes.Process:
    """A real Milvus standalone server (PyPI `milvus`: embedded etcd, local storage), for tests against one.

    SIGINT to the wrapper stops the server too; SIGTERM leaves the server binary running. Its embedded etcd gets
    two free loopback ports of its own, so several servers run side by side (its other ports listen on every
    interface: talk to it on 127.0.0.1).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    client = processes.free_port(2)
    etcd_config = data_dir / "embedded-etcd.yaml"
    etcd_config.write_text(EMBEDDED_ETCD.format(client=client, peer=client + 1))
    argv = [str(Path(sys.executable).with_name("milvus-server")), "--data", str(data_dir), "--proxy-port", str(port)]
    argv += ["--etcd-port", str(client)]
    for role in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode"):
        argv += ["--extra-config", f"{role}.ip=127.0.0.1"]
    env = {**os.environ, "ETCD_CONFIG_PATH": str(etcd_config)}
    return processes.Process("milvus-standalone", argv, env=env, ready_port=port, stop_signal=signal.SIGINT)


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
    """A Milvus server of this kind on a free loopback port, with its data in folder, stopped afterwards; one that
    does not start (another server took a port it had chosen) is tried again."""
    for attempt in range(1, attempts + 1):
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
