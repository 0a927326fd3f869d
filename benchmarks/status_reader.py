"""Answers an Instance's questions about its archive, one JSON line for each line asked on stdin, from one process
that stays up: `counts` (assets by status, and faces, as `index_status --json` prints them) or `assets` (every
asset's record, as `index_status --assets --json`).

A `manage.py index_status` run costs about a second of CPU, most of it starting Python and Django; the flow tests
ask once a second while the workers index, and took that CPU from them. Run with the instance's
environment (`python -m benchmarks.status_reader`); it exits when its stdin closes.
"""

import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revsearch_site.settings")
    import django

    django.setup()
    from media_index import upkeep

    for line in sys.stdin:
        question = line.strip()
        if question == "counts":
            answer: object = upkeep.index_counts()
        elif question == "assets":
            answer = list(upkeep.asset_records())
        else:
            answer = {"error": f"unknown question {question!r}: ask counts or assets"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
