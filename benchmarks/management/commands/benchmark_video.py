"""Measure how many seconds of video one worker process indexes per second of work, for any video."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from benchmarks.videos import video_speed
from media_index import video_probe


class Command(BaseCommand):
    help = (
        "Sample, detect and embed the given videos as a worker does (nothing is stored) and print seconds of"
        " video processed per second of work for each (`benchmark` does the same for its two reference videos)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("videos", nargs="+", type=Path)
        parser.add_argument(
            "--fps", type=float, default=None, help="Frames sampled a second (REVSEARCH_VIDEO_SAMPLE_FPS)."
        )
        parser.add_argument("--repeat", type=int, default=3, help="Runs per video; the best is reported.")
        parser.add_argument(
            "--against-reference",
            action="store_true",
            help="Also run the pipeline as it was before the video throughput work, and say how many of its faces"
            " today's finds (as `benchmark --only video` does).",
        )

    def handle(
        self, *args, videos: list[Path], fps: float | None, repeat: int, against_reference: bool, **options
    ) -> None:
        for path in videos:
            try:
                video_speed(
                    path.name,
                    path,
                    self.stdout.write,
                    repeat=max(repeat, 1),
                    fps=fps or settings.VIDEO_SAMPLE_FPS,
                    compare=against_reference,
                )
            except (FileNotFoundError, video_probe.UnreadableVideo) as error:
                raise CommandError(f"{path}: {error}") from error
