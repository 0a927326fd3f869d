"""Milvus alone: the project's own index and search settings at archive sizes, on a server of the benchmark's own."""

import logging
from collections.abc import Callable

from benchmarks import vector_bench
from media_index import vector_store

logger = logging.getLogger(__name__)

Say = Callable[[str], None]


def milvus_latency(sizes: tuple[int, ...], server: str, say: Say, queries: int = 200) -> list[dict]:
    """The project's index and search settings on Milvus alone at each size (`benchmark_vectors` tries others)."""
    chosen = vector_bench.IndexSetting(
        vector_store.INDEX_TYPE,
        dict(vector_store.INDEX_PARAMS),
        (vector_store.search_params(vector_bench.TOP_K),),
    )
    runs = []
    for run in vector_bench.benchmark([server], list(sizes), queries, say, settings=[chosen]):
        measured = run.measurements[0]
        figures = {
            "server": run.server,
            "version": run.version,
            "vectors": run.size,
            "index": measured.index,
            "search": measured.search_params,
            "recall_at_20": measured.recall,
            "p50_ms": measured.p50_ms,
            "p95_ms": measured.p95_ms,
            "strong_consistency": run.consistency.get("Strong", {}),
            "insert_seconds": run.insert_seconds,
            "build_seconds": measured.build_seconds,
            "server_rss_mb": measured.rss_mb,
        }
        say(
            f"  Milvus {server} {run.version}, {run.size:,} vectors, {measured.index} {measured.search_params}:"
            f" recall@20 {measured.recall}, p50 {measured.p50_ms} ms, p95 {measured.p95_ms} ms"
        )
        runs.append(figures)
    return runs
