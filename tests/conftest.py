"""Shared test set-up: where the test data lives, and the real processes the flow tests drive."""

import uuid
from pathlib import Path

import pytest

from revsearch_site import processes

BASE_DIR = Path(__file__).resolve().parents[1]
DATA_DIR = BASE_DIR.parent / "shared" / "data"
SAMPLES = DATA_DIR / "samples"
EXAMPLES = DATA_DIR / "face_recognition" / "examples"


def pytest_collection_modifyitems(config, items) -> None:
    if not DATA_DIR.is_dir():
        raise pytest.UsageError(f"test data not found at {DATA_DIR}: the shared/ folder must sit beside the clone")


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
