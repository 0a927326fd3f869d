"""Milvus alone, measured: recall@k against exact search and single-query latency for candidate index settings.

The vectors are synthetic but clustered like face embeddings (synthetic_vectors). The servers are started here, in a
folder of their own: the archive's Milvus is never touched. `manage.py benchmark_vectors` prints the results.
"""

import contextlib
import functools
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pymilvus import MilvusClient, MilvusException

from benchmarks import servers
from benchmarks.synthetic_vectors import (
    DIMENSION,
    distance_summary,
    exact_neighbours,
    face_set,
    recall_at_k,
    vectors_description,
)
from media_index import vector_store
from revsearch_site import processes

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

TOP_K = 20
RECALL_TARGET = 0.99
INSERT_BATCH = 5_000
# Queries run before the timed ones after every load: the first searches after a load are slow on Milvus Lite.
WARM_UP = 10
SERVERS = tuple(servers.MILVUS_NAMES)
# Besides Bounded: Strong, the collection's level and so the app's; Session, which waits only for this client's writes.
CONSISTENCY_LEVELS = ("Strong", "Session")


@dataclass(frozen=True)
class IndexSetting:
    """One index build and the search parameters to try on it."""

    index_type: str
    build: dict
    searches: tuple[dict, ...]

    def label(self) -> str:
        return " ".join([self.index_type, *(f"{key}={value}" for key, value in self.build.items())])


@dataclass
class Measurement:
    """One index setting with one set of search parameters: latencies in ms, build in s, server RSS in MB."""

    index: str
    index_type: str
    build_params: dict
    search_params: dict
    recall: float
    p50_ms: float
    p95_ms: float
    build_seconds: float
    rss_mb: float
    default: bool = False
    meets_target: bool = False
    fastest: bool = False


@dataclass
class Run:
    """Every measurement on one server at one size, with what it cost to get there."""

    server: str
    version: str
    size: int
    people: int
    queries: int
    insert_seconds: float
    rss_mb_after_insert: float
    distances: dict
    measurements: list[Measurement] = field(default_factory=list)
    # The project's default setting at other consistency levels: Strong is the collection's, so the app's today.
    consistency: dict[str, dict] = field(default_factory=dict)


def connect(server: processes.Process) -> MilvusClient:
    """A client of the benchmark's own server; index builds over 1M vectors take many minutes."""
    return MilvusClient(uri=f"http://127.0.0.1:{server.ready_port}", timeout=3600)


# 1. The candidates.


