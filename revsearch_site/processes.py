"""The processes of one RevSearch instance: how each is started, waited for and stopped.

`manage.py serve` and the flow tests both use these, so the tests run the service as users do.
"""

import collections
import contextlib
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

logger = logging.getLogger(__name__)
# free_port chooses from here up to the first port of this range; below it are the usual fixed ports of databases
# and servers (PostgreSQL 5432, Redis 6379, Milvus 19530).
EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_FREE_PORT = 20000

BASE_DIR = Path(__file__).resolve().parent.parent
# How much of a process's output is kept to tell why it died.
RECENT_LINES = 40
ERROR_CHARS = 500
ERROR_WORDS = re.compile(r"Error|Exception|ERROR|CRITICAL|FATAL|Traceback|Killed")
_ECHO_LOCK = threading.Lock()


@dataclass
class Process:
    """A child process started in its own session, so a terminal's Ctrl-C reaches only the supervisor."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    ready_port: int | None = None
    stop_signal: int = signal.SIGTERM
    log_file: Path | None = None
    # Without a log file: pass the output on line by line, remembering the last lines (for last_error).
    echo: bool = False
    popen: subprocess.Popen | None = field(default=None, repr=False)
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=RECENT_LINES), repr=False)

    def start(self, log_file: Path | None = None) -> "Process":
        self.log_file = log_file or self.log_file
        self.recent.clear()
        with self.log_file.open("ab") if self.log_file else contextlib.nullcontext() as output:
            # The child keeps its own copy of the log's descriptor; this process closes its one.
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=BASE_DIR,
                start_new_session=True,
                stdout=subprocess.PIPE if self.echo and not self.log_file else output,
                stderr=subprocess.STDOUT,
            )
        if self.popen.stdout is not None:
            echo = threading.Thread(target=self._echo, args=(self.popen.stdout,), name=f"echo {self.name}", daemon=True)
            echo.start()
        logger.info("started %s (pid %s)", self.name, self.popen.pid)
        return self

    def _echo(self, output) -> None:
        with output:
            for line in output:
                self.recent.append(line.decode(errors="replace").rstrip())
                with _ECHO_LOCK:
                    sys.stdout.buffer.write(line)
                    sys.stdout.buffer.flush()

    def last_error(self) -> str:
        """The last line of its output that reads like an error, to show why it exited ("" when none does)."""
        if self.log_file and self.log_file.exists():
            with self.log_file.open("rb") as log:
                log.seek(max(log.seek(0, os.SEEK_END) - 8192, 0))
                lines = [line.decode(errors="replace").rstrip() for line in log.read().splitlines()]
        else:
            time.sleep(0.1)  # the echo thread may still be reading its last words
            lines = list(self.recent)
        errors = [line for line in lines if ERROR_WORDS.search(line)]
        return (errors or [""])[-1][-ERROR_CHARS:]

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the process listens on its port; fail at once if it died."""
        if self.ready_port is None:
            return
        assert self.popen is not None, f"{self.name} was not started"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.popen.returncode} before it was ready")
            if port_open(self.ready_port):
                logger.info("%s is listening on 127.0.0.1:%s", self.name, self.ready_port)
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on 127.0.0.1:{self.ready_port} within {timeout:.0f} s")

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def clear_leftovers(self) -> None:
        """Kill what the process left behind when it died (e.g. a killed Celery worker's pool children)."""
        assert self.popen is not None, f"{self.name} was not started"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the process to stop; kill its whole session if it has not stopped in time."""
        if not self.running():
            return
        assert self.popen is not None  # running() says so
        os.killpg(self.popen.pid, self.stop_signal)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        logger.info("stopped %s (exit code %s)", self.name, self.popen.returncode)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


def port_of(url: str) -> int:
    port = urlparse(url).port
    if port is None:
        raise ValueError(f"{url} has no port")
    return port


def free_port(count: int = 1) -> int:
    """A loopback port p such that p ... p+count-1 are free now (for tests and benchmarks, which start servers there).

    Chosen below the ports the kernel gives outgoing connections (`ip_local_port_range`) when it can: the server
    binds it a moment or minutes later (a server stopped and started again), and meanwhile a port in that range can
    become some client's end of a connection (seen once, with the tests in two processes: a test's Redis found its
    port taken for two minutes and the service never became healthy).
    """
    try:
        first_ephemeral = int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32768
    for _ in range(100):
        if first_ephemeral - count > LOWEST_FREE_PORT:
            port = random.randrange(LOWEST_FREE_PORT, first_ephemeral - count)
        else:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        if port + count < 65536 and all(bindable(port + i) for i in range(count)):
            return port
    raise RuntimeError(f"no run of {count} free loopback ports found")


def bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def redis(port: int, data_dir: Path, password: str = "") -> Process:
    """Redis on loopback, its queue kept in an append-only file so queued tasks survive a restart.

    With a password, clients must give it; it goes in a config file of mode 0600 rather than on the command line,
    where `ps` would show it to every user.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = ["redis-server"]
    if password:
        config = data_dir / "redis.conf"
        config.unlink(missing_ok=True)
        with os.fdopen(os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(f"requirepass {password}\n")
        argv.append(str(config))  # the config file comes first; the options after it add to it
    argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir)]
    argv += ["--save", "", "--appendonly", "yes", "--daemonize", "no", "--loglevel", "warning"]
    return Process("redis", argv, ready_port=port)


def milvus_lite(port: int, data_dir: Path) -> Process:
    """The Milvus Lite server, shared by the web process and every worker."""
    argv = [str(Path(sys.executable).with_name("milvus-lite")), "server", "--data-dir", str(data_dir)]
    return Process("milvus-lite", argv + ["--host", "127.0.0.1", "--port", str(port)], ready_port=port)


def manage(name: str, *args: str, env: dict[str, str] | None = None) -> Process:
    return Process(name, [sys.executable, str(BASE_DIR / "manage.py"), *args], env=env)


def celery_worker(concurrency: int, env: dict[str, str] | None = None) -> Process:
    argv = [sys.executable, "-m", "celery", "-A", "revsearch_site", "--quiet", "worker", "--pool=prefork"]
    argv += [f"--concurrency={concurrency}", "--loglevel=INFO", "--without-gossip", "--without-mingle"]
    return Process("celery-worker", argv, env=env)


def web_server(bind: str, port: int, env: dict[str, str] | None = None) -> Process:
    argv = [sys.executable, "-m", "gunicorn", "revsearch_site.wsgi", "--bind", f"{bind}:{port}"]
    argv += ["--workers", "2", "--threads", "4", "--timeout", "120", "--access-logfile", "-"]
    # Its control socket would sit in one place for every instance on the machine; nothing here uses it.
    argv += ["--no-control-socket"]
    return Process("web", argv, env=env, ready_port=port)
