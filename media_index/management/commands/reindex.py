"""Queue assets for indexing again: the failed ones, every one, or those under given paths."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import QuerySet

from media_index import dispatch
from media_index.models import Asset


class Command(BaseCommand):
    help = "Index assets again from scratch: --failed, --all, or the assets under the given files or folders."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="*", type=Path)
        parser.add_argument("--failed", action="store_true", help="The assets that failed.")
        parser.add_argument("--all", action="store_true", dest="everything", help="Every photo and video.")

    def handle(self, *args, paths: list[Path], failed: bool, everything: bool, **options) -> None:
        if not (paths or failed or everything):
            raise CommandError("say which assets: --failed, --all, or paths")
        assets: QuerySet[Asset] | list[Asset]
        assets = Asset.objects.filter(kind__in=[Asset.Kind.IMAGE, Asset.Kind.VIDEO]).exclude(
            status__in=[Asset.Status.DUPLICATE, Asset.Status.MISSING, Asset.Status.UNSUPPORTED]
        )
        if failed:
            assets = assets.filter(status=Asset.Status.FAILED)
        if paths:
            chosen = [str(path.resolve()) for path in paths]
            assets = [a for a in assets if any(a.path == p or a.path.startswith(p.rstrip("/") + "/") for p in chosen)]
        count = dispatch.requeue(assets)
        self.stdout.write(f"queued {count} assets for indexing")
