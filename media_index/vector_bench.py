"""Milvus alone, measured: recall@k against exact search and single-query latency for candidate index settings.

The vectors are synthetic but clustered like face embeddings, so that the numbers say something about an archive
of faces rather than about uniform noise. The servers are started here, in a folder of their own: the archive's
Milvus is never touched. `manage.py benchmark_vectors` prints the results.
"""

import contextlib
import functools
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pymilvus import MilvusClient, MilvusException

from revsearch_site import processes

from . import vector_store

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

DIMENSION = 512
TOP_K = 20
RECALL_TARGET = 0.99
# Faces of recurring people: this many a person on average (sizes vary, exponentially), at every size, so a person's
# neighbourhood looks the same at 10k and at 1M and only the haystack grows.
FACES_PER_PERSON = 100
# The share of faces of people seen only once (strangers in the background), scattered between the others.
STRANGERS = 0.2
# Centres: every centre shares one direction with this weight, and the rest varies along axes of decaying
# strength (standard deviation j ** -0.5 along the j-th of a random basis), as real embeddings do not fill the sphere.
SHARED_DIRECTION = 0.5
SPECTRUM_POWER = 0.5
# Per-face noise, of a strength drawn for each face. Together: same person about 0.61-0.90 apart (L2), different
# people 1.18-1.43, a face's nearest other person about 1.05 (the CASIA-WebFace model on real faces: 0.61-0.83
# and 0.99-1.57); uniform random unit vectors would all be about 1.41 apart.
NOISE = (0.4, 0.9)
INSERT_BATCH = 5_000
# Queries run before the timed ones after every load: the first searches after a load are slow on Milvus Lite.
WARM_UP = 10
# The standalone server's health port is fixed: a second standalone (e.g. a test's) cannot start beside it.
STANDALONE_FIXED_PORT = 9091
SERVERS = ("lite", "standalone")
# Besides Bounded: Strong, the collection's level and so the app's; Session, which waits only for this client's writes.
CONSISTENCY_LEVELS = ("Strong", "Session")
SERVER_NAMES = {"lite": "Milvus Lite", "standalone": "Milvus standalone"}


@dataclass(frozen=True)
class FaceSet:
    """Synthetic unit-norm float32 vectors (N x 512) and held-out queries of the same people; labels say whose."""

    vectors: np.ndarray
    labels: np.ndarray
    queries: np.ndarray
    people: int


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


# 1. Synthetic faces.


