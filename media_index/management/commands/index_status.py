"""How many assets are in each status, and how many face vectors Milvus holds; or every asset, one per line."""

import json

from django.core.management.base import BaseCommand

from media_index import services, vector_store
from media_index.models import Asset, Face


class Command(BaseCommand):
    help = "Show how many assets are queued, indexed, failed... and how many faces are stored."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print JSON.")
        parser.add_argument("--assets", action="store_true", help="List every asset with its status and error.")

    def handle(self, *args, as_json: bool, assets: bool, **options) -> None:
        if assets:
            self.list_assets(as_json)
            return
        counts = services.status_counts() | {"faces": Face.objects.count()}
        if as_json:
            self.stdout.write(json.dumps(counts))
            return
        for name, value in counts.items():
            self.stdout.write(f"{name:>12} {value}")
        self.stdout.write(f"{'vectors':>12} {vector_store.count()}")

    def list_assets(self, as_json: bool) -> None:
        for asset in Asset.objects.order_by("path"):
            if as_json:
                record = {"id": asset.pk, "path": asset.path, "kind": asset.kind, "status": asset.status}
                record |= {"error": asset.error}
                self.stdout.write(json.dumps(record | {"frames_done": asset.frames_done, "frames": asset.frames_total}))
            else:
                self.stdout.write(f"{asset.status:>11}  {asset.progress:>16}  {asset.path}  {asset.error}".rstrip())
