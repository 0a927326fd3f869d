"""Soak a fresh instance: many photos dropped at once while clients search; exit code 0 when every check passed."""

import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from benchmarks import soak
from benchmarks.instance import InstanceError


class Command(BaseCommand):
    help = (
        "Start a fresh RevSearch in a temporary home, drop LFW photos into its inbox at once while clients search,"
        " then report throughput and search latency and check that every file is one asset and every face one vector."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--photos", type=int, default=2000, help="Photos to drop (default %(default)s).")
        parser.add_argument(
            "--searchers", type=int, default=5, help="Clients searching meanwhile (default %(default)s)."
        )
        parser.add_argument(
            "--data",
            type=Path,
            default=settings.DATA_DIR / "lfw",
            help="A folder of Name/Name_0001.jpg photos (default LFW).",
        )
        parser.add_argument("--keep", action="store_true", help="Keep the temporary home (database, logs) afterwards.")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, photos: int, searchers: int, data: Path, keep: bool, as_json: bool, **options) -> None:
        if photos < 1 or searchers < 1:
            raise CommandError("--photos and --searchers must be at least 1")
        # With --json, stdout carries only the report; progress goes to stderr.
        say = self.stderr.write if as_json else self.stdout.write
        try:
            report = soak.run_soak(photos, searchers, data, keep, say)
        except (soak.SoakError, InstanceError) as error:
            raise CommandError(str(error)) from error
        if as_json:
            self.stdout.write(json.dumps(report.as_dict()))
        else:
            for line in report.lines():
                self.stdout.write(line)
        if not report.passed:
            sys.exit(1)
