"""One person's photos and video moments, found by name or id."""

import json

from django.core.management.base import BaseCommand, CommandError

from people import listing, queries


class Command(BaseCommand):
    help = "Show the photos and video moments of one person, by name (any case) or id."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name_or_id", metavar="NAME_OR_ID", help="The person's name, or their id (see `people`).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print one JSON object.")

    def handle(self, *args, name_or_id: str, as_json: bool, **options) -> None:
        found = queries.find_people(name_or_id)
        asked = listing.printable(name_or_id)
        if not found:
            raise CommandError(
                f"Nobody is called {asked!r} and no person has that id: run `manage.py people` to list them, "
                "then give a name or an id."
            )
        if len(found) > 1:
            choices = ", ".join(f"{person.pk} ({person.faces.count()} faces)" for person in found)
            raise CommandError(
                f"{len(found)} people are called {asked!r}: ids {choices}. Give the id, e.g. "
                f"`manage.py person {found[0].pk}`."
            )
        person = found[0]
        appearances = queries.person_appearances(person)
        if as_json:
            record = {"id": person.pk, "name": person.name, "label": person.label, "hidden": person.hidden}
            self.stdout.write(json.dumps(record | listing.appearances_record(appearances)))
            return
        self.stdout.write(
            f"{listing.printable(person.label)} (id {person.pk}{', hidden' if person.hidden else ''}): "
            f"{len(appearances.photos)} photos, {len(appearances.moments)} video moments"
        )
        for photo in appearances.photos:
            self.stdout.write(f"photo   {photo.date:%Y-%m-%d}  {listing.printable(photo.asset.path)}")
        for moment in appearances.moments:
            self.stdout.write(
                f"moment  {moment.date:%Y-%m-%d}  {listing.printable(moment.asset.path)}"
                f"  {moment.start:.1f}-{moment.end:.1f} s"
            )
