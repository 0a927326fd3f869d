"""List the people found in the archive with how many photos and video moments they are in."""

import json

from django.core.management.base import BaseCommand

from people import listing, queries


class Command(BaseCommand):
    help = "List people: named ones first, then unnamed ones by their number of faces."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print one JSON list.")
        parser.add_argument("--hidden", action="store_true", help="Include hidden people.")

    def handle(self, *args, as_json: bool, hidden: bool, **options) -> None:
        records = [listing.summary_record(person) for person in queries.people_summary(include_hidden=hidden)]
        if as_json:
            self.stdout.write(json.dumps(records))
            return
        if not records:
            self.stdout.write(
                "No people yet: they form as faces are indexed (or run `manage.py cluster_faces --full`)."
            )
            return
        self.stdout.write(f"{'id':>7}  {'faces':>6} {'photos':>6} {'moments':>7}  {'latest':<10}  name")
        for row in records:
            latest = (row["latest"] or "-")[:10]
            name = listing.printable(row["label"]) + (" (hidden)" if row["hidden"] else "")
            self.stdout.write(
                f"{row['id']:>7}  {row['faces']:>6} {row['photos']:>6} {row['moments']:>7}  {latest:<10}  {name}"
            )
