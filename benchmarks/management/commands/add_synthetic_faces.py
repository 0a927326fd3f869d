"""Top an index up with made-up faces, so that search can be timed at archive sizes (benchmark only)."""

from django.core.management.base import BaseCommand

from benchmarks import synthetic_faces


class Command(BaseCommand):
    help = (
        "Add COUNT synthetic faces (Face rows under fake assets, and their vectors) to this index, for benchmarks."
        " Never run it on a real archive: the faces cannot be told apart from real ones in results."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("count", type=int)

    def handle(self, *args, count: int, **options) -> None:
        synthetic_faces.add_synthetic_faces(count, say=self.stdout.write)
