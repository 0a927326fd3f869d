"""`manage.py benchmark`: how fast this machine indexes and searches, measured the way a user meets it.

Every figure comes from a fresh service in a temporary home (`Instance`, as `make run` runs it), from this process
doing a worker's work in-process, or from Milvus servers of the benchmark's own: the archive is never touched.
"""

import contextlib
import io
import itertools
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import PIL.Image
from django.conf import settings

from media_index import calibration, face_engine, services, soak, vector_bench, vector_store, video
from revsearch_site.instance import Instance, InstanceError

logger = logging.getLogger(__name__)

Say = Callable[[str], None]

SECTIONS = ("stages", "photos", "search", "video", "milvus", "versus")
DATA = settings.BASE_DIR.parent / "shared" / "data"
VIDEOS = {
    "360p": DATA / "face_recognition" / "examples" / "short_hamilton_clip.mp4",
    "1080p": DATA / "facenet-pytorch" / "examples" / "video.mp4",
}
# A query photo of about one megapixel: LFW's 250x250 photos scaled up to this side.
QUERY_SIDE = 1000
STAGE_PHOTOS = 200
WARM_SEARCHES = 3
SYNTHETIC_PATH = "/synthetic-benchmark-faces"
FACE_RECOGNITION_TOLERANCE = 0.6  # the CLI's default
# face_recognition's CLI prints "path,name[,distance]" for each face, or "path,unknown_person|no_persons_found".
CLI_LINE = re.compile(r"^(?P<path>.+?),(?P<name>[^,]+)(?:,(?P<distance>[0-9.]+|None))?$")


@dataclass
class ProcessFigures:
    """One process of the service: its peak resident memory and the CPU it used while photos were indexed."""

    name: str
    pid: int
    peak_rss_mb: float
    cpu_seconds: float


@dataclass
class Report:
    machine: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    photos: list[dict] = field(default_factory=list)
    search: dict = field(default_factory=dict)
    video: list[dict] = field(default_factory=list)
    milvus: list[dict] = field(default_factory=list)
    versus: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def machine() -> dict:
    """What the figures were measured on."""
    cpuinfo = _read("/proc/cpuinfo").splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown CPU")
    memory_kb = int(next((line.split()[1] for line in _read("/proc/meminfo").splitlines() if "MemTotal" in line), 0))
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": sys.version.split()[0],
        "torch_threads": settings.TORCH_THREADS,
        "face_model": face_engine.model_name(),
    }


def run(
    sections: tuple[str, ...] = SECTIONS,
    photos: int = 1000,
    workers: tuple[int, ...] = (1, 2),
    search_faces: int = 100_000,
    searches: int = 50,
    vector_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000),
    vector_server: str = "standalone",
    lfw: Path = DATA / "lfw",
    say: Say = print,
) -> Report:
    """Every section asked for, in an order that keeps each measurement alone on the machine."""
    started = time.perf_counter()
    report = Report(machine=machine())
    dropped, queries = soak.pick_photos(lfw, photos)
    if "stages" in sections:
        report.stages = stage_times(dropped[:STAGE_PHOTOS], say)
    if "versus" in sections:
        report.versus = versus_face_recognition(lfw, say)
    if "video" in sections:
        report.video = [video_speed(label, path, say) for label, path in VIDEOS.items()]
    if {"photos", "search"} & set(sections):
        counts = workers if "photos" in sections else workers[-1:]
        for count in counts:
            last = count == counts[-1]
            then = (lambda instance: search_latency(instance, queries, search_faces, searches, say)) if last else None
            figures, search = end_to_end(dropped, lfw, count, say, then=then if "search" in sections else None)
            if "photos" in sections:
                report.photos.append(figures)
            if search:
                report.search = search
    if "milvus" in sections:
        report.milvus = milvus_latency(vector_sizes, vector_server, say)
    report.seconds = round(time.perf_counter() - started, 1)
    return report


# 1. A worker's stages, in this process.


