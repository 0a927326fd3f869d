"""Find the moments in videos where the person in each given photo appears."""

from pathlib import Path

from search import services

from .search_photo import Command as SearchPhotoCommand
from .search_photo import moment_record


class Command(SearchPhotoCommand):
    help = "Find the videos, and the time ranges in them, where the person in each given photo appears."
    kind = "video"

    def as_record(self, photo: Path, result: services.SearchResult) -> dict:
        return {
            "query": str(photo.resolve()),
            "videos": [
                {
                    "path": match.asset.path,
                    "score": match.score,
                    "distance": round(match.distance, 4),
                    "ranges": [moment_record(moment) for moment in match.moments],
                }
                for match in result.matches
            ],
        }
