"""Video moments end to end: videos dropped into the inbox are sampled, indexed and found with time ranges."""

import csv
import json
import re

import pytest

from tests.conftest import DATA_DIR, EXAMPLES
from tests.flow.conftest import HAMILTON

pytestmark = [pytest.mark.flow, pytest.mark.shared_data]

MIRANDA = EXAMPLES / "lin-manuel-miranda.png"


def miranda_on_screen() -> tuple[float, float]:
    """Miranda's close-up in the Hamilton clip (his longest stretch), from the measured ground truth.

    Seconds from the first frame: 2.73-7.03.
    """
    with (DATA_DIR / "annotations" / "video_segments.csv").open() as rows:
        stretches = [
            (float(row["start_from_first_frame_s"]), float(row["end_from_first_frame_s"]))
            for row in csv.DictReader(rows)
            if row["video"].endswith(HAMILTON.name) and row["person"] == "Lin-Manuel Miranda"
        ]
    return max(stretches, key=lambda stretch: stretch[1] - stretch[0])


def test_videos_are_indexed_with_progress_and_a_truncated_one_fails_cleanly(videos):
    hamilton = videos[HAMILTON.name]
    assert hamilton["status"] == "indexed"
    assert hamilton["frames_done"] == hamilton["frames"] >= 9
    assert videos["crowd.mp4"]["status"] == "indexed"
    truncated = videos["truncated.mp4"]
    assert truncated["status"] == "failed"
    assert "truncated.mp4" in truncated["error"]


def test_the_clip_was_split_into_stretches_that_the_workers_indexed_and_joined(service, videos):
    """The flow's service splits videos of 6 s or more into stretches of 3 s (tests/flow/conftest.py)."""
    hamilton = videos[HAMILTON.name]
    log = service.log_path.read_text(errors="replace")
    assert f"asset {hamilton['id']}: split into 3 stretches" in log
    for number in range(3):
        assert re.search(rf"asset {hamilton['id']}: stretch {number} \(.*\) done, \d+ frames", log), number
    assert f"asset {hamilton['id']}: 3 stretches joined" in log
    # Its 10 grid frames and the frames after its 3 shot cuts, each once: what one task samples.
    assert hamilton["frames_done"] == hamilton["frames"] == 13


def test_miranda_is_found_in_the_clip_at_her_close_up(service, videos):
    (line,) = service.manage("search_video", "--json", str(MIRANDA)).splitlines()
    answer = json.loads(line)
    assert answer["query"] == str(MIRANDA)
    paths = [video["path"] for video in answer["videos"]]
    assert paths[0].endswith("/videos/" + HAMILTON.name)
    start, end = miranda_on_screen()
    ranges = answer["videos"][0]["ranges"]
    assert any(r["start"] <= end and r["end"] >= start for r in ranges), ranges
    # The best moment lies inside the close-up, and the crowd video, if listed, ranks below the clip.
    best = max(ranges, key=lambda r: r["score"])
    assert start - 0.5 <= best["frame_time"] <= end + 0.5
    assert all(path.endswith(("crowd.mp4", HAMILTON.name)) for path in paths)


def test_photo_search_lists_videos_with_their_ranges(service, videos):
    answer = json.loads(service.manage("search_photo", "--json", str(MIRANDA)))
    first = answer["results"][0]
    assert first["kind"] == "video" and first["path"].endswith(HAMILTON.name)
    assert first["ranges"] and all(r["start"] <= r["end"] for r in first["ranges"])
    assert all("ranges" not in result for result in answer["results"] if result["kind"] == "image")
