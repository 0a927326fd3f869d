"""The stretched-video section: its looped videos are real footage of the length asked, built once; its summary."""

import pytest

from benchmarks import stretched_video
from benchmarks.runner import Report, summary_lines
from media_index import video_probe
from tests.conftest import EXAMPLES


@pytest.mark.shared_data
def test_the_looped_video_is_the_clip_played_over_for_the_length_asked_and_is_built_once(tmp_path, settings):
    settings.BASE_DIR = tmp_path
    path = stretched_video.looped_video("360p", EXAMPLES / "short_hamilton_clip.mp4", 0.5)
    assert path.is_relative_to(tmp_path / "var" / "benchmark")
    info = video_probe.probe(path)
    clip = video_probe.probe(EXAMPLES / "short_hamilton_clip.mp4")
    assert (info.width, info.height) == (clip.width, clip.height)
    assert 30 <= info.duration < 30 + clip.duration + 1  # whole loops, at least the length asked
    built = path.stat().st_mtime_ns
    assert stretched_video.looped_video("360p", EXAMPLES / "short_hamilton_clip.mp4", 0.5) == path
    assert path.stat().st_mtime_ns == built


def test_the_machine_busy_time_only_grows():
    first = stretched_video._cpu_busy()
    sum(range(2_000_000))  # some work of this process
    assert stretched_video._cpu_busy() > first > 0


def test_the_summary_compares_stretches_with_one_piece():
    run = {
        "label": "360p", "workers": 2, "video_seconds": 486.0, "stretch_seconds": 60, "speedup": 1.2,
        "stretches": {"realtime_factor": 9.9}, "one_piece": {"realtime_factor": 8.2}, "same_frames_and_faces": True,
    }  # fmt: skip
    line = next(line for line in summary_lines(Report(stretched_video=[run])) if "2 workers" in line)
    assert "9.9x real time in stretches of 60 s" in line and "8.2x in one piece" in line and "1.2x as fast" in line


@pytest.mark.processes
def test_each_postgres_run_gets_an_empty_database_of_its_own():
    import psycopg

    assert stretched_video._fresh_database(None, "one_piece") is None  # SQLite: the service's own file
    with stretched_video._postgres() as server:
        first, second = (stretched_video._fresh_database(server, way) for way in ("one_piece", "stretches"))
        assert first != second and first.startswith(server + "/stretched_one_piece_")
        with psycopg.connect(first) as connection:
            tables = connection.execute("select count(*) from pg_tables where schemaname = 'public'").fetchone()
        assert tables == (0,)