def stage_times(photos: list[Path], say: Say) -> dict:
    """Milliseconds a photo spends in each stage of indexing, one photo at a time as a worker does it.

    Vectors go to a scratch collection on a Milvus Lite server of the benchmark's own."""
    face_engine.load()
    totals = dict.fromkeys(("decode", "detect", "embed", "insert"), 0.0)
    faces = 0
    with _milvus_lite() as _, vector_store.scratch_collection(face_engine.dimension()) as collection:
        next_id = 1
        for number, photo in enumerate(photos, start=1):
            started = time.perf_counter()
            image = services.open_photo(photo)
            decoded = time.perf_counter()
            detections = face_engine.detect_faces([image])
            detected = time.perf_counter()
            found = face_engine.embed_faces([image], detections)[0]
            embedded = time.perf_counter()
            vector_store.insert(
                [vector_store.FaceVector(next_id + i, face.embedding, number, "image") for i, face in enumerate(found)],
                collection,
            )
            inserted = time.perf_counter()
            for stage, seconds in zip(
                totals, (decoded - started, detected - decoded, embedded - detected, inserted - embedded), strict=True
            ):
                totals[stage] += seconds
            faces += len(found)
            next_id += len(found)
    per_photo = {stage: round(1000 * seconds / len(photos), 1) for stage, seconds in totals.items()}
    total = sum(totals.values())
    figures = {
        "photos": len(photos),
        "faces": faces,
        "ms_per_photo": per_photo,
        "embed_ms_per_face": round(1000 * totals["embed"] / max(faces, 1), 1),
        "photos_per_second": round(len(photos) / total, 2),
        "torch_threads": settings.TORCH_THREADS,
    }
    say(
        f"stages, one process, {settings.TORCH_THREADS} torch thread(s), {len(photos)} LFW photos ({faces} faces): "
        + ", ".join(f"{stage} {ms} ms" for stage, ms in per_photo.items())
        + f" a photo = {figures['photos_per_second']} photos/s"
    )
    return figures


@contextlib.contextmanager
def _milvus_lite() -> Iterator[None]:
    """vector_store talking to a Milvus Lite server of its own in a temporary folder."""
    with (
        tempfile.TemporaryDirectory(prefix="revsearch-benchmark-milvus-") as folder,
        vector_bench.running_server("lite", Path(folder), logger.info) as server,
        soak.vectors_at(f"http://127.0.0.1:{server.ready_port}"),
    ):
        yield


# 2. Photos end to end.


def end_to_end(
    photos: list[Path], data: Path, workers: int, say: Say, then: Callable[[Instance], dict] | None = None
) -> tuple[dict, dict]:
    """Photos per second from the copy into the inbox to the last one searchable, on a fresh service.

    Also the peak memory of each of its processes, and the CPU seconds each used while the photos went through,
    which say where the time goes. `then` runs on the filled service before it stops (the search section)."""
    home = Path(tempfile.mkdtemp(prefix="revsearch-benchmark-")).resolve()
    instance = Instance(home, admin_password=secrets.token_urlsafe(16), workers=workers)
    say(f"photos end to end: {len(photos)} LFW photos, {workers} worker process(es), service in {home}")
    try:
        instance.prepare().start()
        before = {process.pid: process.cpu_seconds for process in service_processes(instance.serve.pid)}
        started = time.perf_counter()
        soak.drop_photos(photos, data, instance.inbox)
        counts, ended = soak.wait_until_settled(instance, len(photos), started, [], say)
        seconds = ended - started
        used = service_processes(instance.serve.pid)
        for process in used:
            process.cpu_seconds = round(process.cpu_seconds - before.get(process.pid, 0.0), 1)
        after = then(instance) if then is not None else {}
        peaks = {process.pid: process.peak_rss_mb for process in service_processes(instance.serve.pid)}
        for process in used:
            process.peak_rss_mb = peaks.get(process.pid, process.peak_rss_mb)
    finally:
        try:
            instance.stop()
        except InstanceError as error:
            say(f"the service did not stop cleanly: {error}")
        shutil.rmtree(home, ignore_errors=True)
    figures = {
        "workers": workers,
        "photos": len(photos),
        "faces": counts.get("faces", 0),
        "statuses": {name: value for name, value in counts.items() if name != "faces"},
        "seconds": round(seconds, 1),
        "photos_per_second": round(len(photos) / seconds, 2),
        "processes": [asdict(process) for process in used],
    }
    say(
        f"  {len(photos)} photos in {seconds:.1f} s = {figures['photos_per_second']} photos/s with {workers}"
        f" worker process(es); CPU seconds while indexing: "
        + ", ".join(f"{process.name} {process.cpu_seconds}" for process in used if process.cpu_seconds >= 0.5)
    )
    return figures, after


