"""Group faces into people: `--full` rebuilds every group from scratch, keeping what users decided."""

from django.core.management.base import BaseCommand, CommandError

from media_index.vector_store import VectorStoreUnavailable
from people import rebuild


class Command(BaseCommand):
    help = "Group every face into people again from scratch, keeping names, faces placed by hand and 'not this person'."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--full", action="store_true", help="Rebuild every group (the only mode so far).")

    def handle(self, *args, full: bool, **options) -> None:
        if not full:
            raise CommandError("faces are grouped as they are indexed; give --full to rebuild every group from scratch")
        shown: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            percent = 100 * done // max(total, 1)
            if percent >= shown.get(stage, -10) + 10 or done == total:
                self.stdout.write(f"{stage}: {done}/{total} faces ({percent}%)")
                shown[stage] = percent

        try:
            report = rebuild.rebuild(progress=progress)
        except VectorStoreUnavailable as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{report.as_text()}; grouping took {report.seconds_grouping:.1f} s")
