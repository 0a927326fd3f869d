"""A long 1080p video through a whole service: its speed, the worker's peak memory, and the progress users see.

The video is a slideshow of LFW photos on a 1920x1080 canvas, one face a shot, built once with ffmpeg and kept in
var/benchmark/ (generated, never committed). Its frames are simple to decode, so the speed is an upper bound for
camera footage; the memory is the point: a worker streams frames, so it must not grow with the video's length.
"""

import contextlib
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from benchmarks.instance import Instance, InstanceError
from benchmarks.machine import service_processes

logger = logging.getLogger(__name__)

Say = Callable[[str], None]

SHOT_SECONDS = 4
# Frames a second of the generated video: few, so that building an hour of it takes minutes, not a quarter hour.
GENERATED_FPS = 10
PHOTOS = 60
POLL_SECONDS = 5
PROGRESS = re.compile(r"^out_time_us=(?P<us>\d+)$")


def long_video_path(minutes: int) -> Path:
    return settings.BASE_DIR / "var" / "benchmark" / f"slideshow-1080p-{minutes}min.mp4"


def make_video(minutes: int, say: Say) -> Path:
    """The generated video of `minutes` minutes (built on first use): LFW faces, one every SHOT_SECONDS."""
    path = long_video_path(minutes)
    if path.is_file():
        return path
    lfw = settings.DATA_DIR / "lfw"
    people = sorted(folder for folder in lfw.iterdir() if folder.is_dir())[:PHOTOS] if lfw.is_dir() else []
    photos = [min(folder.glob("*.jpg")) for folder in people if any(folder.glob("*.jpg"))]
    if not photos:
        raise FileNotFoundError(f"{lfw}: no LFW photos to build the video from; set REVSEARCH_DATA_DIR")
    path.parent.mkdir(parents=True, exist_ok=True)
    shots = minutes * 60 // SHOT_SECONDS
    with tempfile.TemporaryDirectory(prefix="revsearch-long-video-") as folder:
        listing = Path(folder) / "shots.txt"
        lines = [f"file '{photos[shot % len(photos)]}'\nduration {SHOT_SECONDS}" for shot in range(shots)]
        listing.write_text("\n".join([*lines, f"file '{photos[(shots - 1) % len(photos)]}'"]) + "\n")
        partial = path.with_suffix(".part.mp4")
        argv = [
            "ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
            "-vf", f"scale=540:540,pad=1920:1080:(ow-iw)/2:(oh-ih)/2:color=gray,fps={GENERATED_FPS},format=yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", "-t", str(minutes * 60), "-progress", "pipe:1", str(partial),
        ]  # fmt: skip
        say(f"long video: building {path.name} ({minutes} min of 1080p at {GENERATED_FPS} fps) once")
        with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as ffmpeg:
            said = 0.0
            for line in ffmpeg.stdout or ():
                if (match := PROGRESS.match(line.strip())) and int(match["us"]) / 6e7 >= said + 5:
                    said = int(match["us"]) / 6e7
                    say(f"  built {said:.0f} of {minutes} min")
        if ffmpeg.returncode != 0:
            raise RuntimeError(f"ffmpeg could not build {partial} (exit {ffmpeg.returncode})")
        partial.replace(path)
    return path


def long_video(minutes: int, say: Say) -> dict:
    """Index the generated video on a fresh service with one worker process, watching /tasks/ and the memory.

    Every POLL_SECONDS: the progress the tasks page's status.json gives, and the peak resident memory (VmHWM) of
    each process, kept per process, so a pool child that is replaced still counts."""
    video = make_video(minutes, say)
    home = Path(tempfile.mkdtemp(prefix="revsearch-benchmark-")).resolve()
    instance = Instance(home, admin_password=secrets.token_urlsafe(16), workers=1)
    peaks: dict[int, tuple[str, float]] = {}
    progress: list[tuple[int, int]] = []
    say(f"long video: {video.name} through a service with 1 worker process, in {home}")
    try:
        instance.prepare().start()
        session = instance.signed_in()
        aside = home / video.name
        shutil.copyfile(video, aside)
        started = time.perf_counter()
        os.replace(aside, instance.inbox / video.name)  # in at once, complete
        finished, said = False, 0
        while not finished:
            time.sleep(POLL_SECONDS)
            elapsed = time.perf_counter() - started
            for process in service_processes(instance.serve.pid):  # type: ignore[union-attr]
                known = peaks.get(process.pid, ("", 0.0))[1]
                peaks[process.pid] = (process.name, max(known, process.peak_rss_mb))
            tasks = session.get(f"{instance.url}/tasks/status.json", timeout=30).json()
            percent = next((item["percent"] for item in tasks["running"] if item["kind"] == "video"), None)
            if percent is not None:
                if percent >= said + 5 or not progress:
                    said = percent
                    say(f"  {elapsed:.0f} s: {percent}% on /tasks/")
                progress.append((round(elapsed), percent))
            finished = sum(tasks["statuses"].get(status, 0) for status in ("indexed", "no_faces", "failed")) > 0
            if elapsed > minutes * 60 * 2 + 600:
                raise TimeoutError(f"{video.name} was not indexed within {elapsed:.0f} s: {tasks['statuses']}")
        seconds = time.perf_counter() - started
        record = instance.assets().get(str(instance.inbox / video.name), {})
    finally:
        with contextlib.suppress(InstanceError):
            instance.stop()
        shutil.rmtree(home, ignore_errors=True)
    workers = [peak for name, peak in peaks.values() if name.startswith("celery worker")]
    figures = {
        "video": video.name,
        "video_seconds": minutes * 60,
        "status": record.get("status"),
        "faces": record.get("faces"),
        "seconds": round(seconds, 1),
        "realtime_factor": round(minutes * 60 / seconds, 1),
        "worker_peak_rss_mb": max(workers, default=0.0),
        # By kind of process, the largest: the decoders come and go (one at a time, for sampling or refining edges).
        "peak_rss_mb": {name: max(p for n, p in peaks.values() if n == name) for name, _ in peaks.values()},
        "progress_seen": progress,
    }
    say(
        f"long video: {minutes} min of 1080p {record.get('status')} in {seconds:.0f} s ="
        f" {figures['realtime_factor']}x real time; worker peak memory {figures['worker_peak_rss_mb']:.0f} MB;"
        f" /tasks/ showed its progress {len(progress)} times, from {progress[0][1] if progress else '-'}% to"
        f" {progress[-1][1] if progress else '-'}%"
    )
    return figures
