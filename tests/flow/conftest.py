"""The whole service as `make run` starts it (`manage.py serve`), in a temporary home, on free ports."""

import shutil
from pathlib import Path

import pytest

from benchmarks.instance import Instance
from tests.conftest import DATA_DIR, EXAMPLES

ADMIN_PASSWORD = "flow-test-password-7"
KNN_TRAIN = EXAMPLES / "knn_examples" / "train"
HAMILTON = EXAMPLES / "short_hamilton_clip.mp4"
CROWD = DATA_DIR / "facenet-pytorch" / "examples" / "video.mp4"


def photo_service(home: Path, **env: str) -> Instance:
    """The service of the photo flow, prepared, with one photo already waiting (extra environment in env)."""
    service = Instance(home, ADMIN_PASSWORD, workers=2)
    service.env |= env
    service.prepare()
    # A file that arrives while the service is down is picked up when the watcher starts.
    (service.inbox / "before").mkdir(parents=True)
    shutil.copy(EXAMPLES / "alex-lacamoire.png", service.inbox / "before" / "alex-lacamoire.png")
    return service


def drop_photo_set(service: Instance) -> dict[str, int]:
    """Copy the photo set into the running service's inbox; the counts once it is indexed."""
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
def service(tmp_path_factory) -> Instance:
    """The running service on Milvus Lite; stopping it checks that serve exits 0 and frees its ports. Videos of 6 s
    or more are split into stretches of 3 s, so that the Hamilton clip is indexed by both workers and joined."""
    with photo_service(tmp_path_factory.mktemp("home"), REVSEARCH_VIDEO_STRETCH_SECONDS="3") as service:
        yield service


@pytest.fixture(scope="session")
def indexed(service) -> dict[str, int]:
    """The photo set in the service's inbox, indexed; one more photo was placed before it started."""
    return drop_photo_set(service)


@pytest.fixture(scope="session")
def videos(service, indexed) -> dict[str, dict]:
    """The two sample videos and a truncated copy, added after the photos; each video's status record by name."""
    folder = service.inbox / "videos"
    folder.mkdir()
    shutil.copy(HAMILTON, folder / HAMILTON.name)
    shutil.copy(CROWD, folder / "crowd.mp4")
    (folder / "truncated.mp4").write_bytes(HAMILTON.read_bytes()[: HAMILTON.stat().st_size // 2])
    service.wait_until_idle(expected_assets=sum(v for k, v in indexed.items() if k != "faces") + 3)
    return {path.rsplit("/", 1)[-1]: record for path, record in service.assets().items() if "/videos/" in path}
