"""The vector benchmark's measurements on the Milvus Lite test server: exact search scores 1, a poor index less."""

import os

import numpy as np
import pytest
from pymilvus import MilvusClient

from benchmarks import servers, synthetic_vectors, vector_bench
from media_index import vector_store

pytestmark = pytest.mark.processes


def test_synthetic_faces_cluster_like_faces():
    faces = synthetic_vectors.face_set(5_000, queries=20, seed=3)
    assert faces.vectors.shape == (5_000, 512) and faces.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(faces.vectors, axis=1), 1.0, atol=1e-5)
    distances = synthetic_vectors.distance_summary(faces)
    # Same person well inside different people, as with the real model (0.61-0.83 against 0.99-1.57).
    assert 0.55 < distances["same_person"][1] < 0.95 < 1.1 < distances["different_people"][1] < 1.45
    # The queries are near the data but none of them is stored.
    nearest = synthetic_vectors.exact_neighbours(faces.vectors, faces.queries, 1)[:, 0]
    gaps = np.linalg.norm(faces.vectors[nearest] - faces.queries, axis=1)
    assert gaps.min() > 0.1 and np.median(gaps) < 0.9


def test_recall_counts_misses_and_forgives_ties():
    faces = synthetic_vectors.face_set(1_000, queries=5)
    exact = synthetic_vectors.exact_neighbours(faces.vectors, faces.queries, 20)
    assert synthetic_vectors.recall_at_k(exact.tolist(), exact, faces.vectors, faces.queries) == 1.0
    half = [row[:10] + [-1] * 10 for row in exact.tolist()]
    assert synthetic_vectors.recall_at_k(half, exact, faces.vectors, faces.queries) == 0.5
    # A copy of the 20th nearest stored under another id is as near: returning it instead is no miss.
    tied = np.vstack([faces.vectors, faces.vectors[exact[0, -1]]])
    swapped = exact.tolist()
    swapped[0][-1] = len(faces.vectors)
    assert synthetic_vectors.recall_at_k(swapped, exact, tied, faces.queries) == 1.0


def test_flat_is_exact_and_a_poor_index_is_not(milvus_uri):
    milvus = MilvusClient(uri=milvus_uri, timeout=60)
    default = vector_bench.IndexSetting(
        vector_store.INDEX_TYPE, dict(vector_store.INDEX_PARAMS), (vector_store.search_params(vector_bench.TOP_K),)
    )
    settings = [
        vector_bench.IndexSetting("FLAT", {}, ({},)),
        default,
        # Many small lists and one probed: the neighbours of a query fall in several lists, most unread.
        vector_bench.IndexSetting("IVF_FLAT", {"nlist": 256}, ({"nprobe": 1},)),
    ]
    lines = []
    try:
        run = vector_bench.measure("lite", milvus, 2_000, 40, lines.append, lambda: 123.0, settings=settings)
        # The scratch collection is gone.
        assert not [name for name in milvus.list_collections() if name.startswith("bench_")]
    finally:
        milvus.close()

    flat, hnsw, poor = run.measurements
    assert flat.recall == 1.0 and flat.meets_target
    assert poor.recall < 0.95 and not poor.meets_target
    assert hnsw.default and not flat.default and not poor.default
    # Milvus Lite has no consistency levels to compare.
    assert run.consistency == {}
    assert sum(m.fastest for m in run.measurements) == 1
    assert all(m.p95_ms >= m.p50_ms > 0 and m.rss_mb == 123 for m in run.measurements)
    assert run.size == 2_000 and run.queries == 40
    assert any("inserted 2,000/2,000" in line for line in lines)
    table = "\n".join(vector_bench.table(run))
    assert "(project default)" in table and "IVF_FLAT nlist=256" in table


def test_build_parameters_reach_milvus_lite(milvus_uri):
    milvus = MilvusClient(uri=milvus_uri, timeout=60)
    name = f"bench_params_{os.getpid()}"
    try:
        vector_store._create_collection(milvus, name, 8, "FLAT", {})
        vector_bench.build_index(milvus, name, vector_bench.IndexSetting("IVF_FLAT", {"nlist": 7}, ()))
        assert milvus.describe_index(name, "embedding")["params"] == {"nlist": 7}
    finally:
        milvus.drop_collection(name)
        milvus.close()


def test_session_rss_counts_a_running_process():
    assert servers.session_rss_mb(os.getsid(0)) > 10
