"""Measure how many seconds of video one worker process indexes per second of work, per file and resolution."""

import itertools
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from media_index import face_engine, video


class Command(BaseCommand):
    help = (
        "Sample, detect and embed the given videos as a worker does (nothing is stored) and print seconds of"
        " video processed per second of work for each."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("videos", nargs="+", type=Path)
        parser.add_argument(
            "--fps", type=float, default=None, help="Frames sampled a second (REVSEARCH_VIDEO_SAMPLE_FPS)."
        )
        parser.add_argument("--repeat", type=int, default=3, help="Runs per video; the best is reported.")

    def handle(self, *args, videos: list[Path], fps: float | None, repeat: int, **options) -> None:
        fps = fps or settings.VIDEO_SAMPLE_FPS
        face_engine.load()
        self.stdout.write(
            f"{face_engine.model_name()}, {settings.TORCH_THREADS} torch thread(s), {fps:g} frames/s sampled"
        )
        for path in videos:
            try:
                info = video.probe(path)
            except (FileNotFoundError, video.UnreadableVideo) as error:
                raise CommandError(f"{path}: {error}") from error
            best = min(self.run_once(path, info, fps) for _ in range(max(repeat, 1)))
            seconds, frames, faces = best
            self.stdout.write(
                f"{path.name}: {info.width}x{info.height}, {info.duration:.1f} s of video, {frames} frames,"
                f" {faces} faces in {seconds:.2f} s = {info.duration / seconds:.2f} s of video per second"
                f" ({frames / seconds:.1f} frames/s)"
            )

    def run_once(self, path: Path, info: video.VideoInfo, fps: float) -> tuple[float, int, int]:
        started = time.perf_counter()
        frames = faces = 0
        sampled = video.sample_frames(path, info, fps)
        while chunk := list(itertools.islice(sampled, settings.VIDEO_CHUNK_FRAMES)):
            faces += sum(map(len, face_engine.find_faces_batch([frame.image for frame in chunk])))
            frames += len(chunk)
        return time.perf_counter() - started, frames, faces
