"""Register given files or folders as assets, as the watcher would, without the watcher."""

import contextlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from media_index import dispatch, indexing, intake
from media_index.models import Asset


class Command(BaseCommand):
    help = "Register photos (files or folders, recursively) and queue them for indexing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Index in this process instead of through the Celery workers.",
        )

    def handle(self, *args, paths: list[Path], inline: bool, **options) -> None:
        missing = [str(path) for path in paths if not path.exists()]
        if missing:
            raise CommandError(f"no such file or folder: {', '.join(missing)}")
        files = list(intake.walk_files(paths))
        with contextlib.nullcontext() if inline else dispatch.photos_together():
            for number, path in enumerate(files, start=1):
                asset = intake.register_path(path)
                if asset and inline and asset.status == Asset.Status.QUEUED:
                    indexing.index_asset(asset.pk)
                    asset.refresh_from_db()
                status = asset.status if asset else "vanished"
                self.stdout.write(f"[{number}/{len(files)}] {path}: {status}")
