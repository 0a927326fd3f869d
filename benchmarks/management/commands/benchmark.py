"""Measure indexing and search speed on this machine, as docs/performance.md reports it."""

import json
import signal
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from benchmarks import runner, soak, stretched_video, vector_bench


class Command(BaseCommand):
    help = (
        "Photos per second end to end with 1 and 2 workers, time per stage, video speed at 360p and 1080p and the most"
        " this processor's peak allows there, search latency end to end and for Milvus alone at 10k/100k/1M vectors,"
        " peak memory per process, and the same folder labelled by face_recognition's CLI, and people at scale:"
        " indexing with and without assigning faces to people, `cluster_faces --full` on 100,000 synthetic faces and"
        " the people page with 10,000 people. Runs fresh services in temporary homes and scratch databases (about 40"
        " minutes with the defaults); the archive is not touched."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the figures as JSON.")
        sections = ",".join(runner.SECTIONS)
        parser.add_argument(
            "--only",
            default=sections,
            help=f"Sections to run, comma-separated: {sections}; also {','.join(runner.ON_REQUEST)} (not by default).",
        )
        parser.add_argument("--photos", type=int, default=1000, help="LFW photos for the inbox (default 1000).")
        parser.add_argument("--workers", default="1,2", help="Worker processes to measure with, comma-separated.")
        parser.add_argument(
            "--photo-batches",
            default="",
            help="REVSEARCH_PHOTO_BATCH values to run the photos section with, comma-separated (default: the setting).",
        )
        parser.add_argument("--search-faces", type=int, default=100_000, help="Faces indexed when searching.")
        parser.add_argument("--searches", type=int, default=50, help="Timed searches (default 50).")
        parser.add_argument("--vector-sizes", default="10000,100000,1000000", help="Milvus-alone sizes.")
        parser.add_argument("--vector-server", choices=vector_bench.SERVERS, default="standalone")
        parser.add_argument("--data", type=str, default=str(settings.DATA_DIR / "lfw"), help="LFW's folder.")
        parser.add_argument(
            "--people-faces", type=int, default=100_000, help="Synthetic faces cluster_faces --full groups (100,000)."
        )
        parser.add_argument("--people", type=int, default=10_000, help="People on the people page (10,000).")
        parser.add_argument(
            "--video-minutes", type=int, default=60, help="Length of the long_video section's video (60 minutes)."
        )
        parser.add_argument(
            "--video-databases",
            default="sqlite",
            help="Databases the stretched_video section runs on, comma-separated: sqlite, postgres (default sqlite).",
        )
        parser.add_argument(
            "--assign-rounds", type=int, default=2, help="Runs with assignment off and on, each (default 2)."
        )

    def handle(self, *args, as_json: bool, only: str, workers: str, vector_sizes: str, **options) -> None:
        sections = tuple(name.strip() for name in only.split(",") if name.strip())
        unknown = set(sections) - set(runner.SECTIONS) - set(runner.ON_REQUEST)
        if unknown:
            choices = runner.SECTIONS + runner.ON_REQUEST
            raise CommandError(f"--only {only}: unknown {', '.join(sorted(unknown))}; choose from {choices}")
        try:
            worker_counts = tuple(int(count) for count in workers.split(","))
            photo_batches = tuple(int(batch) for batch in options["photo_batches"].split(",") if batch.strip())
            sizes = tuple(int(size) for size in vector_sizes.split(","))
        except ValueError as error:
            raise CommandError(
                "--workers, --photo-batches and --vector-sizes take whole numbers separated by commas"
            ) from error
        databases = tuple(name.strip() for name in options["video_databases"].split(",") if name.strip())
        if not databases or set(databases) - set(stretched_video.DATABASES):
            raise CommandError(f"--video-databases {options['video_databases']}: choose from sqlite, postgres")
        # Services and Milvus servers run in sessions of their own: SIGTERM must unwind through what stops them.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        say = self.stderr.write if as_json else self.stdout.write
        try:
            report = runner.run(
                sections=sections,
                photos=options["photos"],
                workers=worker_counts,
                search_faces=options["search_faces"],
                searches=options["searches"],
                vector_sizes=sizes,
                vector_server=options["vector_server"],
                lfw=Path(options["data"]),
                people_faces=options["people_faces"],
                people=options["people"],
                assign_rounds=options["assign_rounds"],
                video_minutes=options["video_minutes"],
                photo_batches=photo_batches,
                video_databases=databases,
                say=say,
            )
        except soak.SoakError as error:
            raise CommandError(str(error)) from error
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=1))
        else:
            self.stdout.write("\n" + "\n".join(runner.summary_lines(report)))
