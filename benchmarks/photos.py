"""Photos: the time a worker spends on each stage of one photo, and photos per second through a whole service."""

import contextlib
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

from django.conf import settings

from benchmarks import soak
from benchmarks.instance import Instance, InstanceError
from benchmarks.machine import service_processes
from benchmarks.servers import running_milvus
from media_index import face_engine, imaging, vector_store

logger = logging.getLogger(__name__)

Say = Callable[[str], None]
STAGE_PHOTOS = 200


def stage_times(photos: list[Path], say: Say) -> dict:
    """Milliseconds a photo spends in each stage of indexing, one photo at a time as a worker does it.

    Vectors go to a scratch collection on a Milvus Lite server of the benchmark's own."""
    face_engine.load()
    totals = dict.fromkeys(("decode", "detect", "embed", "insert"), 0.0)
    faces = 0
    with milvus_lite() as _, vector_store.scratch_collection(face_engine.dimension()) as collection:
        next_id = 1
        for number, photo in enumerate(photos, start=1):
            started = time.perf_counter()
            image = imaging.open_photo(photo)
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
def milvus_lite() -> Iterator[None]:
    """vector_store talking to a Milvus Lite server of its own in a temporary folder."""
    with (
        tempfile.TemporaryDirectory(prefix="revsearch-benchmark-milvus-") as folder,
        running_milvus("lite", Path(folder), logger.info) as server,
        soak.vectors_at(f"http://127.0.0.1:{server.ready_port}"),
    ):
        yield


def end_to_end(
    photos: list[Path],
    data: Path,
    workers: int,
    say: Say,
    then: Callable[[Instance], dict] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[dict, dict]:
    """Photos per second from the copy into the inbox to the last one searchable, on a fresh service.

    Also the peak memory of each of its processes, and the CPU seconds each used while the photos went through,
    which say where the time goes. `then` runs on the filled service before it stops (the search section); `env`
    adds settings to the service's environment."""
    home = Path(tempfile.mkdtemp(prefix="revsearch-benchmark-")).resolve()
    instance = Instance(home, admin_password=secrets.token_urlsafe(16), workers=workers)
    instance.env |= env or {}
    batch = instance.env.get("REVSEARCH_PHOTO_BATCH", settings.PHOTO_BATCH)
    say(
        f"photos end to end: {len(photos)} LFW photos, {workers} worker process(es), {batch} photo(s) a task,"
        f" service in {home}"
    )
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
