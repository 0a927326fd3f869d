"""Face vectors in Milvus: one row per Face, keyed by Face.id, searched by L2 distance.

pymilvus (and the pandas and gRPC it brings) is imported on first use, not with this module: every process of the
service imports this module when Django starts, and most management commands never reach Milvus.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

if TYPE_CHECKING:
    from pymilvus import MilvusClient

logger = logging.getLogger(__name__)

# Milvus answers at most this many results per query.
MAX_LIMIT = 16384
# Vectors read per query: 2,000 vectors of 512 floats are 4 MB, well under gRPC's 64 MB message limit.
VECTOR_PAGE = 2000
# The index every collection gets, and what a search asks for (vector_bench measures the alternatives).
INDEX_TYPE = "HNSW"
INDEX_PARAMS = {"M": 16, "efConstruction": 200}
# The key is asked for by name: Milvus 2.3 servers do not put it in the hit under the field's name.
OUTPUT_FIELDS = ["face_id", "asset_id", "timestamp"]
# gRPC keepalive as the server allows it. pymilvus pings every 10 s, also while no call runs; a gRPC server on its
# defaults, as Milvus Lite's is, takes no ping while no call runs and at most one per 5 minutes during one, and after
# three too early answers GOAWAY "too_many_pings" (logged at ERROR by every web, worker and watcher process, about
# 80 s into each idle spell). So: no pings while idle, and during a call one per 6 minutes. A Milvus server accepts
# pings every 5 s, idle or not, so these suit it too; a dead connection then shows at the next call, which retries.
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 360_000, "grpc.keepalive_permit_without_calls": False}
_client: MilvusClient | None = None
_client_lock = threading.Lock()


class VectorStoreUnavailable(RuntimeError):
    """Milvus could not be reached; the work can be retried later."""


@dataclass(frozen=True)
class FaceVector:
    """One face to store: a unit-norm float32 vector of the model's size; timestamp: seconds into a video, or 0."""

    face_id: int
    vector: np.ndarray
    asset_id: int
    kind: str
    timestamp: float = 0.0


@dataclass(frozen=True)
class Hit:
    """One search result: distance is the Euclidean (L2) distance between unit vectors, 0 to 2."""

    face_id: int
    asset_id: int
    distance: float
    timestamp: float


def client() -> MilvusClient:
    """One client per process, made on first use, with the collection ready."""
    global _client
    with _client_lock:
        if _client is None:
            from pymilvus import MilvusClient

            try:
                made = MilvusClient(
                    uri=settings.MILVUS_URI, token=settings.MILVUS_TOKEN, timeout=10, grpc_options=GRPC_OPTIONS
                )
                _ensure_collection(made)
            except Exception as error:
                raise VectorStoreUnavailable(
                    f"Milvus at {settings.MILVUS_URI} is not answering ({error}); start it, or set MILVUS_URI"
                ) from error
            _client = made
        return _client


def reset_client() -> None:
    """Forget the client, e.g. after the server restarted or in a forked child."""
    global _client
    with _client_lock:
        _client = None


def _ensure_collection(milvus: MilvusClient) -> None:
    if milvus.has_collection(settings.MILVUS_COLLECTION):
        milvus.load_collection(settings.MILVUS_COLLECTION)
        return
    from . import face_engine  # the configured model decides the vectors' size

    _create_collection(milvus, settings.MILVUS_COLLECTION, face_engine.dimension())