def candidates(kind: str, size: int) -> list[IndexSetting]:
    """The index settings to measure on a server at a size: fewer above 100k, where each build takes minutes."""
    flat = IndexSetting("FLAT", {}, ({},))
    default = IndexSetting(vector_store.INDEX_TYPE, dict(vector_store.INDEX_PARAMS), _efs(20, 32, 64, 128, 256))
    # Every segment has lists of its own (segments hold up to 100k rows on Milvus Lite, about 250k on the standalone
    # server), so nlist follows the segment more than the collection (Milvus suggests about 4 x sqrt(rows)).
    nlist = 1024 if size > 20_000 else 128
    nprobes = [n for n in (4, 8, 16, 32, 64, 128) if n <= nlist // 2]
    if size <= 100_000:
        settings = [
            flat,
            default,
            IndexSetting("HNSW", {"M": 8, "efConstruction": 100}, _efs(64, 128, 256)),
            IndexSetting("HNSW", {"M": 16, "efConstruction": 100}, _efs(64, 128, 256)),
            IndexSetting("HNSW", {"M": 32, "efConstruction": 200}, _efs(32, 64, 128)),
            IndexSetting("IVF_FLAT", {"nlist": nlist}, tuple({"nprobe": n} for n in nprobes)),
            IndexSetting("IVF_SQ8", {"nlist": nlist}, tuple({"nprobe": n} for n in nprobes[-3:])),
        ]
        return settings + ([IndexSetting("AUTOINDEX", {}, ({}, {"ef": 128}))] if kind == "lite" else [])
    # Above 100k, chosen from the 100k results: the default with the breadths around its own, and IVF_FLAT, the
    # other kind that met the target there (IVF_SQ8 stops near 0.994: it saves memory, not time). Each build over
    # 1M takes 5-8 minutes on the standalone server.
    default = IndexSetting(default.index_type, default.build, _efs(32, 64, 128))
    if kind == "lite":
        # Milvus Lite's every search walks all rows in Python (about 0.4 ms per 1,000), whatever the index: one
        # build and two breadths show it. Exact search would take seconds a query; recall comes from numpy anyway.
        return [IndexSetting(default.index_type, default.build, _efs(64, 128))]
    return [flat, default, IndexSetting("IVF_FLAT", {"nlist": nlist}, ({"nprobe": 16}, {"nprobe": 32}))]


def _efs(*values: int) -> tuple[dict, ...]:
    return tuple({"ef": value} for value in values)


# 2. Measuring.


def insert_vectors(milvus: MilvusClient, collection: str, vectors: np.ndarray, progress: Progress) -> float:
    """Insert in batches with progress lines, flush and compact; returns the seconds taken."""
    started = time.perf_counter()
    step = max(INSERT_BATCH, len(vectors) // 10 // INSERT_BATCH * INSERT_BATCH)
    for start in range(0, len(vectors), INSERT_BATCH):
        rows = [
            {"face_id": start + i, "embedding": vector, "asset_id": (start + i) // 4, "timestamp": 0.0, "kind": "image"}
            for i, vector in enumerate(vectors[start : start + INSERT_BATCH])
        ]
        milvus.insert(collection, rows)
        done = start + len(rows)
        if done % step == 0 or done == len(vectors):
            rate = done / (time.perf_counter() - started)
            progress(f"  inserted {done:,}/{len(vectors):,} ({rate:,.0f} vectors/s)")
    milvus.flush(collection)
    # Merge small segments now, so that no compaction (and index rebuild) runs while latencies are measured; a
    # server without manual compaction just goes on.
    with contextlib.suppress(MilvusException):
        job = milvus.compact(collection)
        deadline = time.monotonic() + 600
        while milvus.get_compaction_state(job) != "Completed" and time.monotonic() < deadline:
            time.sleep(1)
    return time.perf_counter() - started


def build_index(milvus: MilvusClient, collection: str, setting: IndexSetting) -> float:
    """Replace the collection's index with this one and load it; returns the seconds from create to loaded."""
    milvus.release_collection(collection)
    milvus.drop_index(collection, "embedding")
    index = milvus.prepare_index_params()
    # pymilvus 3 sends build parameters as keys of their own, which Milvus Lite 3.2 ignores (it reads a JSON "params"
    # key, and builds with its defaults without one): both forms go, and the standalone server reads the keys.
    params = {**setting.build, "params": setting.build} if setting.build else {}
    index.add_index("embedding", index_type=setting.index_type, metric_type="L2", params=params)
    started = time.perf_counter()
    milvus.create_index(collection, index, timeout=3600)
    # The standalone server builds in the background; Milvus Lite has built by the time create_index returns.
    deadline = time.monotonic() + 3600
    while not index_built(milvus, collection):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {setting.label()} index was not built within an hour")
        time.sleep(0.5)
    milvus.load_collection(collection, timeout=3600)
    return time.perf_counter() - started


def index_built(milvus: MilvusClient, collection: str) -> bool:
    state = milvus.describe_index(collection, "embedding")
    return state.get("state") == "Finished" and not state.get("pending_index_rows", 0)


def timed_searches(
    milvus: MilvusClient, collection: str, queries: np.ndarray, params: dict, consistency: str = "Bounded"
) -> tuple[list[list[int]], list[float]]:
    """One top-k query at a time, as a user's search asks; returns the ids found and each query's milliseconds.

    Bounded consistency measures the query alone: the server does not wait until it has seen the latest writes.
    """
    found, latencies = [], []
    for query in queries:
        started = time.perf_counter()
        hits = milvus.search(
            collection,
            data=[query.tolist()],
            limit=TOP_K,
            output_fields=vector_store.OUTPUT_FIELDS,
            search_params={"metric_type": "L2", "params": params},
            consistency_level=consistency,
        )[0]
        latencies.append(1000 * (time.perf_counter() - started))
        found.append([int(hit["entity"]["face_id"]) for hit in hits])
    return found, latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(
    kind: str,
    milvus: MilvusClient,
    size: int,
    queries: int,
    progress: Progress,
    rss_mb: Callable[[], float],
    settings: list[IndexSetting] | None = None,
    seed: int = 0,
) -> Run:
    """Every candidate setting on one server at one size, in a scratch collection dropped afterwards.

    1. Make the vectors and queries, and the exact answers by numpy.
    2. Insert into a collection with the project's schema (a FLAT index, cheap to keep up while inserting).
    3. For each index: build it and load; for each search setting: warm up, then time single queries.
    4. Mark the settings that meet the recall target, the fastest of those, and the project's default.
    """
    started = time.perf_counter()
    faces = face_set(size, queries + WARM_UP, seed)
    warm_up, measured = faces.queries[:WARM_UP], faces.queries[WARM_UP:]
    exact = exact_neighbours(faces.vectors, measured, TOP_K)
    distances = distance_summary(faces)
    progress(
        f"{size:,} vectors ({faces.people:,} recurring people) made, with exact answers, in"
        f" {time.perf_counter() - started:.1f} s (L2 same person {distances['same_person']},"
        f" different people {distances['different_people']})"
    )
    collection = f"bench_{size}_{uuid.uuid4().hex[:8]}"
    vector_store._create_collection(milvus, collection, DIMENSION, "FLAT", {})
    try:
        insert_seconds = insert_vectors(milvus, collection, faces.vectors, progress)
        run = Run(
            server=kind,
            version=str(milvus.get_server_version()),
            size=size,
            people=faces.people,
            queries=len(measured),
            insert_seconds=round(insert_seconds, 1),
            rss_mb_after_insert=round(rss_mb()),
            distances=distances,
        )
        progress(
            f"  inserted, flushed and compacted in {insert_seconds:.1f} s; server RSS {run.rss_mb_after_insert} MB"
        )
        for setting in settings or candidates(kind, size):
            progress(f"  building {setting.label()} ...")
            build_seconds = build_index(milvus, collection, setting)
            rss = rss_mb()
            progress(f"  built and loaded in {build_seconds:.1f} s; server RSS {rss:,.0f} MB")
            for params in setting.searches:
                timed_searches(milvus, collection, warm_up, params)
                found, latencies = timed_searches(milvus, collection, measured, params)
                result = Measurement(
                    index=setting.label(),
                    index_type=setting.index_type,
                    build_params=setting.build,
                    search_params=params,
                    recall=round(recall_at_k(found, exact, faces.vectors, measured), 4),
                    p50_ms=round(statistics.median(latencies), 2),
                    p95_ms=round(percentile(latencies, 0.95), 2),
                    build_seconds=round(build_seconds, 1),
                    rss_mb=round(rss),
                    default=is_default(setting, params),
                )
                run.measurements.append(result)
                progress(f"    {describe(params)}: recall@{TOP_K} {result.recall:.4f}, p50 {result.p50_ms:.1f} ms")
                # Milvus Lite has no consistency levels: every read sees every acknowledged write.
                if result.default and kind == "standalone":
                    for level in CONSISTENCY_LEVELS:
                        found, latencies = timed_searches(milvus, collection, measured, params, level)
                        run.consistency[level] = {
                            "p50_ms": round(statistics.median(latencies), 2),
                            "p95_ms": round(percentile(latencies, 0.95), 2),
                            "recall": round(recall_at_k(found, exact, faces.vectors, measured), 4),
                        }
        mark(run)
        return run
    finally:
        milvus.drop_collection(collection)


def is_default(setting: IndexSetting, params: dict) -> bool:
    """Whether this is what the app builds and asks for (vector_store's index, and its search for top 20)."""
    return (
        setting.index_type == vector_store.INDEX_TYPE
        and setting.build == vector_store.INDEX_PARAMS
        and params == vector_store.search_params(TOP_K)
    )


def mark(run: Run) -> None:
    """Flag the measurements that meet the recall target, and the fastest (lowest p50) among them."""
    meeting = [m for m in run.measurements if m.recall >= RECALL_TARGET]
    for measurement in meeting:
        measurement.meets_target = True
    if meeting:
        min(meeting, key=lambda m: (m.p50_ms, m.p95_ms)).fastest = True


def benchmark(
    servers: list[str],
    sizes: list[int],
    queries: int,
    progress: Progress,
    seed: int = 0,
    settings: list[IndexSetting] | None = None,
) -> Iterator[Run]:
    """Start each server in a temporary folder, measure every size on it, stop it; yields each run when done.

    settings: the index settings to measure (default: the candidates for each server and size)."""
    with tempfile.TemporaryDirectory(prefix="revsearch-vector-bench-") as folder:
        for kind in servers:
            progress(f"starting {servers.MILVUS_NAMES[kind]} in {folder}")
            with servers.running_milvus(kind, Path(folder), progress) as server:
                milvus, rss = connect(server), functools.partial(servers.session_rss_mb, server.popen.pid)
                try:
                    for size in sizes:
                        started = time.perf_counter()
                        run = measure(kind, milvus, size, queries, progress, rss, settings, seed)
                        seconds = time.perf_counter() - started
                        logger.info("vector benchmark on %s at %d vectors took %.0f s", kind, size, seconds)
                        progress(f"{servers.MILVUS_NAMES[kind]}, {size:,} vectors: done in {seconds:.0f} s")
                        yield run
                finally:
                    milvus.close()


# 3. Reporting.


def describe(params: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items()) or "-"


def table(run: Run) -> list[str]:
    """The run as text lines: a header, one row per measurement, and the default at other consistency levels."""
    lines = [
        f"{servers.MILVUS_NAMES[run.server]} ({run.version}), {run.size:,} vectors ({run.people:,} recurring people),"
        f" {run.queries} single top-{TOP_K} queries; inserted, flushed and compacted in {run.insert_seconds:.0f} s,"
        f" server RSS {run.rss_mb_after_insert:,.0f} MB",
        f"  same person L2 (5th/50th/95th pct) {run.distances['same_person']},"
        f" different people {run.distances['different_people']}",
        f"  {'index':<31} {'search':<11} {'recall@20':>9} {'p50 ms':>8} {'p95 ms':>8} {'build s':>8} {'RSS MB':>8}",
    ]
    for m in run.measurements:
        notes = " ".join(
            note
            for note, on in (
                (f">={RECALL_TARGET}", m.meets_target),
                ("FASTEST", m.fastest),
                ("(project default)", m.default),
            )
            if on
        )
        lines.append(
            f"  {m.index:<31} {describe(m.search_params):<11} {m.recall:>9.4f} {m.p50_ms:>8.1f} {m.p95_ms:>8.1f}"
            f" {m.build_seconds:>8.1f} {m.rss_mb:>8,.0f}  {notes}".rstrip()
        )
    for level, figures in run.consistency.items():
        lines.append(
            f"  the project default with {level} consistency{' (the app today)' if level == 'Strong' else ''}: p50"
            f" {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, recall {figures['recall']:.4f}"
        )
    if run.consistency:
        lines.append("  (rows above: Bounded consistency, the query alone)")
    return lines


def as_dict(runs: list[Run], queries: int) -> dict:
    return {
        "vectors": vectors_description(),
        "top_k": TOP_K,
        "recall_target": RECALL_TARGET,
        "queries": queries,
        "latency": "single queries one after another from one client, Bounded consistency, after warm-up",
        "runs": [asdict(run) for run in runs],
    }
