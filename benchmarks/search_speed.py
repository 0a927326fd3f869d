"""Search end to end: upload-to-page latency on a filled service, as a user waits for it."""

import io
import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path

import PIL.Image

from benchmarks import search_clients
from benchmarks.instance import Instance
from benchmarks.machine import service_processes

logger = logging.getLogger(__name__)

Say = Callable[[str], None]
# A query photo of about one megapixel: LFW's 250x250 photos scaled up to this side.
QUERY_SIDE = 1000
WARM_SEARCHES = 3


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
        search_clients.upload_search(session, instance.url, name, photo)
    done = [search_clients.upload_search(session, instance.url, name, photo) for name, photo in photos]
    failed = [search.error for search in done if search.error]
    latency = search_clients.latency_summary([search.seconds for search in done if not search.error])
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
