"""The soak: a fresh instance takes a drop of many photos at once while clients search; its figures and checks."""

import contextlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.test.utils import override_settings

from benchmarks.instance import CommandFailed, Instance, InstanceError, asset_count, unfinished
from benchmarks.search_clients import Client, Search, latency_summary, searching
from media_index import vector_store
from media_index.models import Asset
from revsearch_site import processes

logger = logging.getLogger(__name__)

# The status follower writes a line this often; the end of the load is known to within about twice this.
POLL_SECONDS = 0.25
PROGRESS_SECONDS = 10
# Give up waiting when the counts have not moved for this long.
STALL_SECONDS = 180


class SoakError(Exception):
    """The soak could not be set up (no photos, too few); nothing was measured."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    """What the soak measured; latencies in milliseconds, over the searches started during the load."""

    photos: int
    searchers: int
    workers: int
    cores: int = 0
    load_average: float = 0.0
    settled: int = 0
    faces: int = 0
    copy_seconds: float = 0.0
    seconds: float = 0.0
    searches: int = 0
    failed_searches: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    warm_latency_ms: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    home: str = ""

    @property
    def photos_per_second(self) -> float:
        return self.settled / self.seconds if self.seconds else 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def as_dict(self) -> dict:
        return asdict(self) | {"photos_per_second": round(self.photos_per_second, 2), "passed": self.passed}

    def lines(self) -> list[str]:
        statuses = ", ".join(f"{name} {value}" for name, value in self.statuses.items() if name != "faces")
        lines = [
            f"photos: {self.photos} dropped at once (copied in {self.copy_seconds:.1f} s), {self.settled} settled;"
            f" faces: {self.faces}",
            f"end to end: {self.seconds:.1f} s, {self.photos_per_second:.1f} photos/s with {self.workers} workers"
            f" on {self.cores} cores (load average {self.load_average:.2f} before the start)",
            f"searches during the load: {self.searches} by {self.searchers} clients, {self.failed_searches} failed;"
            f" latency (send to last byte of the result page) {_latencies(self.latency_ms)}",
            f"searches before the drop (warm, not counted above): {_latencies(self.warm_latency_ms)}",
            f"statuses: {statuses}",
        ]
        lines += [f"check {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}" for check in self.checks]
        lines.append("all checks passed" if self.passed else "SOME CHECKS FAILED")
        if self.home:
            lines.append(f"kept the instance's home: {self.home}")
        return lines


def _latencies(latency_ms: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.0f} ms" for name, value in latency_ms.items()) or "none"


def run_soak(
    photos: int = 2000,
    searchers: int = 5,
    data: Path | None = None,
    keep: bool = False,
    say: Callable[[str], None] = print,
) -> Report:
    """Drop photos into a fresh instance while clients search, then check that the index is whole.

    1. Pick the photos to drop, and query photos of the same people that are not dropped.
    2. Start a fresh instance in a temporary home; the clients sign in and search until each is warm.
    3. Copy every photo into the inbox at once; the clients keep searching.
    4. Wait until every photo has become an asset in a final status, saying how far it got every few seconds.
    5. Stop the clients; check files against assets, Face rows against Milvus, and check_index; stop the instance.
    """
    data = data or settings.DATA_DIR / "lfw"
    dropped, queries = pick_photos(data, photos)
    home = Path(tempfile.mkdtemp(prefix="revsearch-soak-")).resolve()
    report = Report(photos, searchers, settings.WORKER_CONCURRENCY, os.cpu_count() or 0, os.getloadavg()[0])
    instance = Instance(home, admin_password=secrets.token_urlsafe(16))
    say(f"soak: {photos} photos from {data}, {searchers} searching clients, instance in {home} at {instance.url}")
    try:
        instance.prepare().start()
        with searching(instance, queries, searchers) as clients:
            for client in clients:
                client.warm.wait(timeout=300)
            load_started = time.perf_counter()
            drop_photos(dropped, data, instance.inbox)
            report.copy_seconds = time.perf_counter() - load_started
            say(f"copied {photos} photos into {instance.inbox} in {report.copy_seconds:.1f} s")
            counts, load_ended = wait_until_settled(instance, photos, load_started, clients, say)
        report.seconds = load_ended - load_started
        report.settled = asset_count(counts) - unfinished(counts)
        searches = [search for client in clients for search in client.searches]
        during = [search for search in searches if load_started <= search.started <= load_ended]
        report.searches = len(during)
        report.failed_searches = sum(1 for search in during if search.error)
        report.latency_ms = latency_summary([search.seconds for search in during if not search.error])
        warm = [search for client in clients for search in client.searches[1:] if search.started < load_started]
        report.warm_latency_ms = latency_summary([search.seconds for search in warm if not search.error])
        report.checks = _check(instance, report, searches=during, files=_files(instance.inbox), expected=photos)
        report.faces = report.statuses.get("faces", 0)
    finally:
        try:
            instance.stop()
            report.checks.append(Check("the service stopped cleanly", True, "serve exited 0 and freed its ports"))
        except InstanceError as error:
            report.checks.append(Check("the service stopped cleanly", False, str(error).splitlines()[0]))
        # A soak that failed keeps its home, for the logs.
        if keep or not report.passed:
            report.home = str(home)
        else:
            shutil.rmtree(home, ignore_errors=True)
    return report


def pick_photos(folder: Path, count: int) -> tuple[list[Path], list[Path]]:
    """The first `count` photos of a Name/Name_0001.jpg folder; to search with, one more of each person who has one."""
    by_person: dict[str, list[Path]] = defaultdict(list)
    for photo in sorted(folder.glob("*/*.jpg")):
        by_person[photo.parent.name].append(photo)
    dropped, queries = [], []
    for person_photos in by_person.values():
        if len(dropped) >= count:
            break
        if len(person_photos) > 1:
            queries.append(person_photos.pop())
        dropped += person_photos[: count - len(dropped)]
    if len(dropped) < count:
        raise SoakError(
            f"only {len(dropped)} photos to drop under {folder} (want {count}; one photo of each person is kept back"
            " to search with): pass --data, a folder of Name/Name_0001.jpg photos such as LFW, or fewer --photos"
        )
    if not queries:  # no one has two photos: search with photos that were not dropped, or at worst dropped ones
        kept_out = set(dropped)
        queries = [p for ps in by_person.values() for p in ps if p not in kept_out][:100] or dropped[:100]
    return dropped, queries


def drop_photos(photos: list[Path], data: Path, inbox: Path) -> None:
    """Copy the photos into the inbox as fast as possible, keeping their Name/ folders."""
    for folder in {photo.parent for photo in photos}:
        (inbox / folder.relative_to(data)).mkdir(parents=True, exist_ok=True)
    for photo in photos:
        shutil.copyfile(photo, inbox / photo.relative_to(data))


def wait_until_settled(
    instance: Instance, expected: int, started: float, clients: list[Client], say: Callable[[str], None]
) -> tuple[dict[str, int], float]:
    """The counts once every photo is an asset in a final status (or the counts stalled), and when that was seen."""
    follower = processes.manage("status", "index_status", "--json", "--every", str(POLL_SECONDS), env=instance.env)
    lines = instance.home / "status.jsonl"
    follower.start(lines)
    counts: dict[str, int] = {}
    changed = next_progress = started
    try:
        while True:
            now = time.perf_counter()
            latest = _last_counts(lines)
            if latest != counts:
                counts, changed = latest, now
            if counts and asset_count(counts) >= expected and not unfinished(counts):
                return counts, now
            if not follower.running():
                raise InstanceError(f"index_status --every exited with {follower.popen.returncode}: see {lines}")
            if now - changed > STALL_SECONDS:
                say(f"nothing moved for {STALL_SECONDS} s: giving up waiting")
                return counts, now
            if now >= next_progress:
                say(_progress(counts, expected, now - started, clients, started))
                next_progress += PROGRESS_SECONDS
            time.sleep(POLL_SECONDS)
    finally:
        follower.stop()


def _last_counts(lines: Path) -> dict[str, int]:
    """The newest complete JSON line the follower wrote (its log lines, if any, are skipped)."""
    with contextlib.suppress(FileNotFoundError), lines.open("rb") as file:
        start = max(0, file.seek(0, 2) - 4096)
        file.seek(start)
        # From the middle of the file, the first line may be cut; the last may be still being written.
        for line in reversed(file.read().decode(errors="replace").splitlines()[1 if start else 0 :]):
            if line.startswith("{") and line.endswith("}"):
                return json.loads(line)
    return {}


def _progress(counts: dict[str, int], expected: int, elapsed: float, clients: list[Client], started: float) -> str:
    settled = asset_count(counts) - unfinished(counts) if counts else 0
    during = [s for client in clients for s in client.searches if s.started >= started]
    latency = latency_summary([s.seconds for s in during if not s.error])
    return (
        f"{elapsed:5.0f} s: {settled}/{expected} photos settled ({settled / max(elapsed, 1e-9):.1f}/s),"
        f" {counts.get('faces', 0)} faces; {len(during)} searches, {sum(1 for s in during if s.error)} failed,"
        f" p95 so far {latency.get('p95', 0):.0f} ms"
    )


def _files(inbox: Path) -> list[str]:
    return sorted(str(path) for path in inbox.rglob("*") if path.is_file())


def _check(instance: Instance, report: Report, searches: list[Search], files: list[str], expected: int) -> list[Check]:
    """Every file one asset, every asset settled, every face one vector, a consistent index, every search answered."""
    records = [json.loads(line) for line in instance.manage("index_status", "--assets", "--json").splitlines()]
    report.statuses = counts = instance.status()
    paths = Counter(record["path"] for record in records)
    twice = [path for path, seen in paths.items() if seen > 1]
    lost, strays = sorted(set(files) - set(paths)), sorted(set(paths) - set(files))
    checks = [
        Check(
            "every file became exactly one asset",
            len(files) == expected == len(records) and not (twice or lost or strays),
            f"{len(files)} files, {len(records)} assets, {len(twice)} paths twice"
            + "".join(f"; {name}: {', '.join(items[:3])}" for name, items in _named(twice, lost, strays) if items),
        )
    ]
    unsettled = {
        status.value: counts[status] for status in (*Asset.UNFINISHED, Asset.Status.MISSING) if counts.get(status)
    }
    checks.append(
        Check(
            "every asset in a final status",
            not unsettled,
            "none queued, processing or missing" if not unsettled else f"not settled: {unsettled}",
        )
    )
    failed = [record for record in records if record["status"] == "failed"]
    checks.append(
        Check(
            "no asset failed",
            not failed,
            "0 failed" if not failed else "; ".join(f"{r['path']}: {r['error']}" for r in failed[:3]),
        )
    )
    with vectors_at(instance.milvus_uri):
        vectors, face_ids = vector_store.count(), vector_store.stored_faces()
    checks.append(
        Check(
            "every face is exactly one vector",
            counts["faces"] == vectors == len(face_ids),
            f"{counts['faces']} Face rows, {vectors} vectors in Milvus, {len(face_ids)} distinct face ids",
        )
    )
    try:
        said = instance.manage("check_index").strip().splitlines()
        checks.append(Check("check_index", said[-1:] == ["the index is consistent"], "; ".join(said)))
    except CommandFailed as failure:
        checks.append(Check("check_index", False, "; ".join(failure.stdout.strip().splitlines()[:2])))
    checks.append(
        Check(
            "every search during the load answered",
            bool(searches) and not any(search.error for search in searches),
            f"{len(searches)} searches, {sum(1 for s in searches if s.error)} failed"
            + "".join(f"; {error}" for error in sorted({s.error for s in searches if s.error})[:3]),
        )
    )
    return checks


def _named(twice: list[str], lost: list[str], strays: list[str]) -> list[tuple[str, list[str]]]:
    return [("twice", twice), ("files without an asset", lost), ("assets without a file", strays)]


@contextlib.contextmanager
def vectors_at(milvus_uri: str) -> Iterator[None]:
    """media_index.vector_store, talking to the Milvus at milvus_uri instead of this process's own."""
    with override_settings(MILVUS_URI=milvus_uri):
        vector_store.reset_client()
        try:
            yield
        finally:
            vector_store.reset_client()
