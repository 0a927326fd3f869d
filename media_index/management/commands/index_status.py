"""How many assets are in each status, and how many face vectors Milvus holds."""

import json

from django.core.management.base import BaseCommand

from media_index import services, vector_store
from media_index.models import Face


class Command(BaseCommand):
    help = "Show how many assets are queued, indexed, failed... and how many faces are stored."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print one JSON object.")

    def handle(self, *args, as_json: bool, **options) -> None:
        counts = services.status_counts() | {"faces": Face.objects.count()}
        if as_json:
            self.stdout.write(json.dumps(counts))
            return
        for name, value in counts.items():
            self.stdout.write(f"{name:>12} {value}")
        self.stdout.write(f"{'vectors':>12} {vector_store.count()}")
