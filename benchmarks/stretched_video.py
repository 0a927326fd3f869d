"""One long video through a whole service with two workers, in stretches and in one piece: what splitting gives.

The videos are the shared clips played over and over (ffmpeg's stream loop, the stream copied, not re-encoded), so
their faces and decoding cost are real footage's; they are built once into var/benchmark/ (generated, never
committed). Each way gets a fresh service; the time runs from the file's arrival in the inbox (moved in at once,
complete) until the asset is indexed, so it includes the watcher's wait for the file to settle and, with
stretches, the join. How busy the machine's cores were meanwhile says how much room a second worker had.
"""

import contextlib
import logging
import math
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from django.conf import settings

from benchmarks import servers
from benchmarks.instance import Instance, InstanceError
from benchmarks.videos import reference_videos
from media_index import video_probe
from revsearch_site import processes

logger = logging.getLogger(__name__)

Say = Callable[[str], None]

# Minutes of each reference video's loop: long enough for several stretches a worker at the default length.
MINUTES = {"360p": 8, "1080p": 4}
WORKERS = 2
DATABASES = ("sqlite", "postgres")
POLL_SECONDS = 1.0


def looped_video(label: str, source: Path, minutes: float) -> Path:
    """The source clip played over and over for `minutes` (built on first use)."""
    path = settings.BASE_DIR / "var" / "benchmark" / f"{source.stem}-{label}-{minutes:g}min.mp4"
    if path.is_file():
        return path
    loops = math.ceil(minutes * 60 / video_probe.probe(source).duration)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.mp4")
    argv = [
        "ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(source),
        "-map", "0:v:0", "-c", "copy", str(partial),
    ]  # fmt: skip
    subprocess.run(argv, check=True, timeout=600)
    partial.replace(path)
    return path


def stretched_video(
    say: Say, minutes: dict[str, float] | None = None, databases: tuple[str, ...] = ("sqlite",)
) -> list[dict]:
    """Each reference video's loop indexed by a service with WORKERS workers: in one piece, then in stretches; for
    each database asked for (sqlite: the service's own file; postgres: a throwaway server, a fresh database a run)."""
    results = []
    with contextlib.ExitStack() as stack:
        servers_by_kind = {kind: stack.enter_context(_postgres()) if kind == "postgres" else None for kind in databases}
        for database, server in servers_by_kind.items():
            for label, source in reference_videos().items():
                path = looped_video(label, source, (minutes or MINUTES)[label])
                results.append(_compare(path, label, database, server, say))
    return results


def _compare(path: Path, label: str, database: str, server: str | None, say: Say) -> dict:
    info = video_probe.probe(path)
    say(
        f"stretched video {label}: {path.name} ({info.duration:.0f} s), {WORKERS} workers, {database},"
        " a fresh service each way"
    )
    ways = {"one_piece": 0, "stretches": settings.VIDEO_STRETCH_SECONDS}
    runs = {way: _index_once(path, seconds, say, _fresh_database(server, way)) for way, seconds in ways.items()}
    one, split = runs["one_piece"], runs["stretches"]
    figures = {
        "label": label,
        "database": database,
        "video": path.name,
        "video_seconds": round(info.duration, 1),
        "size": f"{info.width}x{info.height}",
        "workers": WORKERS,
        "torch_threads": settings.TORCH_THREADS,
        "stretch_seconds": settings.VIDEO_STRETCH_SECONDS,
        **{way: run | {"realtime_factor": round(info.duration / run["seconds"], 1)} for way, run in runs.items()},
        "speedup": round(one["seconds"] / split["seconds"], 2),
        "same_frames_and_faces": (one["frames"], one["faces"]) == (split["frames"], split["faces"]),
    }
    say(
        f"  {label} ({database}): in one piece {one['seconds']:.1f} s = {figures['one_piece']['realtime_factor']}x"
        f" real time; in stretches of {settings.VIDEO_STRETCH_SECONDS} s {split['seconds']:.1f} s ="
        f" {figures['stretches']['realtime_factor']}x ({figures['speedup']}x as fast); frames {one['frames']} and"
        f" {split['frames']}, faces {one['faces']} and {split['faces']}"
    )
    return figures


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server for the runs; yields its address, to which a database's name is added."""
    folder = Path(tempfile.mkdtemp(prefix="revsearch-benchmark-pg-"))
    folder.chmod(0o755)  # the server runs as the `postgres` user
    port = processes.free_port()
    server = servers.postgres(port, folder / "data").start(folder / "postgres.log")
    try:
        server.wait_ready()
        yield f"postgres://postgres@127.0.0.1:{port}"
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _fresh_database(server: str | None, name: str) -> str | None:
    """A new, empty database on the server, by its URL; None (the service's own SQLite file) without a server."""
    if server is None:
        return None
    name = f"stretched_{name}_{secrets.token_hex(4)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def _index_once(path: Path, stretch_seconds: int, say: Say, database_url: str | None) -> dict:
    """Seconds from the video's arrival in a fresh service's inbox until it is indexed, with its frames and faces."""
    home = Path(tempfile.mkdtemp(prefix="revsearch-benchmark-")).resolve()
    instance = Instance(home, admin_password=secrets.token_urlsafe(16), workers=WORKERS)
    instance.env["REVSEARCH_VIDEO_STRETCH_SECONDS"] = str(stretch_seconds)
    if database_url:
        instance.env["DATABASE_URL"] = database_url
    try:
        instance.prepare().start()
        session = instance.signed_in()  # polled through the tasks page's JSON: a manage.py each second would cost CPU
        aside = home / path.name
        shutil.copyfile(path, aside)
        started = time.perf_counter()
        os.replace(aside, instance.inbox / path.name)  # in at once, complete
        busy_before = _cpu_busy()
        statuses: dict[str, int] = {}
        while not sum(statuses.get(status, 0) for status in ("indexed", "no_faces", "failed")):
            time.sleep(POLL_SECONDS)
            statuses = session.get(f"{instance.url}/tasks/status.json", timeout=30).json()["statuses"]
            if time.perf_counter() - started > 1800:
                raise TimeoutError(f"{path.name} was not indexed within 30 minutes: {statuses}")
        seconds = time.perf_counter() - started
        busy = (_cpu_busy() - busy_before) / (seconds * (os.cpu_count() or 1))
        record = instance.assets()[str(instance.inbox / path.name)]
    finally:
        with contextlib.suppress(InstanceError):
            instance.stop()
        shutil.rmtree(home, ignore_errors=True)
    if record["status"] != "indexed":
        raise RuntimeError(f"{path.name} ended {record['status']}: {record.get('error')}")
    way = f"stretches of {stretch_seconds} s" if stretch_seconds else "one piece"
    say(
        f"    {way}: {seconds:.1f} s, {record['frames_done']} frames, {record['faces']} faces;"
        f" the machine's cores {100 * busy:.0f}% busy"
    )
    return {
        "seconds": round(seconds, 1), "frames": record["frames_done"], "faces": record["faces"],
        "cpu_busy_share": round(busy, 3),
    }  # fmt: skip


def _cpu_busy() -> float:
    """Seconds of CPU time the whole machine has spent busy (all processes, every core), from /proc/stat."""
    fields = [float(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and waiting for I/O
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
