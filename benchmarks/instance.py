"""One whole RevSearch service (`manage.py serve`) in a home of its own, on free ports, driven from outside.

The flow tests and `manage.py soak` use it, so both run the service exactly as `make run` does.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from media_index.models import Asset
from revsearch_site import processes

logger = logging.getLogger(__name__)

BASE_DIR = processes.BASE_DIR
ADMIN = "admin"
# serve puts Redis on the web port + 1 and Milvus Lite on + 2.
PORTS = 3


class InstanceError(RuntimeError):
    """The instance did not start, a command in it failed, or it did not stop cleanly."""


class CommandFailed(InstanceError):
    """A `manage.py` command run in the instance exited non-zero; its output is kept."""

    def __init__(self, args: tuple[str, ...], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(f"manage.py {' '.join(args)} exited with {returncode}:\n{stderr[-3000:]}")
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


# How long the ports may take to close after serve exited, before a process counts as having outlived it.
PORTS_CLOSE_SECONDS = 5.0


class Instance:
    """The service in `home`, with its own Redis, Milvus Lite, worker, watcher and web server; a context manager."""

    def __init__(self, home: Path, admin_password: str, workers: int | None = None) -> None:
        self.home = Path(home)
        self.inbox = self.home / "inbox"
        self.port = processes.free_port(PORTS)
        self.url = f"http://127.0.0.1:{self.port}"
        self.milvus_uri = f"http://127.0.0.1:{self.port + 2}"  # where serve starts Milvus Lite (see settings)
        self.admin_password = admin_password
        # Nothing of the caller's own archive may leak in: its database, queue, vectors or inbox.
        drop = ("REDIS_URL", "MILVUS_URI", "DATABASE_URL", "REVSEARCH_INBOX")
        self.env = {name: value for name, value in os.environ.items() if name not in drop}
        self.env |= {
            "REVSEARCH_HOME": str(self.home),
            "REVSEARCH_PORT": str(self.port),
            "DJANGO_SUPERUSER_USERNAME": ADMIN,
            "DJANGO_SUPERUSER_PASSWORD": admin_password,
            "PYTHONWARNINGS": "ignore",
        }
        if workers is not None:
            self.env["REVSEARCH_WORKERS"] = str(workers)
        self.log_path = self.home / "serve.log"
        self.serve: subprocess.Popen | None = None
        self.reader: subprocess.Popen | None = None

    def prepare(self) -> "Instance":
        """Create the database and the admin user, and the inbox, so files can be placed before start()."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput")
        self.manage("ensure_admin")
        self.inbox.mkdir(exist_ok=True)
        return self

    def start(self, timeout: float = 180) -> "Instance":
        """Start `manage.py serve` and wait until /healthz answers 200 (database, Redis, Milvus and a worker up)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.serve = subprocess.Popen(
                [sys.executable, str(BASE_DIR / "manage.py"), "serve"],
                env=self.env, cwd=BASE_DIR, stdout=log, stderr=log,
            )  # fmt: skip
        logger.info("started serve in %s on port %s (pid %s)", self.home, self.port, self.serve.pid)
        deadline = time.monotonic() + timeout
        while not healthy(self.url):
            if self.serve.poll() is not None:
                raise InstanceError(
                    f"serve exited with {self.serve.returncode} before it was healthy:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop(check=False)
                raise InstanceError(f"serve was not healthy within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(1)
        logger.info("serve is healthy at %s", self.url)
        return self

    def stop(self, timeout: float = 60, check: bool = True) -> None:
        """SIGTERM to serve; with check, fail unless it exits 0 and nothing listens on its ports any more."""
        self._stop_reader()
        if self.serve is None:
            return
        code = self.serve.poll()
        if code is None:
            self.serve.send_signal(signal.SIGTERM)
            try:
                code = self.serve.wait(timeout)
            except subprocess.TimeoutExpired:
                self.serve.kill()
                self.serve.wait()
                code = "killed"
            logger.info("serve stopped (exit code %s)", code)
        if not check:
            return
        if code != 0:
            raise InstanceError(f"serve exited with {code} on SIGTERM (log {self.log_path}):\n{self.log_tail()}")
        # A process still exiting may hold its listening socket for a moment after serve returned (seen once on a
        # slow day): a few seconds' grace, after which one that lives on is a process that outlived serve.
        deadline = time.monotonic() + PORTS_CLOSE_SECONDS
        while any(processes.port_open(self.port + i) for i in range(PORTS)):
            if time.monotonic() > deadline:
                raise InstanceError(f"a process outlived serve: ports {self.port}-{self.port + PORTS - 1} still listen")
            time.sleep(0.2)

    def __enter__(self) -> "Instance":
        return self.start()

    def __exit__(self, error_type, error, traceback) -> None:
        # When the body failed, that failure is the news; a stop that is unclean as well must not hide it.
        self.stop(check=error_type is None)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def manage(self, *args: str, timeout: float = 300) -> str:
        """Run one `manage.py` command in the instance's home; its stdout, or CommandFailed."""
        done = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), *args],
            env=self.env, cwd=BASE_DIR, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise CommandFailed(args, done.returncode, done.stdout, done.stderr)
        return done.stdout

    def status(self) -> dict[str, int]:
        """Assets per status, and "faces": the Face rows."""
        return self._ask("counts")

    def wait_until_idle(self, expected_assets: int, timeout: float = 600) -> dict[str, int]:
        """Wait until every asset that arrived has left queued/processing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.status()
            if asset_count(counts) >= expected_assets and not unfinished(counts):
                return counts
            time.sleep(1)
        raise TimeoutError(f"not indexed within {timeout:.0f} s: {self.status()}")

    def assets(self) -> dict[str, dict]:
        """Every asset's status record, by path."""
        return {record["path"]: record for record in self._ask("assets")}

    def wait_for(self, condition: Callable[[dict[str, dict]], bool], what: str, timeout: float = 120) -> dict:
        """Poll the assets until condition(assets) holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(assets := self.assets()):
                return assets
            time.sleep(1)
        raise TimeoutError(f"not within {timeout:.0f} s: {what}")

    def _ask(self, question: str) -> Any:
        """The answer of the instance's status reader (benchmarks/status_reader.py), started on first use: a
        process that stays up, where a `manage.py` run each time would cost a second of CPU."""
        if self.reader is not None and self.reader.poll() is not None:
            self._stop_reader()  # it died: its pipes are closed, and a new one starts
        if self.reader is None:
            with (self.home / "status_reader.log").open("ab") as log:
                self.reader = subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.status_reader"],
                    env=self.env, cwd=BASE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                )  # fmt: skip
        assert self.reader.stdin is not None and self.reader.stdout is not None
        try:
            self.reader.stdin.write(question + "\n")
            self.reader.stdin.flush()
            answer = self.reader.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if not answer:
            code = self.reader.wait()
            self._stop_reader()
            raise InstanceError(f"the status reader exited with {code}: see {self.home / 'status_reader.log'}")
        return json.loads(answer)

    def _stop_reader(self) -> None:
        if self.reader is None:
            return
        reader, self.reader = self.reader, None
        if reader.stdin is not None:
            reader.stdin.close()  # it exits at the end of its input
        try:
            reader.wait(timeout=10)
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait()
        if reader.stdout is not None:
            reader.stdout.close()

    def signed_in(self) -> requests.Session:
        """A session signed in as the admin, as a browser would be."""
        session = requests.Session()
        login = f"{self.url}/admin/login/"
        session.get(login, timeout=30)
        answer = session.post(
            login,
            data={
                "username": ADMIN,
                "password": self.admin_password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": login},
            timeout=30,
        )
        if not (answer.ok and "sessionid" in session.cookies):
            raise InstanceError(f"could not sign in at {login} (HTTP {answer.status_code})")
        return session


def asset_count(counts: dict[str, int]) -> int:
    return sum(value for name, value in counts.items() if name != "faces")


def unfinished(counts: dict[str, int]) -> int:
    return sum(counts.get(status, 0) for status in Asset.UNFINISHED)


def healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=30).status_code == 200
    except requests.RequestException:  # not listening yet, or still importing on a fresh virtualenv
        return False
