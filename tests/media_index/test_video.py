"""Probing and frame sampling with the real ffmpeg, on the two example videos and copies made broken on purpose."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from media_index import shots, video, video_probe
from tests.conftest import DATA_DIR, EXAMPLES, SAMPLES

pytestmark = pytest.mark.processes

HAMILTON = EXAMPLES / "short_hamilton_clip.mp4"  # 640x360, 29.97 fps, first frame at 0.852 s
CROWD = DATA_DIR / "facenet-pytorch" / "examples" / "video.mp4"  # 1920x1080, 25 fps, starts at 0
HALF_FRAME = 0.5 / 29.97
# The Hamilton clip's shot cuts from its first frame (annotations/README.md: 1.511, 3.580, 7.884 s container time).
HAMILTON_CUTS = (0.659, 2.728, 7.032)


def ffmpeg(*arguments: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *map(str, arguments)], check=True)


def sampled(path: Path, sample_fps: float, **options) -> list[video.SampledFrame]:
    return list(video.sample_frames(path, video_probe.probe(path), sample_fps, **options))


def assert_resumes_exactly(path: Path, sample_fps: float, stops) -> None:
    """A run stopped after each frame number in `stops` (given the whole run's frames), then resumed after it, yields
    the rest of what one uninterrupted run does: the same indexes, times and pixels, none twice, none missing."""
    info = video_probe.probe(path)
    whole = [(frame.index, frame.timestamp, frame.image.tobytes()) for frame in sampled(path, sample_fps)]
    for stop_after in stops(len(whole)):
        frames = video.sample_frames(path, info, sample_fps)
        done = [next(frames) for _ in range(stop_after)]
        frames.close()
        resumed = video.sample_frames(path, info, sample_fps, after=done[-1].timestamp, first_index=stop_after)
        rest = [(frame.index, frame.timestamp, frame.image.tobytes()) for frame in resumed]
        assert rest == whole[stop_after:], f"resumed after frame {stop_after}"


def on_grid(frames: list[video.SampledFrame], sample_fps: float) -> list[video.SampledFrame]:
    """The frames sampled for the grid, without those kept for a shot cut alone."""
    return [
        frame
        for before, frame in zip([None, *frames], frames, strict=False)
        if not shots.is_cut(before and before.timestamp, frame.timestamp, sample_fps)
    ]


def ffmpeg_children() -> list[int]:
    """Our ffmpeg child processes, running or zombie, from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        # "pid (name) state ppid ...": the name may hold spaces and parentheses.
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if name == "ffmpeg" and int(fields[1]) == os.getpid():
            children.append(int(stat.parent.name))
    return children


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """Copies of the Hamilton clip made with ffmpeg: rotated, remuxed, audio only, cut short; and non-videos."""
    folder = tmp_path_factory.mktemp("videos")
    ffmpeg("-i", HAMILTON, "-c", "copy", "-metadata:s:v:0", "rotate=90", folder / "rotated.mp4")
    ffmpeg("-i", HAMILTON, "-c", "copy", folder / "remuxed.ts")
    # Written to a pipe, as a live recording is: no index (cues) and no stated length.
    with (folder / "piped.mkv").open("wb") as piped:
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", HAMILTON, "-c", "copy", "-f", "matroska", "-"],
            stdout=piped, check=True,
        )  # fmt: skip
    ffmpeg("-i", HAMILTON, "-vn", "-c:a", "copy", folder / "audio.mp4")
    ffmpeg("-i", HAMILTON, "-c", "copy", "-movflags", "+faststart", folder / "faststart.mp4")
    for source, half in ((HAMILTON, "half_short_hamilton_clip.mp4"), (folder / "faststart.mp4", "half_faststart.mp4")):
        data = source.read_bytes()
        (folder / half).write_bytes(data[: len(data) // 2])
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("not a video, just some notes\n")
    (folder / "photo.mp4").write_bytes((SAMPLES / "person_a_1.jpg").read_bytes())
    return folder


@pytest.mark.shared_data
def test_probe_hamilton_clip() -> None:
    info = video_probe.probe(HAMILTON)
    assert (info.width, info.height, info.rotation, info.codec) == (640, 360, 0, "h264")
    assert info.fps == pytest.approx(29.97, abs=0.001)
    assert info.start_time == pytest.approx(0.852, abs=0.001)
    assert 9.14 <= info.duration <= 9.18


@pytest.mark.shared_data
def test_probe_crowd_video() -> None:
    info = video_probe.probe(CROWD)
    assert (info.width, info.height, info.rotation, info.codec) == (1920, 1080, 0, "h264")
    assert info.fps == pytest.approx(25.0)
    assert info.start_time == 0.0
    assert info.duration == pytest.approx(4.2, abs=0.01)


@pytest.mark.shared_data
def test_one_frame_a_second_at_real_frame_times() -> None:
    everything = sampled(HAMILTON, 1)
    assert [frame.index for frame in everything] == list(range(13))
    frames = on_grid(everything, 1)
    timestamps = [frame.timestamp for frame in frames]
    assert len(frames) == 10
    assert timestamps[0] == 0.0
    assert np.diff(timestamps) == pytest.approx(np.ones(9), abs=HALF_FRAME)
    # Times of real frames, counted from the first: whole multiples of the frame duration, not a 1 s grid.
    assert np.array(timestamps) * 29.97 == pytest.approx(np.round(np.array(timestamps) * 29.97), abs=1e-3)
    assert all(frame.image.size == (640, 360) and frame.image.mode == "RGB" for frame in frames)


@pytest.mark.shared_data
def test_two_frames_a_second_and_the_frames_are_real() -> None:
    frames = on_grid(sampled(HAMILTON, 2), 2)
    assert len(frames) in (19, 20)  # the last frame is at 9.14 s: the interval from 9.5 s has none
    assert np.diff([frame.timestamp for frame in frames]) == pytest.approx(np.full(len(frames) - 1, 0.5), abs=0.034)
    # Near 0.5 s the wide shot of the stage; near 5 s Miranda's close-up (2.73-7.03 s from the first frame).
    wide_shot = min(frames, key=lambda frame: abs(frame.timestamp - 0.5))
    close_up = min(frames, key=lambda frame: abs(frame.timestamp - 5.0))
    assert abs(np.asarray(wide_shot.image, dtype=float).mean() - np.asarray(close_up.image, dtype=float).mean()) > 5
    assert all(a.image.tobytes() != b.image.tobytes() for a, b in zip(frames, frames[1:], strict=False))


@pytest.mark.parametrize(
    ("path", "sample_fps"),
    # 30 fps keeps every frame of the Hamilton clip: its log then overfills a pipe unless it is drained.
    [(HAMILTON, 1), (HAMILTON, 2), (HAMILTON, 30), (CROWD, 1), (CROWD, 2)],
)
@pytest.mark.shared_data
def test_expected_frames_is_what_sampling_yields_on_the_grid(path: Path, sample_fps: float) -> None:
    assert video.expected_frames(video_probe.probe(path), sample_fps) == len(
        on_grid(sampled(path, sample_fps), sample_fps)
    )


@pytest.mark.parametrize("sample_fps", [1, 2])
@pytest.mark.shared_data
def test_the_first_frame_of_each_shot_is_sampled_too(sample_fps: float) -> None:
    frames = sampled(HAMILTON, sample_fps)
    cuts = [frame.timestamp for frame in frames if frame not in on_grid(frames, sample_fps)]
    assert cuts == pytest.approx(HAMILTON_CUTS, abs=HALF_FRAME)
    assert [frame.index for frame in frames] == list(range(len(frames)))


@pytest.mark.parametrize(
    ("name", "sample_fps"),
    [("hamilton", 2), ("crowd", 3), ("mpeg-ts", 1), ("mpeg-ts", 7), ("piped-mkv", 1), ("piped-mkv", 7)],
)
@pytest.mark.shared_data
def test_an_interrupted_run_resumed_yields_what_one_run_does(
    made: Path, name: str, sample_fps: float, monkeypatch
) -> None:
    # MPEG-TS has no index: its seeks land between keyframes, or past the point asked for. The inbox does not
    # take it, but the way back to the same grid is what is tested here.
    allowed = video_probe.LOCAL_ONLY["format_whitelist"] + ",mpegts"
    monkeypatch.setitem(video_probe.LOCAL_ONLY, "format_whitelist", allowed)
    path = {"hamilton": HAMILTON, "crowd": CROWD, "mpeg-ts": made / "remuxed.ts", "piped-mkv": made / "piped.mkv"}[name]
    assert_resumes_exactly(path, sample_fps, lambda count: (1, count // 2, count - 1))


@pytest.mark.shared_data
def test_resuming_after_a_time_rounded_to_the_millisecond_skips_that_frame() -> None:
    info = video_probe.probe(HAMILTON)
    resumed = video.sample_frames(HAMILTON, info, 1, after=round(4 * 1.001, 3), first_index=5)
    assert [(frame.index, round(frame.timestamp, 3)) for frame in resumed][:2] == [(5, 5.005), (6, 6.006)]


def described(frames: list[video.SampledFrame]) -> list[tuple]:
    return [(f.index, f.timestamp, f.probes_after, [probe.timestamp for probe in f.probes]) for f in frames]


@pytest.mark.parametrize(("path", "sample_fps"), [(HAMILTON, 1.0), (HAMILTON, 0.5), (CROWD, 1.0)])
@pytest.mark.shared_data
def test_probe_frames_come_from_the_same_decoding_and_leave_the_sampled_frames_as_they_were(
    path: Path, sample_fps: float
) -> None:
    plain = sampled(path, sample_fps)
    sampler = video.sample_frames(path, video_probe.probe(path), sample_fps, probe_fps=4.0)
    with_probes = list(sampler)
    assert [(f.index, f.timestamp, f.image.tobytes()) for f in with_probes] == [
        (f.index, f.timestamp, f.image.tobytes()) for f in plain
    ]
    # Each frame's probes lie after the sampled frame before it; with those after the last frame, they are the
    # frames that sampling at 4 frames a second keeps besides the sampled ones, pixel for pixel.
    probes: list[video.ProbeFrame] = []
    for before, frame in zip([None, *with_probes], with_probes, strict=False):
        assert frame.probes_after == (before.timestamp if before else None)
        start = before.timestamp if before else -1.0
        assert all(start < probe.timestamp < frame.timestamp for probe in frame.probes)
        probes += frame.probes
    assert sampler.probes_at_end is not None
    after_last, at_end = sampler.probes_at_end
    assert after_last == with_probes[-1].timestamp
    times = {frame.timestamp for frame in plain}
    expected = [
        (frame.timestamp, frame.image.tobytes()) for frame in sampled(path, 4.0) if frame.timestamp not in times
    ]
    assert [(probe.timestamp, probe.image.tobytes()) for probe in [*probes, *at_end]] == expected
    assert len(expected) > 2 * len(plain)


@pytest.mark.shared_data
def test_a_run_with_probes_resumed_yields_the_frames_and_probes_one_run_does() -> None:
    info = video_probe.probe(HAMILTON)
    whole = list(video.sample_frames(HAMILTON, info, 1.0, probe_fps=4.0))
    resumed = video.sample_frames(HAMILTON, info, 1.0, after=whole[4].timestamp, first_index=5, probe_fps=4.0)
    assert described(list(resumed)) == described(whole[5:])


@pytest.mark.shared_data
def test_rotated_video_yields_upright_frames(made: Path) -> None:
    info = video_probe.probe(made / "rotated.mp4")
    assert (info.width, info.height) == (360, 640)
    assert info.rotation in (90, 270)
    rotated = sampled(made / "rotated.mp4", 1)
    upright = sampled(HAMILTON, 1)
    assert [frame.image.size for frame in rotated] == [(360, 640)] * len(upright)
    # PIL turns counter-clockwise; info.rotation is clockwise.
    expected = np.asarray(upright[3].image.rotate(-info.rotation, expand=True), dtype=float)
    assert np.abs(np.asarray(rotated[3].image, dtype=float) - expected).mean() < 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.mp4", "is empty (0 bytes)"),
        ("text.mp4", "is not a video that ffmpeg can read (Invalid data found when processing input)"),
        ("photo.mp4", "is a single still image (jpeg), not a video: give it its image extension"),
        ("audio.mp4", "has no video stream (it holds only audio (aac))"),
        ("half_short_hamilton_clip.mp4", "is incomplete: it starts as an MP4/MOV video but its index (moov atom)"),
    ],
)
@pytest.mark.shared_data
def test_files_that_are_not_videos_are_refused_by_probe(made: Path, name: str, message: str) -> None:
    with pytest.raises(video_probe.UnreadableVideo, match=f"^{name} ") as refused:
        video_probe.probe(made / name)
    assert message in str(refused.value)


@pytest.mark.shared_data
def test_truncated_files_lose_their_header_or_their_end(made: Path) -> None:
    # The example keeps its index (moov) at the end, so cutting it in half loses the header; faststart
    # moves it to the front, so the half keeps it and decoding runs out of data instead.
    original, faststart = HAMILTON.read_bytes(), (made / "faststart.mp4").read_bytes()
    assert original.find(b"moov") > original.find(b"mdat")
    assert faststart.find(b"moov") < faststart.find(b"mdat")


@pytest.mark.shared_data
def test_a_video_cut_short_keeps_its_frames_and_warns_of_the_rest(made: Path) -> None:
    path = made / "half_faststart.mp4"
    info = video_probe.probe(path)  # the header survived: probing cannot tell
    frames = video.sample_frames(path, info, 1)
    assert [round(frame.timestamp) for frame in on_grid(list(frames), 1)] == [0, 1, 2, 3, 4]
    [warning] = frames.warnings
    assert warning.startswith("damaged from 4.00 s to the end: ") and "Invalid NAL unit size" in warning
    assert ffmpeg_children() == []


def test_missing_file_is_not_an_unreadable_video(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        video_probe.probe(tmp_path / "gone.mp4")


@pytest.mark.shared_data
def test_a_consumer_that_stops_early_leaves_no_ffmpeg_behind() -> None:
    frames = video.sample_frames(CROWD, video_probe.probe(CROWD), 2)
    assert [frame.index for frame in (next(frames), next(frames))] == [0, 1]
    assert len(ffmpeg_children()) == 1  # blocked writing the next frame
    frames.close()
    assert ffmpeg_children() == []


@pytest.mark.shared_data
def test_a_sampler_dropped_unfinished_leaves_no_ffmpeg_behind() -> None:
    frames = video.sample_frames(CROWD, video_probe.probe(CROWD), 2)
    next(frames)
    assert len(ffmpeg_children()) == 1
    del frames  # nothing refers back to it, so ffmpeg is stopped at once, not at the next garbage collection
    assert ffmpeg_children() == []
