"""The ceiling section: its arithmetic, the processor's peak, and its figures on the shared 360p clip."""

import pytest
import torch

from benchmarks import ceiling
from benchmarks.runner import Report, summary_lines
from media_index import face_engine
from tests.conftest import EXAMPLES


def test_the_realtime_factor_grows_with_cores_and_shrinks_with_samples_and_cost() -> None:
    assert ceiling.realtime_factor(1.0, 2, 0.05) == pytest.approx(40.0)  # 2 cores, 50 ms a frame, one a second
    assert ceiling.realtime_factor(4.0, 2, 0.05) == pytest.approx(10.0)
    assert ceiling.realtime_factor(1.0, 1, 0.05) == pytest.approx(20.0)
    assert ceiling.realtime_factor(1.0, 2, 0.1) == pytest.approx(20.0)


def test_the_peak_is_measured_on_one_thread_and_the_threads_are_put_back() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert ceiling.peak_gflops() > 1.0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


@pytest.mark.shared_data
def test_the_ceiling_of_the_360p_clip_counts_its_faces_and_facenets_operations(tmp_path, settings) -> None:
    settings.BASE_DIR = tmp_path  # the loop is built here
    said: list[str] = []
    figures = ceiling.video_ceiling("360p", EXAMPLES / "short_hamilton_clip.mp4", said.append)
    # The video benchmark's frames and faces: 13 sampled frames (1 a second and the 3 shot cuts), 21 faces.
    assert (figures["frames"], figures["faces"]) == (13, 21)
    # InceptionResnetV1 on a 160x160 crop: 1.42 billion multiply-adds, whatever the face.
    assert figures["embed_gflop_a_face"] == pytest.approx(2.84, abs=0.01)
    assert figures["detect_gflop_a_frame"] > 0.1 and figures["decode_ms_a_frame"] > 0
    # Nothing runs faster than the peak: today's kernels come under the ceiling.
    assert figures["todays_kernels_realtime_factor"] < figures["ceiling_realtime_factor"]
    assert figures["target_realtime_factor"] == 30.0
    assert figures["precision"] == face_engine.precision()
    assert said == [line for line in summary_lines(Report(ceiling=[figures])) if line.startswith("ceiling")]
    assert "target 30x" in said[0] and f"at most {figures['ceiling_realtime_factor']}x real time" in said[0]