def service_processes(root: int) -> list[ProcessFigures]:
    """Every process under `root` (serve) with its peak memory (VmHWM) and CPU seconds so far, from /proc."""
    parents, names = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
            names[int(stat.parent.name)] = fields
    under, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        under.append(pid)
        frontier += [child for child, parent in parents.items() if parent == pid]
    ticks = os.sysconf("SC_CLK_TCK")
    found = []
    for pid in under:
        fields = names.get(pid)
        if fields is None:
            continue
        with contextlib.suppress(OSError, ValueError):
            status = _read(f"/proc/{pid}/status")
            peak_kb = int(next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")), 0))
            cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime and stime
            found.append(ProcessFigures(process_name(pid, parents), pid, round(peak_kb / 1024, 1), round(cpu, 1)))
    return found


def process_name(pid: int, parents: dict[int, int]) -> str:
    """A short name for a service process: what it runs, and whether it is a pool child of the same program."""
    argv = _read(f"/proc/{pid}/cmdline").split("\0")
    words = " ".join(argv)
    for marker, name in (
        ("celery", "celery worker"),
        ("gunicorn", "web (gunicorn)"),
        ("redis-server", "redis"),
        ("milvus", "milvus"),
        (" watch", "watcher"),
        (" serve", "serve"),
        ("index_status", "status follower"),
    ):
        if marker in words:
            parent_words = _read(f"/proc/{parents.get(pid, 0)}/cmdline").replace("\0", " ")
            return f"{name} child" if marker in parent_words and marker != " serve" else name
    return Path(argv[0]).name if argv and argv[0] else f"pid {pid}"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


# 3. Search end to end.


def search_latency(instance: Instance, queries: list[Path], faces: int, count: int, say: Say) -> dict:
    """Upload-to-page latency of one-megapixel query photos, one at a time, with `faces` faces indexed.

    The real faces of the photo run are topped up with synthetic ones (`manage.py add_synthetic_faces`)."""
    indexed = instance.status().get("faces", 0)
    if faces > indexed:
        say(f"search: adding {faces - indexed:,} synthetic faces to the {indexed:,} indexed")
        instance.manage("add_synthetic_faces", str(faces - indexed), timeout=3600)
    settled_in = wait_until_quiet(instance, "milvus")
    say(f"  Milvus was busy for {settled_in:.0f} s after the load (Milvus Lite indexes what was flushed)")
    photos = [(path.name, megapixel_jpeg(path)) for path in itertools.islice(itertools.cycle(queries), count)]
    session = instance.signed_in()
    session.get(f"{instance.url}/", timeout=30)
    for name, photo in photos[:WARM_SEARCHES]:
        soak.upload_search(session, instance.url, name, photo)
    done = [soak.upload_search(session, instance.url, name, photo) for name, photo in photos]
    failed = [search.error for search in done if search.error]
    latency = soak.latency_summary([search.seconds for search in done if not search.error])
    figures = {
        "faces": instance.status().get("faces", 0),
        "query_pixels": f"{QUERY_SIDE}x{QUERY_SIDE}",
        "milvus_busy_seconds_after_load": round(settled_in, 1),
        "searches": len(done),
        "failed": len(failed),
        "latency_ms": latency,
    }
    say(
        f"  {len(done)} searches with {QUERY_SIDE}x{QUERY_SIDE} photos over {figures['faces']:,} faces, upload to"
        f" page: p50 {latency.get('p50', 0):.0f} ms, p95 {latency.get('p95', 0):.0f} ms, {len(failed)} failed"
        + (f" (first: {failed[0]})" if failed else "")
    )
    return figures


def wait_until_quiet(instance: Instance, name: str, quiet: float = 0.05, every: float = 3.0, limit: float = 600.0):
    """Wait until the service's `name` processes use under `quiet` of a core; returns the seconds waited.

    Searches in the half minute after 100k faces were flushed took 300 ms instead of 40 (Milvus Lite works on
    them in the background): latency is measured once that is done, and how long it took is reported."""
    started = time.monotonic()

    def used() -> float:
        return sum(p.cpu_seconds for p in service_processes(instance.serve.pid) if p.name.startswith(name))

    before = used()
    while time.monotonic() - started < limit:
        time.sleep(every)
        now = used()
        if now - before < quiet * every:
            break
        before = now
    return time.monotonic() - started


def megapixel_jpeg(path: Path) -> bytes:
    with PIL.Image.open(path) as image:
        scaled = image.convert("RGB").resize((QUERY_SIDE, QUERY_SIDE), PIL.Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    scaled.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def add_synthetic_faces(count: int, batch: int = 10_000, say: Say = print) -> int:
    """Face rows and vectors of made-up people, so that searches can be timed over a large archive.

    They belong to assets under SYNTHETIC_PATH (four faces each) and share one grey crop, so result pages render."""
    from media_index.models import Asset, Face

    crop_name = "crops/synthetic.jpg"
    crop_path = Path(settings.MEDIA_ROOT) / crop_name
    crop_path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.new("RGB", (face_engine.CROP_SIZE,) * 2, "grey").save(crop_path, "JPEG")
    vectors = vector_bench.face_set(count, 0, seed=int(time.time())).vectors
    model_name = face_engine.model_name()
    made = 0
    for start in range(0, count, batch):
        chunk = vectors[start : start + batch]
        assets = Asset.objects.bulk_create(
            Asset(
                path=f"{SYNTHETIC_PATH}/{secrets.token_hex(8)}.jpg",
                sha256=secrets.token_hex(32),
                kind=Asset.Kind.IMAGE,
                size=0,
                mtime=0.0,
                status=Asset.Status.INDEXED,
                model_name=model_name,
                preview=crop_name,
                width=face_engine.CROP_SIZE,
                height=face_engine.CROP_SIZE,
            )
            for _ in range(0, len(chunk), 4)
        )
        faces = Face.objects.bulk_create(
            Face(
                asset=assets[i // 4], left=0, top=0, right=100, bottom=100, probability=1.0, crop=crop_name,
                model_name=model_name,
            )
            for i in range(len(chunk))
        )  # fmt: skip
        vector_store.insert(
            [
                vector_store.FaceVector(face.id, vector, face.asset_id, "image")
                for face, vector in zip(faces, chunk, strict=True)
            ]
        )
        made += len(faces)
        say(f"added {made:,}/{count:,} synthetic faces")
    vector_store.flush()  # as the watcher would within seconds
    return made


# 4. Video.


def video_speed(label: str, path: Path, say: Say, repeat: int = 3, fps: float | None = None) -> dict:
    """Seconds of video a worker process gets through per second: sample, decode, detect, embed (best of repeat)."""
    face_engine.load()
    info = video.probe(path)
    fps = fps or settings.VIDEO_SAMPLE_FPS
    best = None
    for _ in range(repeat):
        started = time.perf_counter()
        frames = faces = 0
        sampled = video.sample_frames(path, info, fps)
        while chunk := list(itertools.islice(sampled, settings.VIDEO_CHUNK_FRAMES)):
            faces += sum(map(len, face_engine.find_faces_batch([frame.image for frame in chunk])))
            frames += len(chunk)
        seconds = time.perf_counter() - started
        best = min(best or (seconds, frames, faces), (seconds, frames, faces))
    seconds, frames, faces = best
    figures = {
        "label": label,
        "file": path.name,
        "size": f"{info.width}x{info.height}",
        "video_seconds": round(info.duration, 2),
        "sample_fps": fps,
        "frames": frames,
        "faces": faces,
        "seconds": round(seconds, 2),
        "realtime_factor": round(info.duration / seconds, 1),
        "torch_threads": settings.TORCH_THREADS,
    }
    say(
        f"video {label}: {path.name} ({info.width}x{info.height}, {info.duration:.1f} s, {frames} frames at {fps:g}/s,"
        f" {faces} faces) in {seconds:.2f} s = {figures['realtime_factor']}x real time"
    )
    return figures


# 5. Milvus alone.


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


# 6. Side by side with face_recognition.


def versus_face_recognition(lfw: Path, say: Say, people: int = 100, per_person: int = 4, strangers: int = 50) -> dict:
    """The same folder indexed by this project and by face_recognition's CLI, then labelled by the same queries.

    One known photo of each of `people` people is the query; the folder holds up to `per_person` other photos of
    each, and `strangers`' photos (people with one photo), whose right answer is "unknown". Each tool names for a
    photo the known person nearest to any face in it, within its own threshold; accuracy is the share named right.
    Both run on one core: face_recognition with --cpus 1, this project in this process with its torch threads."""
    known, unknown, truth = versus_photos(lfw, people, per_person, strangers)
    with tempfile.TemporaryDirectory(prefix="revsearch-versus-") as folder:
        known_dir, unknown_dir = Path(folder) / "known", Path(folder) / "unknown"
        known_dir.mkdir()
        unknown_dir.mkdir()
        for name, photo in known.items():
            shutil.copyfile(photo, known_dir / f"{name}.jpg")
        for photo in unknown:
            shutil.copyfile(photo, unknown_dir / photo.name)
        say(f"versus face_recognition: {len(known)} known people, {len(unknown)} photos to label")
        ours = _ours(known_dir, unknown_dir, truth)
        say(
            f"  this project: {ours['seconds']} s, accuracy {ours['accuracy']} ({ours['wrong_person']} wrong person,"
            f" {ours['missed']} missed, {ours['false_match']} strangers matched)"
        )
        theirs = _face_recognition_cli(known_dir, unknown_dir, truth)
        say(
            f"  face_recognition: {theirs['seconds']} s, accuracy {theirs['accuracy']} ({theirs['wrong_person']} wrong"
            f" person, {theirs['missed']} missed, {theirs['false_match']} strangers matched)"
        )
    figures = {
        "known_people": len(known),
        "photos": len(unknown),
        "ours": ours,
        "face_recognition": theirs,
        "time_ratio": round(theirs["seconds"] / ours["seconds"], 2),
        "accuracy_ratio": round(ours["accuracy"] / max(theirs["accuracy"], 1e-9), 3),
    }
    say(f"  face_recognition took {figures['time_ratio']}x as long; accuracy ours/theirs {figures['accuracy_ratio']}")
    return figures


def versus_photos(
    lfw: Path, people: int, per_person: int, strangers: int
) -> tuple[dict[str, Path], list[Path], dict[str, str]]:
    """Known photo per person, the photos to label, and each one's right answer by file name."""
    by_person = {folder.name: sorted(folder.glob("*.jpg")) for folder in sorted(lfw.iterdir()) if folder.is_dir()}
    recurring = [name for name, photos in by_person.items() if len(photos) > 1][:people]
    alone = [name for name, photos in by_person.items() if len(photos) == 1][:strangers]
    known = {name: by_person[name][0] for name in recurring}
    unknown = [photo for name in recurring for photo in by_person[name][1 : 1 + per_person]]
    unknown += [by_person[name][0] for name in alone]
    truth = {photo.name: (photo.parent.name if photo.parent.name in known else "unknown") for photo in unknown}
    return known, unknown, truth


def _ours(known_dir: Path, unknown_dir: Path, truth: dict[str, str]) -> dict:
    """Index the folder as a worker does (into a scratch collection), then search with each known photo."""
    face_engine.load()
    # The threshold a fresh install uses (the archive's own calibration, if any, is not read).
    scale = calibration.SHIPPED.get(face_engine.model_name()) or calibration.for_model(face_engine.model_name())
    with _milvus_lite() as _, vector_store.scratch_collection(face_engine.dimension()) as collection:
        started = time.perf_counter()
        names, next_id = {}, 1
        for number, photo in enumerate(sorted(unknown_dir.iterdir()), start=1):
            faces = face_engine.find_faces(services.open_photo(photo))
            vector_store.insert(
                [vector_store.FaceVector(next_id + i, face.embedding, number, "image") for i, face in enumerate(faces)],
                collection,
            )
            names[number] = photo.name
            next_id += len(faces)
        matches = []
        for photo in sorted(known_dir.iterdir()):
            faces = face_engine.find_faces(services.open_photo(photo))
            if not faces:
                continue
            for hit in vector_store.search_many([faces[0].embedding], 100, collection=collection)[0]:
                if scale.same_person(hit.distance):
                    matches.append((names[hit.asset_id], hit.distance, photo.stem))
        seconds = time.perf_counter() - started
    return _scored(_nearest_labels(matches), truth, seconds)


def _face_recognition_cli(known_dir: Path, unknown_dir: Path, truth: dict[str, str]) -> dict:
    command = Path(sys.executable).with_name("face_recognition")
    argv = [str(command), "--cpus", "1", "--tolerance", str(FACE_RECOGNITION_TOLERANCE), "--show-distance", "true"]
    argv += [str(known_dir), str(unknown_dir)]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"face_recognition exited with {done.returncode}: {done.stderr[-2000:]}")
    matches = [
        (Path(match["path"]).name, float(match["distance"] or 0), match["name"])
        for match in map(CLI_LINE.match, map(str.strip, done.stdout.splitlines()))
        if match and match["name"] not in ("unknown_person", "no_persons_found")
    ]
    return _scored(_nearest_labels(matches), truth, seconds)


def _nearest_labels(matches: list[tuple[str, float, str]]) -> dict[str, str]:
    """For each photo, the person of its nearest match, from (photo, distance, person) triples."""
    nearest: dict[str, tuple[float, str]] = {}
    for photo, distance, person in matches:
        if photo not in nearest or distance < nearest[photo][0]:
            nearest[photo] = (distance, person)
    return {photo: person for photo, (_, person) in nearest.items()}


def _scored(labels: dict[str, str], truth: dict[str, str], seconds: float) -> dict:
    """Accuracy of the labels against the truth, and how the wrong ones were wrong."""
    right = sum(1 for name, answer in truth.items() if labels.get(name, "unknown") == answer)
    named = {name: answer for name, answer in truth.items() if answer != "unknown"}
    wrong_person = sum(1 for name, answer in named.items() if labels.get(name) not in (None, answer))
    missed = sum(1 for name in named if name not in labels)
    false_match = sum(1 for name, answer in truth.items() if answer == "unknown" and name in labels)
    return {
        "seconds": round(seconds, 1),
        "accuracy": round(right / len(truth), 4),
        "right": right,
        "wrong_person": wrong_person,
        "missed": missed,
        "false_match": false_match,
    }


# Reporting.


def summary_lines(report: Report) -> list[str]:
    """The report as the README's table rows would say it."""
    lines = [
        f"machine: {report.machine.get('cpu')}, {report.machine.get('cores')} cores,"
        f" {report.machine.get('memory_gib')} GiB; {report.machine.get('face_model')}"
    ]
    if report.stages:
        stages = report.stages["ms_per_photo"]
        lines.append(
            "per photo (one process): "
            + ", ".join(f"{stage} {ms} ms" for stage, ms in stages.items())
            + f"; embed {report.stages['embed_ms_per_face']} ms a face"
        )
    for run in report.photos:
        lines.append(f"end to end, {run['workers']} worker(s): {run['photos_per_second']} photos/s, {run['seconds']} s")
        lines.append(
            "  peak memory: "
            + ", ".join(f"{p['name']} {p['peak_rss_mb']:.0f} MB" for p in run["processes"] if p["peak_rss_mb"] > 5)
        )
    if report.search:
        latency = report.search["latency_ms"]
        lines.append(
            f"search end to end over {report.search['faces']:,} faces: p50 {latency.get('p50')} ms,"
            f" p95 {latency.get('p95')} ms"
        )
    for run in report.video:
        lines.append(f"video {run['label']} ({run['size']}): {run['realtime_factor']}x real time")
    for run in report.milvus:
        lines.append(
            f"Milvus {run['server']} at {run['vectors']:,}: p50 {run['p50_ms']} ms, p95 {run['p95_ms']} ms,"
            f" recall@20 {run['recall_at_20']}"
        )
    if report.versus:
        lines.append(
            f"versus face_recognition: {report.versus['time_ratio']}x faster, accuracy"
            f" {report.versus['ours']['accuracy']} vs {report.versus['face_recognition']['accuracy']}"
        )
    lines.append(f"whole benchmark: {report.seconds:.0f} s")
    return lines
