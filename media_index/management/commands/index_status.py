"""How many assets are in each status, and how many face vectors Milvus holds; or every asset, one per line."""

import json
import signal
import time

from django.core.management.base import BaseCommand, CommandError

from media_index import upkeep, vector_store
from media_index.models import Asset


class Command(BaseCommand):
    help = "Show how many assets are queued, indexed, failed... and how many faces are stored."
    # Asked often, by people and scripts watching an import: the system checks would load the URLs and, through the
    # search views, torch (3 s of CPU a call, against about 1 s without).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print JSON.")
        parser.add_argument("--assets", action="store_true", help="List every asset with its status and error.")
        parser.add_argument(
            "--every", type=float, metavar="SECONDS", help="Print the counts again every SECONDS until stopped."
        )

    def handle(self, *args, as_json: bool, assets: bool, every: float | None, **options) -> None:
        if assets:
            self.list_assets(as_json)
        elif every is None:
            self.counts(as_json)
        else:
            self.follow(as_json, every)

    def follow(self, as_json: bool, every: float) -> None:
        """Counts every few seconds, from one process: cheap enough to watch a large import (or a soak) closely."""
        if every <= 0:
            raise CommandError(f"--every {every}: give a number of seconds above 0")
        self.stopping = False
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)
        while not self.stopping:
            self.counts(as_json)
            self.stdout.flush()
            time.sleep(every)

    def stop(self, signum, _frame) -> None:
        self.stopping = True

    def counts(self, as_json: bool) -> None:
        counts = upkeep.index_counts()
        if as_json:
            self.stdout.write(json.dumps(counts))
            return
        for name, value in counts.items():
            self.stdout.write(f"{name:>12} {value}")
        self.stdout.write(f"{'vectors':>12} {vector_store.count()}")

    def list_assets(self, as_json: bool) -> None:
        if as_json:
            for record in upkeep.asset_records():
                self.stdout.write(json.dumps(record))
            return
        for asset in Asset.objects.order_by("path"):
            self.stdout.write(f"{asset.status:>11}  {asset.progress:>16}  {asset.path}  {asset.error}".rstrip())
