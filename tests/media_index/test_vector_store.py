"""The vector store against a real Milvus Lite server."""

import numpy as np
import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.processes]


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, 512)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_insert_search_delete(vector_store_on):
    store = vector_store_on
    vectors = unit_vectors(6)
    store.insert([store.FaceVector(i, vectors[i], asset_id=100 + i // 2, kind="image") for i in range(6)])
    assert store.count() == 6

    hits = store.search(vectors[3], top_k=3)
    assert [hit.face_id for hit in hits][0] == 3
    assert hits[0].distance == pytest.approx(0.0, abs=1e-3)
    assert hits[0].asset_id == 101
    # Distances are Euclidean (not squared) and sorted nearest first.
    expected = sorted(float(np.linalg.norm(vectors[3] - v)) for v in vectors)[:3]
    assert [hit.distance for hit in hits] == pytest.approx(expected, abs=1e-3)

    store.delete_asset(101)
    assert store.count() == 4
    assert 3 not in [hit.face_id for hit in store.search(vectors[3], top_k=6)]


def test_empty_insert_is_a_no_op(vector_store_on):
    vector_store_on.insert([])
    assert vector_store_on.count() == 0


def test_unreachable_server_is_reported(settings):
    from media_index import vector_store
    from revsearch_site import processes

    settings.MILVUS_URI = f"http://127.0.0.1:{processes.free_port()}"
    vector_store.reset_client()
    with pytest.raises(vector_store.VectorStoreUnavailable, match="not answering"):
        vector_store.search(unit_vectors(1)[0], 5)
    vector_store.reset_client()


def test_the_collection_fits_the_configured_model(settings, milvus_uri):
    from media_index import vector_store

    settings.FACE_MODEL = "dlib-resnet"
    settings.MILVUS_URI = milvus_uri
    settings.MILVUS_COLLECTION = "test_dlib_sized"
    vector_store.reset_client()
    vector = unit_vectors(1)[0][:128] / np.linalg.norm(unit_vectors(1)[0][:128])
    vector_store.insert([vector_store.FaceVector(1, vector, asset_id=1, kind="image")])
    assert vector_store.search(vector, 1)[0].face_id == 1
    vector_store.client().drop_collection("test_dlib_sized")
    vector_store.reset_client()


def test_writes_survive_a_killed_server_without_a_flush(settings, tmp_path):
    import os
    import signal

    from media_index import vector_store
    from revsearch_site import processes

    port = processes.free_port()
    settings.MILVUS_URI = f"http://127.0.0.1:{port}"
    settings.MILVUS_COLLECTION = "durability"
    vectors = unit_vectors(5)
    server = processes.milvus_lite(port, tmp_path / "milvus").start(tmp_path / "milvus.log")
    try:
        server.wait_ready()
        vector_store.reset_client()
        vector_store.insert([vector_store.FaceVector(i, vectors[i], asset_id=i, kind="image") for i in range(5)])
        vector_store.delete_asset(4)
        os.killpg(server.popen.pid, signal.SIGKILL)  # no chance to save anything on the way out
        server.popen.wait()
        server.start()
        server.wait_ready()
        vector_store.reset_client()
        assert sorted(vector_store.stored_faces()) == [0, 1, 2, 3]
    finally:
        server.stop()
        vector_store.reset_client()


def test_flushed_vectors_are_still_found(vector_store_on):
    store = vector_store_on
    vectors = unit_vectors(4, seed=3)
    store.insert([store.FaceVector(i, vectors[i], asset_id=7, kind="image") for i in range(4)])
    store.flush()
    store.insert([store.FaceVector(9, vectors[0] * -1, asset_id=8, kind="image")])
    assert store.count() == 5
    assert store.search(vectors[2], top_k=1)[0].face_id == 2
