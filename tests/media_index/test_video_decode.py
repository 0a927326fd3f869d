"""Fast decoding (REVSEARCH_VIDEO_FAST_DECODE): real frames at their real times, and resumption as exact as ever."""

from pathlib import Path

import pytest

from media_index import video_decode
from tests.conftest import DATA_DIR
from tests.media_index.test_video import assert_resumes_exactly, sampled

CROWD = DATA_DIR / "facenet-pytorch" / "examples" / "video.mp4"  # 25 fps, 78 of its 105 frames are B-frames
FRAME = 1 / 25


def test_the_setting_adds_the_decoder_options_and_nothing_else(settings) -> None:
    settings.VIDEO_FAST_DECODE = False
    plain = video_decode.input_options(None)
    assert "skip_frame" not in plain
    settings.VIDEO_FAST_DECODE = True
    assert video_decode.input_options(None) == plain | {"skip_frame": "noref"}
    assert video_decode.input_options(12.5)["ss"] == "12.500000"


@pytest.mark.processes
@pytest.mark.shared_data
def test_fast_decoding_samples_real_frames_at_their_real_times(settings) -> None:
    settings.VIDEO_FAST_DECODE = False
    every_frame = {round(frame.timestamp, 3): frame.image.tobytes() for frame in sampled(CROWD, 25)}
    full = [frame.timestamp for frame in sampled(CROWD, 2)]
    settings.VIDEO_FAST_DECODE = True
    fast = sampled(CROWD, 2)
    assert len(every_frame) == 105
    # Each frame is the one decoded in full at its time, pixel for pixel: its time is its own.
    for frame in fast:
        assert frame.image.tobytes() == every_frame[round(frame.timestamp, 3)], frame.timestamp
    # Skipped B-frames move a sampled frame to the next one decoded: never earlier, never more than a frame later.
    times = [frame.timestamp for frame in fast]
    assert times != full
    for time in full:
        assert any(0 <= later - time <= FRAME + 1e-3 for later in times), time


@pytest.mark.processes
@pytest.mark.shared_data
@pytest.mark.parametrize(("path", "sample_fps"), [(CROWD, 1), (CROWD, 3)])
def test_a_resumed_fast_run_yields_no_frame_twice_and_none_missing(settings, path: Path, sample_fps: float) -> None:
    settings.VIDEO_FAST_DECODE = True
    assert_resumes_exactly(path, sample_fps, lambda count: range(1, count))
