"""The whole service as `make run` starts it (`manage.py serve`), in a temporary home, on free ports."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from revsearch_site import processes
from tests.conftest import BASE_DIR, DATA_DIR, EXAMPLES

ADMIN_PASSWORD = "flow-test-password-7"
KNN_TRAIN = EXAMPLES / "knn_examples" / "train"
HAMILTON = EXAMPLES / "short_hamilton_clip.mp4"
CROWD = DATA_DIR / "facenet-pytorch" / "examples" / "video.mp4"


@dataclass
class Service:
    env: dict[str, str]
    home: Path
    inbox: Path
    url: str

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), *args],
            env=self.env, cwd=BASE_DIR, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout

    def status(self) -> dict[str, int]:
        return json.loads(self.manage("index_status", "--json"))

    def wait_until_idle(self, expected_assets: int, timeout: float = 600) -> dict[str, int]:
        """Wait until every asset that arrived has left queued/processing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.status()
            assets = sum(value for name, value in counts.items() if name != "faces")
            if assets >= expected_assets and counts["queued"] == counts["processing"] == 0:
                return counts
            time.sleep(1)
        raise AssertionError(f"not indexed within {timeout:.0f} s: {self.status()}")

    def assets(self) -> dict[str, dict]:
        """Every asset's status record, by path."""
        records = map(json.loads, self.manage("index_status", "--assets", "--json").splitlines())
        return {record["path"]: record for record in records}

    def wait_for(self, condition, what: str, timeout: float = 120) -> dict[str, dict]:
        """Poll the assets until condition(assets) holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(assets := self.assets()):
                return assets
            time.sleep(1)
        raise AssertionError(f"not within {timeout:.0f} s: {what}")

    def signed_in(self) -> requests.Session:
        session = requests.Session()
        login = f"{self.url}/admin/login/"
        session.get(login, timeout=30)
        answer = session.post(
            login,
            data={
                "username": "admin",
                "password": ADMIN_PASSWORD,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": login},
            timeout=30,
        )
        assert answer.ok and "sessionid" in session.cookies, "could not sign in"
        return session


def free_port_run(count: int) -> int:
    """A port p such that p, p+1 ... p+count-1 are all free (serve puts Redis and Milvus next to the web port)."""
    for _ in range(50):
        port = processes.free_port()
        if port + count < 65536 and not any(processes.port_open(port + i) for i in range(count)):
            return port
    raise RuntimeError("no run of free ports found")


@pytest.fixture(scope="session")
def service(tmp_path_factory) -> Service:
    home = tmp_path_factory.mktemp("home")
    port = free_port_run(3)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MILVUS_URI", "DATABASE_URL")}
    env |= {
        "REVSEARCH_HOME": str(home),
        "REVSEARCH_PORT": str(port),
        "REVSEARCH_WORKERS": "2",
        "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
        "PYTHONWARNINGS": "ignore",
    }
    service = Service(env, home, home / "inbox", f"http://127.0.0.1:{port}")
    service.manage("migrate", "--noinput")
    service.manage("ensure_admin")
    # A file that arrives while the service is down is picked up when the watcher starts.
    (service.inbox / "before").mkdir(parents=True)
    shutil.copy(EXAMPLES / "alex-lacamoire.png", service.inbox / "before" / "alex-lacamoire.png")

    log = (home / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), "serve"], env=env, cwd=BASE_DIR, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 180
        while not _healthy(service.url):
            assert serve.poll() is None, f"serve exited early:\n{(home / 'serve.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"service not healthy:\n{(home / 'serve.log').read_text()[-3000:]}"
            time.sleep(1)
        yield service
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            code = serve.wait(60)
        except subprocess.TimeoutExpired:
            serve.kill()
            code = "killed"
        log.close()
        # SIGTERM stops every process cleanly: serve exits 0 and nothing listens on its ports any more.
        assert code == 0, f"serve exited with {code}:\n{(home / 'serve.log').read_text()[-3000:]}"
        assert not any(processes.port_open(port + i) for i in range(3)), "a process outlived serve"


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=30).status_code == 200
    except requests.RequestException:  # not listening yet, or still importing on a fresh virtualenv
        return False


@pytest.fixture(scope="session")
def indexed(service) -> dict[str, int]:
    """The photo set of the photo flow, copied into the inbox while the service runs; the counts once indexed.

    One more photo was placed before the service started (see `service`).
    """
    for name in ("obama.jpg", "biden.jpg", "two_people.jpg"):
        shutil.copy(EXAMPLES / name, service.inbox / name)
    shutil.copytree(KNN_TRAIN, service.inbox / "train")
    (service.inbox / "notes.txt").write_text("not a photo")
    # A download that lands under a temporary name and is renamed when complete is read once, by its final name.
    partial = service.inbox / "obama-240p.jpg.part"
    shutil.copy(EXAMPLES / "obama-240p.jpg", partial)
    partial.rename(service.inbox / "obama-240p.jpg")
    arrived = 1 + 3 + len(list(KNN_TRAIN.rglob("*.jp*g"))) + 1 + 1
    return service.wait_until_idle(expected_assets=arrived)


@pytest.fixture(scope="session")
def videos(service, indexed) -> dict[str, dict]:
    """The two sample videos and a truncated copy, added after the photos; each video's status record by name."""
    folder = service.inbox / "videos"
    folder.mkdir()
    shutil.copy(HAMILTON, folder / HAMILTON.name)
    shutil.copy(CROWD, folder / "crowd.mp4")
    (folder / "truncated.mp4").write_bytes(HAMILTON.read_bytes()[: HAMILTON.stat().st_size // 2])
    service.wait_until_idle(expected_assets=sum(v for k, v in indexed.items() if k != "faces") + 3)
    return {
        record["path"].rsplit("/", 1)[-1]: record
        for record in map(json.loads, service.manage("index_status", "--assets", "--json").splitlines())
        if "/videos/" in record["path"]
    }
