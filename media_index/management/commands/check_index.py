"""Compare the database with Milvus and the files on disk; with --fix, repair. Exit code 0 when consistent."""

import sys

from django.core.management.base import BaseCommand

from media_index import upkeep


class Command(BaseCommand):
    help = "Check that every face has its vector, every vector its face, and no indexed file has changed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fix", action="store_true", help="Delete orphan vectors and index again what is off.")

    def handle(self, *args, fix: bool, **options) -> None:
        check = upkeep.check_index()
        self.stdout.write(
            f"faces without vectors: {len(check.faces_without_vectors)}; vectors without faces:"
            f" {len(check.vectors_without_faces)}; files changed since indexing: {len(check.changed_files)}"
        )
        for path in check.changed_files:
            self.stdout.write(f"changed: {path}")
        if check.consistent:
            self.stdout.write("the index is consistent")
            return
        if not fix:
            self.stderr.write("the index is not consistent: run `manage.py check_index --fix` to repair it")
            sys.exit(1)
        upkeep.repair_index(check)
        self.stdout.write("repaired: orphan vectors deleted, affected assets queued for indexing")
