"""The long-video section's generated video: an hour of 1080p is built once, with faces, and then reused."""

import pytest

from benchmarks import long_video
from benchmarks.runner import Report, summary_lines
from media_index import face_engine, video, video_probe


@pytest.mark.shared_data
@pytest.mark.processes
def test_the_generated_video_is_1080p_of_the_length_asked_with_a_face_a_shot_and_is_built_once(tmp_path, monkeypatch):
    monkeypatch.setattr(long_video, "long_video_path", lambda minutes: tmp_path / f"{minutes}.mp4")
    said: list[str] = []
    path = long_video.make_video(1, said.append)
    info = video_probe.probe(path)
    assert (info.width, info.height) == (1920, 1080)
    assert info.duration == pytest.approx(60, abs=0.5)
    # One sampled frame in each of the first two shots: each shows one face, a different person's.
    frames = video.sample_frames(path, info, 1 / long_video.SHOT_SECONDS)
    first, second = next(frames), next(frames)
    frames.close()
    faces = [face_engine.find_faces(frame.image) for frame in (first, second)]
    assert [len(found) for found in faces] == [1, 1]
    assert float(((faces[0][0].embedding - faces[1][0].embedding) ** 2).sum()) > 0.5
    built = path.stat().st_mtime_ns
    said.clear()
    assert long_video.make_video(1, said.append) == path and path.stat().st_mtime_ns == built and not said


def test_the_summary_names_the_speed_and_the_worker_memory_against_the_target():
    report = Report(long_video={"video_seconds": 3600, "realtime_factor": 12.5, "worker_peak_rss_mb": 1010.4})
    line = next(line for line in summary_lines(report) if line.startswith("long video"))
    assert "60 min" in line and "12.5x real time" in line and "1010 MB" in line and "1536 MB" in line