@contextlib.contextmanager
def scratch_collection(dimension: int) -> Iterator[str]:
    """A collection of its own, dropped afterwards: benchmarks and evaluations never touch the archive's."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    milvus = client()
    _call("create", _create_collection, milvus, name, dimension)
    try:
        yield name
    finally:
        _call("drop", milvus.drop_collection, name)


def _create_collection(
    milvus: MilvusClient, name: str, dimension: int, index_type: str = INDEX_TYPE, index_params: dict | None = None
) -> None:
    from pymilvus import DataType

    schema = milvus.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("face_id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("asset_id", DataType.INT64)
    schema.add_field("timestamp", DataType.FLOAT)
    schema.add_field("kind", DataType.VARCHAR, max_length=8)
    index = milvus.prepare_index_params()
    params = INDEX_PARAMS if index_params is None else index_params
    index.add_index("embedding", index_type=index_type, metric_type="L2", params=params)
    # Strong consistency: a search right after an asset is indexed must see its faces (standalone
    # Milvus defaults to Bounded, which does not).
    milvus.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    milvus.load_collection(name)
    logger.info("created Milvus collection %s at %s", name, settings.MILVUS_URI)


def _call(operation: str, function, *args, **kwargs):
    """Run one Milvus call; a lost connection becomes VectorStoreUnavailable so tasks can retry."""
    try:
        return function(*args, **kwargs)
    except VectorStoreUnavailable:
        raise
    except Exception as error:
        reset_client()
        raise VectorStoreUnavailable(f"Milvus {operation} failed at {settings.MILVUS_URI}: {error}") from error


def insert(faces: list[FaceVector], collection: str | None = None) -> None:
    """Store the faces of one asset."""
    if not faces:
        return
    rows = [
        {
            "face_id": face.face_id,
            "embedding": np.asarray(face.vector, dtype=np.float32).tolist(),
            "asset_id": face.asset_id,
            "timestamp": float(face.timestamp),
            "kind": face.kind,
        }
        for face in faces
    ]
    milvus = client()
    collection = collection or settings.MILVUS_COLLECTION
    # An upsert: a face id that a rolled-back transaction had used, and the database gave out again, replaces
    # the stale vector instead of standing beside it.
    # No flush here: Milvus logs every write before it answers, so it survives a restart (a Milvus Lite server
    # killed with SIGKILL kept every unflushed insert here), and Strong consistency makes it searchable at once. A
    # flush per asset would seal a tiny segment each time; the watcher flushes in batches (upkeep.VectorFlusher).
    _call("upsert", milvus.upsert, collection, rows)


def flush(collection: str | None = None) -> None:
    """Seal what was written into indexed segments (services.VectorFlusher says when and why)."""
    _call("flush", client().flush, collection or settings.MILVUS_COLLECTION)


def delete_asset(asset_id: int, after_face_id: int = 0) -> None:
    """Remove every vector of one asset, or only those with face ids above after_face_id."""
    _delete(f"asset_id == {int(asset_id)} and face_id > {int(after_face_id)}")


def _delete(filter_expression: str) -> None:
    """Remove the vectors the filter selects (logged by Milvus like an insert, so no flush)."""
    _call("delete", client().delete, settings.MILVUS_COLLECTION, filter=filter_expression)


def search(vector: np.ndarray, top_k: int, asset_id: int | None = None, kind: str | None = None) -> list[Hit]:
    """The top_k stored faces nearest to one vector (only of one asset, or one kind, when given), nearest first."""
    conditions = []
    if asset_id is not None:
        conditions.append(f"asset_id == {int(asset_id)}")
    if kind is not None:
        conditions.append(f'kind == "{kind}"' if kind in ("image", "video") else "false")
    return search_many([vector], top_k, " and ".join(conditions))[0]


def search_many(
    vectors: list[np.ndarray], top_k: int, filter_expression: str = "", collection: str | None = None
) -> list[list[Hit]]:
    """The top_k nearest stored faces for each of several vectors, in one request."""
    milvus = client()
    results = _call(
        "search",
        milvus.search,
        collection or settings.MILVUS_COLLECTION,
        data=[np.asarray(vector, dtype=np.float32).tolist() for vector in vectors],
        filter=filter_expression,
        limit=min(top_k, MAX_LIMIT),
        output_fields=OUTPUT_FIELDS,
        search_params={"metric_type": "L2", "params": search_params(top_k)},
        consistency_level=settings.MILVUS_SEARCH_CONSISTENCY,
    )
    # Milvus reports squared L2 distances; the square root is the Euclidean distance people expect.
    return [
        [
            Hit(
                face_id=int(hit["entity"]["face_id"]),
                asset_id=int(hit["entity"]["asset_id"]),
                distance=math.sqrt(max(float(hit["distance"]), 0.0)),
                timestamp=float(hit["entity"]["timestamp"]),
            )
            for hit in hits
        ]
        for hits in results
    ]


def search_params(top_k: int) -> dict:
    """The HNSW search breadth: at least the number of results asked for."""
    return {"ef": max(64, top_k)}


def stored_faces(asset_id: int | None = None) -> dict[int, int]:
    """Every stored face id with its asset id, or those of one asset, read in pages (for consistency checks)."""
    milvus, after = client(), -1
    stored: dict[int, int] = {}
    of_asset = "" if asset_id is None else f" and asset_id == {int(asset_id)}"
    while True:
        rows = _call(
            "query",
            milvus.query,
            settings.MILVUS_COLLECTION,
            filter=f"face_id > {after}{of_asset}",
            output_fields=["face_id", "asset_id"],
            limit=MAX_LIMIT,
        )
        if not rows:
            return stored
        stored |= {int(row["face_id"]): int(row["asset_id"]) for row in rows}
        after = max(stored)


def vectors_of(face_ids: list[int]) -> dict[int, np.ndarray]:
    """The stored vectors of these faces (those Milvus has), read in pages."""
    milvus, found = client(), dict[int, np.ndarray]()
    ordered = sorted(set(face_ids))
    for start in range(0, len(ordered), VECTOR_PAGE):
        rows = _call(
            "query",
            milvus.query,
            settings.MILVUS_COLLECTION,
            filter=f"face_id in {ordered[start : start + VECTOR_PAGE]}",
            output_fields=["face_id", "embedding"],
        )
        found |= {int(row["face_id"]): np.asarray(row["embedding"], dtype=np.float32) for row in rows}
    return found


def delete_faces(face_ids: list[int]) -> None:
    """Remove the vectors of these faces."""
    if face_ids:
        _delete(f"face_id in {sorted(set(face_ids))}")


def count(collection: str | None = None) -> int:
    """How many face vectors are stored."""
    milvus = client()
    rows = _call("count", milvus.query, collection or settings.MILVUS_COLLECTION, filter="", output_fields=["count(*)"])
    return int(rows[0]["count(*)"])


def ping() -> None:
    """Raise VectorStoreUnavailable unless Milvus answers."""
    _call("ping", client().has_collection, settings.MILVUS_COLLECTION)