@dataclass(frozen=True)
class FaceSpace:
    """Where synthetic people live: a direction all share, and a random basis for their decaying variation."""

    shared: np.ndarray
    basis: np.ndarray

    @classmethod
    def make(cls, rng: np.random.Generator, dimension: int = DIMENSION) -> "FaceSpace":
        shared = rng.normal(size=dimension)
        basis, _ = np.linalg.qr(rng.normal(size=(dimension, dimension)))
        return cls(shared / np.linalg.norm(shared), basis)

    def centres(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """Unit-norm person centres, as far apart as real people's faces are (see NOISE)."""
        dimension = len(self.shared)
        own = (rng.normal(size=(count, dimension)) * np.arange(1, dimension + 1) ** -SPECTRUM_POWER) @ self.basis
        centres = SHARED_DIRECTION * self.shared + own / np.linalg.norm(own, axis=1, keepdims=True)
        return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def faces_around(centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One unit-norm float32 face per centre: the centre plus isotropic noise of a random strength."""
    count, dimension = centres.shape
    strength = rng.uniform(*NOISE, size=(count, 1)) / np.sqrt(dimension)
    faces = centres + strength * rng.standard_normal(size=(count, dimension))
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    return faces.astype(np.float32)


def face_set(size: int, queries: int, seed: int = 0, chunk: int = 100_000) -> FaceSet:
    """size vectors and held-out queries, made in chunks so 1M vectors need 2 GB, not 4 GB of float64 at once.

    Labels are person numbers; -1 marks a stranger, a person with this one face.
    """
    rng = np.random.default_rng(seed)
    space = FaceSpace.make(rng)
    people = max(1, round(size * (1 - STRANGERS) / FACES_PER_PERSON))
    centres = space.centres(people, rng)
    weights = rng.exponential(size=people)
    weights /= weights.sum()
    labels = rng.choice(people, size=size, p=weights)
    labels[rng.random(size) < STRANGERS] = -1
    vectors = np.empty((size, DIMENSION), dtype=np.float32)
    for start in range(0, size, chunk):
        part = labels[start : start + chunk]
        rows = centres[np.maximum(part, 0)]
        strangers = part < 0
        rows[strangers] = space.centres(int(strangers.sum()), rng)
        vectors[start : start + chunk] = faces_around(rows, rng)
    # Queries are new faces of stored (recurring) people: near the data, never members of it.
    query_labels = rng.choice(people, size=queries, p=weights)
    return FaceSet(vectors, labels, faces_around(centres[query_labels], rng), people)


def distance_summary(faces: FaceSet, pairs: int = 20_000, seed: int = 1) -> dict:
    """Median and 5th-95th percentile L2 distances of same-person and different-person pairs, to compare with faces."""
    rng = np.random.default_rng(seed)
    order = np.argsort(faces.labels, kind="stable")
    # Same person: neighbours in label order that share a label.
    positions = np.flatnonzero((faces.labels[order[:-1]] == faces.labels[order[1:]]) & (faces.labels[order[1:]] >= 0))
    positions = rng.choice(positions, size=min(pairs, len(positions)), replace=False)
    same, partner = order[positions], order[positions + 1]
    first, second = rng.integers(0, len(faces.vectors), size=(2, pairs))
    different = (faces.labels[first] != faces.labels[second]) | (faces.labels[first] < 0)

    def spread(a: np.ndarray, b: np.ndarray) -> list[float]:
        if not len(a):
            return []
        distances = np.linalg.norm(faces.vectors[a] - faces.vectors[b], axis=1)
        return [round(float(value), 2) for value in np.percentile(distances, [5, 50, 95])]

    return {"same_person": spread(same, partner), "different_people": spread(first[different], second[different])}


# 2. Exact search and recall.


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 100_000) -> np.ndarray:
    """The ids of each query's true k nearest stored vectors, nearest first, by numpy brute force.

    Chunks keep the distance matrix small; the float32 shortlist is re-ranked in float64 so near-ties are exact.
    """
    shortlist = 2 * k
    best_ids = np.empty((len(queries), 0), dtype=np.int64)
    best_distances = np.empty((len(queries), 0), dtype=np.float32)
    query_norms = np.sum(queries**2, axis=1, keepdims=True)
    for start in range(0, len(vectors), chunk):
        block = vectors[start : start + chunk]
        distances = query_norms + np.sum(block**2, axis=1) - 2 * queries @ block.T
        take = min(shortlist, block.shape[0])
        nearest = np.argpartition(distances, take - 1, axis=1)[:, :take]
        best_ids = np.hstack([best_ids, nearest + start])
        best_distances = np.hstack([best_distances, np.take_along_axis(distances, nearest, axis=1)])
        keep = np.argsort(best_distances, axis=1)[:, :shortlist]
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
        best_distances = np.take_along_axis(best_distances, keep, axis=1)
    exact = np.stack([squared_distances(vectors, query, ids) for query, ids in zip(queries, best_ids, strict=True)])
    return np.take_along_axis(best_ids, np.argsort(exact, axis=1, kind="stable")[:, :k], axis=1)


def squared_distances(vectors: np.ndarray, query: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Squared L2 distances from one query to some stored vectors, in float64."""
    difference = vectors[ids].astype(np.float64) - query.astype(np.float64)
    return np.sum(difference**2, axis=1)


def recall_at_k(found: list[list[int]], exact: np.ndarray, vectors: np.ndarray, queries: np.ndarray) -> float:
    """Share of the true k nearest that a search returned, averaged over queries.

    A returned id as near as the true k-th (within 1e-6 relative) counts too: a tie is not a miss.
    """
    k = exact.shape[1]
    shares = []
    for ids, truth, query in zip(found, exact, queries, strict=True):
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        ids = ids[(ids >= 0) & (ids < len(vectors))]
        kth = squared_distances(vectors, query, truth[-1:])[0]
        near_enough = np.count_nonzero(squared_distances(vectors, query, ids) <= kth * (1 + 1e-6) + 1e-12)
        shares.append(min(near_enough, k) / k)
    return float(np.mean(shares))


# 3. The servers.


def session_rss_mb(session_id: int) -> float:
    """Resident memory of every process in a session, in MB: the server and what it started, from /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name may hold spaces and brackets: fields are counted after its closing bracket.
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == session_id:
                total += int((stat.parent / "statm").read_text().split()[1]) * page
    return total / 2**20


@contextlib.contextmanager
def running_server(kind: str, folder: Path, progress: Progress, attempts: int = 20) -> Iterator[processes.Process]:
    """A Milvus server of this kind on a free loopback port, with its data in folder, stopped afterwards.

    A standalone server cannot start while another one holds its fixed ports (the tests start one now and then):
    then this waits and tries again.
    """
    for attempt in range(1, attempts + 1):
        if kind == "standalone" and processes.port_open(STANDALONE_FIXED_PORT):
            progress(f"port {STANDALONE_FIXED_PORT} is taken (another Milvus standalone?); waiting 30 s")
            time.sleep(30)
            continue
        port = processes.free_port()
        maker = processes.milvus_standalone if kind == "standalone" else processes.milvus_lite
        server = maker(port, folder / f"{kind}-{attempt}").start(folder / f"{kind}-{attempt}.log")
        try:
            server.wait_ready(timeout=120)
        except RuntimeError as error:
            server.stop()
            progress(f"{SERVER_NAMES[kind]} did not start ({error}); trying again in 30 s")
            time.sleep(30)
            continue
        try:
            yield server
        finally:
            server.stop()
        return
    raise RuntimeError(f"{SERVER_NAMES[kind]} did not start in {attempts} attempts; see the logs in {folder}")


def connect(server: processes.Process) -> MilvusClient:
    """A client of the benchmark's own server; index builds over 1M vectors take many minutes."""
    return MilvusClient(uri=f"http://127.0.0.1:{server.ready_port}", timeout=3600)


# 4. The candidates.


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


# 5. Measuring.


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
            progress(f"starting {SERVER_NAMES[kind]} in {folder}")
            with running_server(kind, Path(folder), progress) as server:
                milvus, rss = connect(server), functools.partial(session_rss_mb, server.popen.pid)
                try:
                    for size in sizes:
                        started = time.perf_counter()
                        run = measure(kind, milvus, size, queries, progress, rss, settings, seed)
                        seconds = time.perf_counter() - started
                        logger.info("vector benchmark on %s at %d vectors took %.0f s", kind, size, seconds)
                        progress(f"{SERVER_NAMES[kind]}, {size:,} vectors: done in {seconds:.0f} s")
                        yield run
                finally:
                    milvus.close()


# 6. Reporting.


def describe(params: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items()) or "-"


def vectors_description() -> str:
    return (
        f"Synthetic face-like vectors: unit-norm float32, {DIMENSION}-d. {100 * (1 - STRANGERS):.0f}% are faces of"
        f" recurring people ({FACES_PER_PERSON} faces a person on average, exponentially distributed),"
        f" {100 * STRANGERS:.0f}% of strangers seen once. A face is its person's centre plus isotropic Gaussian noise"
        f" of norm {NOISE[0]}-{NOISE[1]}, normalised; centres share one direction (weight {SHARED_DIRECTION}) and"
        " vary along a random basis with"
        f" decaying spread (j^-{SPECTRUM_POWER}). Queries are new faces of recurring people, never stored themselves."
        " Exact answers by numpy brute force."
    )


def table(run: Run) -> list[str]:
    """The run as text lines: a header, one row per measurement, and the default at other consistency levels."""
    lines = [
        f"{SERVER_NAMES[run.server]} ({run.version}), {run.size:,} vectors ({run.people:,} recurring people),"
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
