"""People: faces grouped into persons, named and corrected by users, followed across photos and videos, forgotten."""
