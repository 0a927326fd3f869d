"""Video: seconds of video a worker process gets through per second of work."""

import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from media_index import face_engine, video, video_probe

logger = logging.getLogger(__name__)

Say = Callable[[str], None]


def reference_videos() -> dict[str, Path]:
    """The two videos `manage.py benchmark` measures, by label, in the data folder."""
    return {
        "360p": settings.DATA_DIR / "face_recognition" / "examples" / "short_hamilton_clip.mp4",
        "1080p": settings.DATA_DIR / "facenet-pytorch" / "examples" / "video.mp4",
    }


def video_speed(label: str, path: Path, say: Say, repeat: int = 3, fps: float | None = None) -> dict:
    """Seconds of video a worker process gets through per second: sample, decode, detect, embed (best of repeat)."""
    face_engine.load()
    info = video_probe.probe(path)
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
