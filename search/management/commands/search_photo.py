"""Search the index with one or more photos from the command line (models load once for all)."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from media_index.imaging import UnreadablePhoto
from search import services


class Command(BaseCommand):
    help = "Find the indexed photos and videos of the person in each given photo (the largest face is searched)."
    kind: str | None = None  # search_video limits the results to videos

    def add_arguments(self, parser) -> None:
        parser.add_argument("photos", nargs="+", type=Path)
        parser.add_argument("--top", type=int, default=None, help="How many results (default REVSEARCH_SEARCH_TOP_K).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="One JSON line per query photo.")

    def handle(self, *args, photos: list[Path], top: int | None, as_json: bool, **options) -> None:
        if top is not None and top < 1:
            raise CommandError("--top must be at least 1")
        failures = 0
        for photo in photos:
            try:
                result = services.search_photo(photo, top_k=top, kind=self.kind)
            except (FileNotFoundError, UnreadablePhoto) as error:
                failures += 1
                self.stderr.write(f"{photo}: {error}")
                continue
            if as_json:
                self.stdout.write(json.dumps(self.as_record(photo, result)))
            else:
                self.print_table(photo, result)
        if failures:
            raise CommandError(f"{failures} of {len(photos)} query photos could not be read")

    def print_table(self, photo: Path, result: services.SearchResult) -> None:
        if not result.faces:
            self.stdout.write(f"{photo}: no face found")
            return
        self.stdout.write(f"{photo}: {len(result.faces)} face(s), searching face {result.chosen}")
        for rank, match in enumerate(result.matches, start=1):
            self.stdout.write(f"{rank:>3}. {match.score:5.1f}  d={match.distance:.3f}  {match.asset.path}")
            for moment in match.moments:
                self.stdout.write(f"       {moment.start:7.2f}-{moment.end:7.2f} s  {moment.score:5.1f}")

    def as_record(self, photo: Path, result: services.SearchResult) -> dict:
        return {
            "query": str(photo.resolve()),
            "faces": [{"bbox": _rounded(face.box), "probability": face.probability} for face in result.faces],
            "results": [
                {
                    "path": match.asset.path,
                    "kind": match.asset.kind,
                    "score": match.score,
                    "distance": round(match.distance, 4),
                    "same_person": match.same_person,
                    "bbox": _rounded(match.face.box),
                }
                | ({"ranges": [moment_record(m) for m in match.moments]} if match.moments else {})
                | ({"person": {"id": match.person.pk, "name": match.person.name}} if match.person else {})
                for match in result.matches
            ],
        }


def moment_record(moment: services.Moment) -> dict:
    return {
        "start": round(moment.start, 3),
        "end": round(moment.end, 3),
        "score": moment.score,
        "frame": moment.frame.thumbnail.path if moment.frame.thumbnail else None,
        "frame_time": round(moment.frame.timestamp, 3),
    }


def _rounded(box) -> list[float]:
    return [round(value, 1) for value in box]
