"""List the people found in the archive with how many photos and video moments they are in."""

import json

from django.core.management.base import BaseCommand

from people import listing, queries
from people.models import PeopleEvent


class Command(BaseCommand):
    help = "List people: named ones first, then unnamed ones by their number of faces."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print one JSON list.")
        parser.add_argument("--hidden", action="store_true", help="Include hidden people.")
        parser.add_argument(
            "--log", type=int, metavar="N", help="Print the audit log's last N events instead: who changed what, when."
        )

    def handle(self, *args, as_json: bool, hidden: bool, log: int | None, **options) -> None:
        if log is not None:
            self.print_log(max(log, 0), as_json)
            return
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

    def print_log(self, count: int, as_json: bool) -> None:
        events = list(PeopleEvent.objects.select_related("user")[:count])
        records = [
            {
                "at": event.created_at.isoformat(),
                "action": event.action,
                "person": event.person_id,
                "label": event.person_label,
                "user": event.user.get_username() if event.user else None,
                "detail": event.detail,
            }
            for event in events
        ]
        if as_json:
            self.stdout.write(json.dumps(records))
            return
        for row in records:
            who = listing.printable(row["user"] or "the service")
            self.stdout.write(f"{row['at'][:19]}  {row['action']:<8}  {listing.printable(row['label'])}  by {who}")
