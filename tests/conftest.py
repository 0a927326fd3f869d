"""Shared test set-up: where the test data lives, and the real processes the flow tests drive."""

import os
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from revsearch_site import processes

BASE_DIR = Path(__file__).resolve().parents[1]
# REVSEARCH_DATA_DIR, by default ../shared/data beside the clone. Resolved once, so that the paths built from it
# compare equal to the resolved paths the commands report, whether ../shared is a folder or a symbolic link.
DATA_DIR = Path(settings.DATA_DIR).resolve()
SAMPLES = DATA_DIR / "samples"
EXAMPLES = DATA_DIR / "face_recognition" / "examples"


# Fixtures that start a server of their own: a test that uses one starts processes (see the `processes` marker).
SERVER_FIXTURES = frozenset({"milvus_uri", "redis_url", "redis_with_password"})


# pytest-django's fixtures that give a test the database (others, such as admin_client, ask for one of these).
DATABASE_FIXTURES = frozenset({"db", "transactional_db"})


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--only-database",
        action="store_true",
        help="Run only the tests that use the database (make test runs them again on PostgreSQL with it).",
    )


def uses_database(item) -> bool:
    return bool(item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())))


# The service the flow tests share for the whole run (tests/flow/conftest.py), and the modules whose tests use it.
SHARED_SERVICE_FIXTURES = frozenset({"service", "indexed", "videos"})
SHARED_SERVICE_MODULES = frozenset(
    {"tests/flow/test_browser.py", "tests/flow/test_moves.py", "tests/flow/test_videos.py"}
)


# The modules that start Milvus standalone servers. Several run side by side, but milvus-server picks its health
# port itself (the first of 9091 and up that it can bind), so two starting at the same moment could pick the same.
MILVUS_STANDALONE_MODULES = frozenset({"tests/flow/test_photos.py", "tests/benchmarks/test_servers.py"})


def process_group(nodeid: str) -> str:
    """Which tests pytest-xdist runs in one process (`make test` runs two): those of one module, so that its
    module-scoped fixtures start once, those of the shared service's modules, which build on each other, and those
    of the modules that start Milvus standalone servers."""
    module = nodeid.split("::", 1)[0]
    if module in SHARED_SERVICE_MODULES:
        return "shared-service"
    return "milvus-standalone" if module in MILVUS_STANDALONE_MODULES else module


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's loadscope by process_group: its loadgroup writes the group into the node ids, which pytest 9
    no longer lets it do."""
    from xdist.scheduler import LoadScopeScheduling

    class ByProcessGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return process_group(nodeid)

    return ByProcessGroup(config, log)


def uses_shared_service(item) -> bool:
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return any(definitions[name][-1].scope == "session" for name in SHARED_SERVICE_FIXTURES & definitions.keys())


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that start a server are marked `processes`; a test of the shared service outside the modules listed
    stops the run. With --only-database, the tests that use no database are left out. Without the data folder, the
    tests that read it are skipped and the others run."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.processes)
        if uses_shared_service(item) and process_group(item.nodeid) != "shared-service":
            raise pytest.UsageError(
                f"{item.nodeid} uses the shared flow service: add its module to SHARED_SERVICE_MODULES"
            )
    if config.getoption("only_database"):
        kept, left_out = [], []
        for item in items:
            (kept if uses_database(item) else left_out).append(item)
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
    if DATA_DIR.is_dir():
        return
    skip = pytest.mark.skip(
        reason=f"test data not found at {DATA_DIR}: put the shared/ folder beside the clone, or set REVSEARCH_DATA_DIR"
    )
    for item in items:
        if item.get_closest_marker("shared_data"):
            item.add_marker(skip)


def nest(top: Path, depth: int, leaf: str, content: bytes = b"x") -> None:
    """top, then depth folders named d one inside the other, and a file `leaf` in the last one.

    Each folder is made relative to its parent's descriptor, so the depth is not bound by PATH_MAX.
    """
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as out:
            out.write(content)
    finally:
        os.close(fd)


def unnest(top: Path) -> None:
    """Remove what nest() made, one level at a time (shutil.rmtree recurses, and the paths are too long for it)."""
    spare = top.with_name(top.name + ".next")
    while top.exists():
        if (top / "d").is_dir():
            (top / "d").rename(spare)
        for leftover in top.iterdir():
            leftover.unlink()
        top.rmdir()
        if spare.exists():
            spare.rename(top)


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.QUERY_DIR = tmp_path / "queries"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory) -> str:
    """A real Milvus Lite server process for the whole test run."""
    port = processes.free_port()
    server = processes.milvus_lite(port, tmp_path_factory.mktemp("milvus")).start()
    try:
        server.wait_ready()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def vector_store_on(settings, milvus_uri):
    """The vector store, on the real server, in a collection of this test's own."""
    from media_index import vector_store

    settings.MILVUS_URI = milvus_uri
    settings.MILVUS_COLLECTION = f"test_{uuid.uuid4().hex[:12]}"
    vector_store.reset_client()
    yield vector_store
    vector_store.client().drop_collection(settings.MILVUS_COLLECTION)
    vector_store.reset_client()
