"""Hostile videos with the real ffmpeg: playlists, huge frames, damaged stretches, lying lengths, stalls."""

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from watchdog.events import FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver

from media_index import video, video_probe
from media_index.models import VIDEO_SUFFIXES
from tests.conftest import BASE_DIR, DATA_DIR, EXAMPLES
from tests.media_index.test_video import ffmpeg, ffmpeg_children

pytestmark = pytest.mark.processes
HAMILTON = EXAMPLES / "short_hamilton_clip.mp4"  # 640x360
CROWD = DATA_DIR / "facenet-pytorch" / "examples" / "video.mp4"  # 1920x1080, 4.2 s


def generated(path: Path, seconds: int, size: str = "320x240", rate: int = 25, *options: str) -> Path:
    """A generated video with a keyframe every second (ffmpeg's test pattern, which changes every frame)."""
    source = f"testsrc=size={size}:rate={rate}:duration={seconds}"
    ffmpeg("-f", "lavfi", "-i", source, "-c:v", "libx264", "-g", str(rate), "-pix_fmt", "yuv420p", *options, path)
    return path


def overwrite(path: Path, start: float, length: int) -> None:
    """Overwrite `length` bytes from `start` (a fraction of the file) with noise, as a bad disk or copy would."""
    data = bytearray(path.read_bytes())
    offset = int(len(data) * start)
    data[offset : offset + length] = np.random.default_rng(7).integers(0, 256, length, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def times(frames) -> list[float]:
    return [round(frame.timestamp, 2) for frame in frames]


class Opened(FileSystemEventHandler):
    """Every file opened in a watched folder (inotify), in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_any_event(self, event) -> None:
        self.events.append((event.event_type, Path(event.src_path).name))

    def wait_for(self, event: tuple[str, str]) -> None:
        for _ in range(100):
            if event in self.events:
                return
            time.sleep(0.05)
        raise AssertionError(f"inotify never reported {event}: {self.events}")


# --- Local files only --------------------------------------------------------------------------------------------


def test_every_video_suffix_has_its_demuxer_allowed() -> None:
    assert set(video_probe.DEMUXERS) == VIDEO_SUFFIXES
    listed = subprocess.run(["ffprobe", "-hide_banner", "-demuxers"], capture_output=True, text=True, check=True)
    names = {line.split()[1] for line in listed.stdout.splitlines() if line.startswith(" D")}
    assert set(video_probe.DEMUXERS.values()) <= names


@pytest.mark.shared_data
def test_a_playlist_or_file_list_saved_as_a_video_is_refused_and_nothing_outside_is_read(tmp_path: Path) -> None:
    outside, inbox = tmp_path / "outside", tmp_path / "inbox"
    outside.mkdir()
    inbox.mkdir()
    secret = generated(outside / "secret.mp4", 2)
    playlist = inbox / "playlist.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{secret}\n#EXT-X-ENDLIST\n")
    file_list = inbox / "list.mkv"
    file_list.write_text(f"ffconcat version 1.0\nfile {secret}\n")
    opened = Opened()
    observer = InotifyObserver()
    observer.schedule(opened, str(outside))
    observer.start()
    try:
        with pytest.raises(video_probe.UnreadableVideo, match="^playlist.mp4 is an HLS playlist, not a video"):
            video_probe.probe(playlist)
        with pytest.raises(video_probe.UnreadableVideo, match="^list.mkv is an ffconcat list of files, not a video"):
            video_probe.probe(file_list)
        # ffmpeg itself refuses too, should it be asked without a probe.
        info = video_probe.probe(HAMILTON)
        with pytest.raises(
            video_probe.UnreadableVideo, match="no frame of its 9.18 s could be decoded .*not on whitelist"
        ):
            list(video.sample_frames(playlist, info, 1))
        (outside / "marker").touch()
        opened.wait_for(("created", "marker"))
        assert [event for event in opened.events if event[1] == "secret.mp4"] == []
        # Without the allow-lists ffprobe follows the playlist: the watch would have seen it.
        subprocess.run(["ffprobe", "-loglevel", "quiet", str(playlist)], check=True)
        opened.wait_for(("opened", "secret.mp4"))
    finally:
        observer.stop()
        observer.join()


def test_a_pipe_named_like_a_video_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "stream.mp4")
    with pytest.raises(video_probe.UnreadableVideo, match="^stream.mp4 is not a regular file"):
        video_probe.probe(tmp_path / "stream.mp4")


# --- Frame size --------------------------------------------------------------------------------------------------


def test_a_16000x16000_video_is_refused_when_probed(tmp_path: Path) -> None:
    huge = tmp_path / "huge.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=16000x16000:r=1:d=1", "-c:v", "libx264", "-preset", "ultrafast", huge)
    with pytest.raises(video_probe.UnreadableVideo) as refused:
        video_probe.probe(huge)
    assert str(refused.value) == (
        "huge.mp4 is 16000x16000, over the limit of 40,000,000 pixels a frame (REVSEARCH_MAX_VIDEO_PIXELS):"
        " it is not decoded"
    )


@pytest.mark.shared_data
def test_the_pixel_limit_is_a_setting(settings) -> None:
    settings.MAX_VIDEO_PIXELS = 640 * 360 - 1
    with pytest.raises(video_probe.UnreadableVideo, match="is 640x360, over the limit of 230,399 pixels"):
        video_probe.probe(HAMILTON)
    settings.MAX_VIDEO_PIXELS = 640 * 360
    assert video_probe.probe(HAMILTON).width == 640


@pytest.mark.shared_data
def test_large_frames_are_scaled_down_inside_ffmpeg(settings) -> None:
    full = next(video.sample_frames(CROWD, video_probe.probe(CROWD), 1)).image
    settings.VIDEO_FRAME_MAX_SIDE = 480
    info = video_probe.probe(CROWD)
    assert (info.width, info.height, info.frame_width, info.frame_height) == (1920, 1080, 480, 270)
    frames = video.sample_frames(CROWD, info, 1)
    small = next(frames).image
    frames.close()
    assert small.size == (480, 270)
    expected = np.asarray(full.resize((480, 270), Image.Resampling.BOX), dtype=float)
    assert np.abs(np.asarray(small, dtype=float) - expected).mean() < 3


@pytest.mark.shared_data
def test_a_rotated_video_is_scaled_to_its_upright_size(tmp_path: Path, settings) -> None:
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", HAMILTON, "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated)
    settings.VIDEO_FRAME_MAX_SIDE = 320
    info = video_probe.probe(rotated)
    assert (info.frame_width, info.frame_height) == (180, 320)
    frames = video.sample_frames(rotated, info, 1)
    assert next(frames).image.size == (180, 320)
    frames.close()


# --- Damage ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_damaged_stretch_costs_only_its_own_frames_and_is_named(tmp_path: Path, suffix: str) -> None:
    clean = generated(tmp_path / f"clean{suffix}", 10)
    damaged = tmp_path / f"damaged{suffix}"
    damaged.write_bytes(clean.read_bytes())
    overwrite(damaged, 0.5, 4000)
    info = video_probe.probe(damaged)
    whole = {round(frame.timestamp, 2): frame.image.tobytes() for frame in video.sample_frames(clean, info, 1)}
    frames = video.sample_frames(damaged, info, 1)
    kept = {round(frame.timestamp, 2): frame.image.tobytes() for frame in frames}

    [warning] = frames.warnings
    start, end = frames.damage[0].start, frames.damage[0].end
    assert 2 <= start < end <= 8, warning
    assert warning.startswith(f"damaged from {start:.2f} s to {end:.2f} s: ") and "decoding errors" in warning
    # Every frame outside the stretch is there, exactly as in the undamaged file; any that differ lie within it
    # (the frame that ends it may be one the errors were about).
    outside = [time for time in whole if time < start or time > end]
    assert len(outside) >= 7 and end - start <= 3
    assert all(kept.get(time) == whole[time] for time in outside)
    assert all(start <= time <= end for time, image in kept.items() if image != whole[time])
    assert ffmpeg_children() == []


def test_a_video_where_nothing_decodes_still_fails(tmp_path: Path) -> None:
    path = generated(tmp_path / "noise.mp4", 4, "320x240", 25, "-movflags", "+faststart")
    data = path.read_bytes()
    media = data.index(b"mdat") + 4
    path.write_bytes(data[:media] + np.random.default_rng(3).bytes(len(data) - media))
    info = video_probe.probe(path)
    with pytest.raises(
        video_probe.UnreadableVideo, match=r"^noise.mp4 is damaged: no frame of its 4.00 s could be decoded"
    ):
        list(video.sample_frames(path, info, 1))
    assert ffmpeg_children() == []


def test_a_damaged_stretch_is_named_once_when_a_run_resumes_after_it(tmp_path: Path) -> None:
    path = generated(tmp_path / "damaged.mp4", 10)
    overwrite(path, 0.5, 4000)
    info = video_probe.probe(path)
    frames = video.sample_frames(path, info, 1)
    first = [next(frames) for _ in range(8)]  # past the damage
    frames.close()
    assert len(frames.warnings) == 1
    resumed = video.sample_frames(path, info, 1, after=first[-1].timestamp, first_index=8)
    assert times(resumed) == [8.0, 9.0]
    assert resumed.warnings == []


# --- Streams that do not end ---------------------------------------------------------------------------------------


def test_a_stream_longer_than_its_file_states_is_stopped_past_that_length(tmp_path: Path) -> None:
    path = generated(tmp_path / "liar.mkv", 120, "64x48", 5)
    data = bytearray(path.read_bytes())
    duration = data.index(b"\x44\x89\x88") + 3  # Matroska's Duration element: an 8-byte float, milliseconds
    assert struct.unpack(">d", data[duration : duration + 8]) == (120_000.0,)
    data[duration : duration + 8] = struct.pack(">d", 2000.0)
    path.write_bytes(bytes(data))
    info = video_probe.probe(path)
    assert info.duration == 2.0
    frames = video.sample_frames(path, info, 1)
    # 2 s plus the margin of video.OVERRUN_SECONDS (10 s) are read, out of 120.
    assert times(frames) == [float(second) for second in range(13)]
    assert frames.warnings == [
        "the stream runs on past the length its file states (2.00 s): reading stopped at 13.00 s"
    ]
    assert ffmpeg_children() == []


def test_a_video_without_a_stated_length_is_read_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "live.webm"
    with path.open("wb") as out:  # as a browser's recorder writes it: no length in the header
        source = ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=20"]
        subprocess.run([*source, "-c:v", "libvpx", "-f", "webm", "-"], stdout=out, check=True)
    info = video_probe.probe(path)
    assert info.duration == 0.0
    frames = video.sample_frames(path, info, 1)
    assert times(frames) == [float(second) for second in range(20)]
    assert frames.warnings == []


@pytest.mark.shared_data
def test_an_ffmpeg_that_stalls_is_stopped_and_the_video_fails(settings) -> None:
    settings.VIDEO_STALL_SECONDS = 1
    frames = video.sample_frames(CROWD, video_probe.probe(CROWD), 2)
    next(frames)
    [decoder] = ffmpeg_children()
    os.kill(decoder, signal.SIGSTOP)  # it still runs, but gives nothing
    with pytest.raises(
        video_probe.UnreadableVideo, match=r"ffmpeg produced no frame for 1 s after 0.00 s, so it was stopped"
    ):
        next(frames)
    assert ffmpeg_children() == []


@pytest.mark.shared_data
def test_an_ffprobe_that_hangs_is_stopped(tmp_path: Path, settings, monkeypatch) -> None:
    hanging = tmp_path / "ffprobe"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(video_probe, "FFPROBE", str(hanging))
    settings.VIDEO_STALL_SECONDS = 1
    with pytest.raises(
        video_probe.UnreadableVideo, match=r"^short_hamilton_clip.mp4: ffprobe did not finish within 1 s"
    ):
        video_probe.probe(HAMILTON)


@pytest.mark.skipif(video_probe.SETPRIV is None, reason="setpriv (util-linux) is not installed")
@pytest.mark.shared_data
def test_ffmpeg_dies_with_the_process_that_started_it() -> None:
    # A worker killed at its hard time limit while ffmpeg is stuck: ffmpeg must not live on.
    script = f"""
import os, signal, django
os.environ["DJANGO_SETTINGS_MODULE"] = "revsearch_site.settings"
django.setup()
from pathlib import Path
from media_index import video, video_probe
from tests.media_index.test_video import ffmpeg_children
frames = video.sample_frames(Path({str(CROWD)!r}), video_probe.probe(Path({str(CROWD)!r})), 1)
next(frames)
[decoder] = ffmpeg_children()
os.kill(decoder, signal.SIGSTOP)
print(decoder, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    worker = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, capture_output=True, text=True)
    assert worker.returncode == -signal.SIGKILL, worker.stderr
    decoder = int(worker.stdout)
    for _ in range(100):
        if not Path(f"/proc/{decoder}").exists():
            break
        time.sleep(0.05)
    else:
        os.kill(decoder, signal.SIGKILL)
        pytest.fail(f"ffmpeg (pid {decoder}) outlived the process that started it")


@pytest.mark.shared_data
def test_a_video_within_the_limits_is_sampled_at_its_own_size_without_warnings() -> None:
    info = video_probe.probe(HAMILTON)
    assert (info.frame_width, info.frame_height) == (info.width, info.height) == (640, 360)
    frames = video.sample_frames(HAMILTON, info, 1)
    assert len(list(frames)) == 13 and frames.warnings == []  # 10 a second apart, and one after each of 3 cuts
