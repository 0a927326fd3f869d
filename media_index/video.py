"""Video sampling: stream the sampled frames of a probed video out of ffmpeg, one at a time.

Frames keep their real presentation times: ffmpeg's `select` filter picks the first frame of each sampling
interval and of each shot (shots.py), `showinfo` reports that frame's time on stderr, and nothing is duplicated.

ffmpeg reads the inbox's containers only (video_probe.LOCAL_ONLY), frames are held to MAX_VIDEO_PIXELS and large
ones scaled down inside ffmpeg, it is stopped when it goes VIDEO_STALL_SECONDS without a frame, and a stream is
not read far past its stated length. A stretch the decoder reports errors in costs only its own frames: it is
named in `FrameSampler.warnings`.
"""

import contextlib
import itertools
import logging
import math
import subprocess
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import PIL.Image
from django.conf import settings

from . import ffmpeg_log, shots, video_decode
from .ffmpeg_log import Errors, FfmpegLog
from .video_probe import UnreadableVideo, VideoInfo, guarded

logger = logging.getLogger(__name__)

FFMPEG = "ffmpeg"
# Seconds within which two times are the same frame's (frames are never this close together): the sampling
# grid's lines move this much earlier, so that rounding never puts a frame exactly on a line in the interval
# before it, and a resumed run skips the frame at `after` even if that time was rounded on its way back.
TIME_TOLERANCE = 1e-3
# A resumed run seeks this many seconds before the last frame handled, so that decoding starts at or before it;
# when a seek lands past it all the same, the next margin is tried, and None decodes from the beginning.
RESUME_MARGINS = (1.0, 10.0, 60.0, None)
# A stream is read at most this far past the length its file states (a header that lies, or times that run away),
# so that no file keeps a worker decoding for ever: OVERRUN_SECONDS, or OVERRUN_FRACTION of the length if more.
OVERRUN_SECONDS = 10.0
OVERRUN_FRACTION = 0.1
# The filters that turn frames clockwise by VideoInfo.rotation degrees, as ffmpeg's autorotate would.
ROTATION_FILTERS: dict[int, list[tuple[str, str | None]]] = {
    90: [("transpose", "clock")],
    180: [("hflip", None), ("vflip", None)],
    270: [("transpose", "cclock")],
}


@dataclass(frozen=True)
class ProbeFrame:
    """A frame between two sampled frames, kept for placing track edges there (spans.py); seconds from the first."""

    timestamp: float
    image: PIL.Image.Image  # as a sampled frame's


@dataclass(frozen=True)
class SampledFrame:
    """One sampled frame: index counts sampled frames from 0; timestamp is seconds from the first video frame."""

    index: int
    timestamp: float
    image: PIL.Image.Image  # RGB, upright, VideoInfo.frame_width x frame_height
    # With probe_fps (sample_frames): the probe frames after the sampled frame at probes_after (None: none before).
    probes: tuple[ProbeFrame, ...] = ()
    probes_after: float | None = None


@dataclass(frozen=True)
class Damage:
    """A stretch the decoder reported errors in, between the sampled frames around it (seconds from the first)."""

    start: float | None  # the last frame before the errors; None: they came before the first frame
    end: float | None  # the first frame after them; None: no frame came after them
    errors: int
    messages: tuple[str, ...]  # the first few distinct ones

    def describe(self) -> str:
        start = "the start" if self.start is None else f"{self.start:.2f} s"
        end = "the end" if self.end is None else f"{self.end:.2f} s"
        return (
            f"damaged from {start} to {end}: {self.errors} decoding errors ({'; '.join(self.messages)}); "
            "frames in between are missing or may look broken, the others were kept"
        )


def expected_frames(info: VideoInfo, sample_fps: float) -> int:
    """How many frames sample_frames yields for the whole video, for progress (the grid's: shot cuts add more)."""
    frames = max(1, round(info.duration * info.fps))
    if sample_fps >= info.fps:
        return frames  # every interval holds at most one frame, so every frame is sampled
    last = (frames - 1) / info.fps
    return math.floor((last + TIME_TOLERANCE) * sample_fps) + 1


def sample_frames(
    path: Path,
    info: VideoInfo,
    sample_fps: float,
    after: float | None = None,
    first_index: int = 0,
    probe_fps: float | None = None,
) -> "FrameSampler":
    """The first frame of each 1/sample_fps interval (counted from the first frame) and of each shot, upright RGB.

    With probe_fps, the first frame of each 1/probe_fps interval of the same grid is decoded too, in the same pass,
    and comes with the sampled frame after it (`probes`; those after the last, in `FrameSampler.probes_at_end`):
    placing track edges then needs no second decoding. The sampled frames are the same either way.

    1. ffmpeg decodes the video stream (from a keyframe a little before `after` when resuming) and `select`
       keeps a frame when it starts a new interval of a grid anchored at the first frame, or a new shot, so a
       resumed run keeps the same frames as an uninterrupted one; `showinfo` logs each kept frame's pts on stderr.
    2. A thread drains stderr: it pairs the kept frames' times with the error lines logged before each.
    3. Frames are read from stdout one at a time and paired in order with their times; those before `after`,
       or within TIME_TOLERANCE after it, are skipped.
    4. Errors between two frames, or after the last, become a damaged stretch in the sampler's `warnings`; a
       fresh run that decodes no frame at all, or an ffmpeg that goes VIDEO_STALL_SECONDS without a frame, raise
       UnreadableVideo. A stream running well past its stated length is stopped there, with a warning.
    """
    if sample_fps <= 0 or (probe_fps is not None and probe_fps <= 0):
        raise ValueError(f"sample_fps and probe_fps must be positive, not {sample_fps} and {probe_fps}")
    sampling = _Sampling(path, info, probe_fps)
    return FrameSampler(sampling, sampling.sample(sample_fps, after, first_index))


class FrameSampler(Iterator[SampledFrame]):
    """The sampled frames of one run (see sample_frames); `warnings` names the damage passed so far.

    Close it when stopping early: that stops ffmpeg (as does dropping it: nothing refers back to it).
    """

    def __init__(self, sampling: "_Sampling", frames: Generator[SampledFrame, None, None]) -> None:
        self._sampling, self._frames = sampling, frames

    @property
    def damage(self) -> list[Damage]:
        return self._sampling.damage

    @property
    def warnings(self) -> list[str]:
        """What went wrong without costing the video: damaged stretches, then a stream stopped past its length."""
        return [damage.describe() for damage in self._sampling.damage] + self._sampling.notes

    @property
    def probes_at_end(self) -> tuple[float | None, tuple[ProbeFrame, ...]] | None:
        """Once every frame is read: the last sampled frame's time and the probe frames after it (None before)."""
        return self._sampling.probes_at_end

    def __next__(self) -> SampledFrame:
        return next(self._frames)

    def close(self) -> None:
        self._frames.close()


class _Sampling:
    """One run's frames, and the damage and notes gathered on the way."""

    def __init__(self, path: Path, info: VideoInfo, probe_fps: float | None) -> None:
        self.path, self.info, self.probe_fps = path, info, probe_fps
        self.damage: list[Damage] = []
        self.notes: list[str] = []
        self.probes_at_end: tuple[float | None, tuple[ProbeFrame, ...]] | None = None

    def sample(self, sample_fps: float, after: float | None, first_index: int) -> Generator[SampledFrame, None, None]:
        started = time.monotonic()
        index = first_index
        size = (self.info.frame_width, self.info.frame_height)
        probes: list[ProbeFrame] = []
        probes_after = after
        with contextlib.closing(self._frames_after(sample_fps, after)) as frames:
            for timestamp, data, sampled in frames:
                image = PIL.Image.frombytes("RGB", size, data)
                if not sampled:
                    probes.append(ProbeFrame(timestamp, image))
                    continue
                yield SampledFrame(index, timestamp, image, tuple(probes), probes_after)
                probes, probes_after = [], timestamp
                index += 1
        self.probes_at_end = (probes_after, tuple(probes))
        logger.info(
            "sampled %d frames of %s at %g fps in %.1f s",
            index - first_index, self.path, sample_fps, time.monotonic() - started,
        )  # fmt: skip

    def _frames_after(self, sample_fps: float, after: float | None) -> Generator[tuple[float, bytes, bool], None, None]:
        """(timestamp, RGB bytes, whether sampled or a probe) of the frames later than `after`, seeking to it when set.

        The grid is the same as an uninterrupted run's only if decoding starts at or before `after`: when a seek
        lands past it (containers without an index), decoding starts again from further back."""
        if after is None:
            with contextlib.closing(_Decoding(self.path, self.info, sample_fps, None, self.probe_fps)) as decoding:
                yield from self._take(decoding, decoding.frames, None)
            return
        handled = after + TIME_TOLERANCE
        for margin in RESUME_MARGINS:
            seek_to = None if margin is None else self.info.start_time + after - margin
            with contextlib.closing(_Decoding(self.path, self.info, sample_fps, seek_to, self.probe_fps)) as decoding:
                first = next(decoding.frames, None)
                # Nothing decoded (unless ffmpeg stalled), or only frames after the one to resume from.
                landed_past = first[0] > handled if first is not None else not decoding.stalled
                if seek_to is not None and landed_past:
                    logger.info(
                        "seek in %s to %.2f s landed past %.2f s: seeking further back", self.path, seek_to, after
                    )
                    continue
                frames = decoding.frames if first is None else itertools.chain([first], decoding.frames)
                yield from self._take(decoding, frames, handled)
            return

    def _take(
        self, decoding: "_Decoding", frames: Iterator, handled: float | None
    ) -> Iterator[tuple[float, bytes, bool]]:
        """The frames after `handled`, noting the damage between them; what ffmpeg's end means for the video."""
        name, duration = self.path.name, self.info.duration
        # A length of 0 is unknown (a WebM recorded live): nothing to hold the stream to.
        stop_at = duration + max(OVERRUN_SECONDS, OVERRUN_FRACTION * duration) if duration > 0 else math.inf
        previous = None  # the time of the last frame decoded, yielded or skipped
        yielded = False
        for timestamp, data, errors, sampled in frames:
            if handled is not None and timestamp <= handled:
                previous = timestamp  # an earlier run had this frame, and noted any damage before it
                continue
            if timestamp > stop_at:
                self.notes.append(
                    f"the stream runs on past the length its file states ({duration:.2f} s): reading stopped at"
                    f" {timestamp:.2f} s"
                )
                return  # closing the decoding stops ffmpeg
            if errors:
                self._damaged(previous, timestamp, errors)
            yield timestamp, data, sampled
            previous, yielded = timestamp, True
        if decoding.stalled:
            reached = "before its first frame" if previous is None else f"after {previous:.2f} s"
            raise UnreadableVideo(
                f"{name}: ffmpeg produced no frame for {settings.VIDEO_STALL_SECONDS} s {reached}, so it was stopped"
                " (REVSEARCH_VIDEO_STALL_SECONDS)"
            )
        errors = decoding.log.trailing
        if decoding.returncode:
            errors.add(f"ffmpeg exit status {decoding.returncode}")
        if not yielded and handled is None:
            problems = "; ".join(errors.messages) or "no message"
            logger.warning("decoding %s yielded no frame: %s", self.path, problems)
            raise UnreadableVideo(f"{name} is damaged: no frame of its {duration:.2f} s could be decoded ({problems})")
        if errors.count:
            self._damaged(previous, None, errors)

    def _damaged(self, start: float | None, end: float | None, errors: "Errors") -> None:
        """Note errors between two frames; a stretch that goes on from the last one noted extends it."""
        last = self.damage[-1] if self.damage else None
        if last is not None and last.end is not None and start is not None and abs(last.end - start) < TIME_TOLERANCE:
            messages = last.messages + tuple(m for m in errors.messages if m not in last.messages)
            self.damage[-1] = Damage(last.start, end, last.errors + errors.count, messages[: ffmpeg_log.ERROR_MESSAGES])
        else:
            self.damage.append(Damage(start, end, errors.count, tuple(errors.messages)))


class _Decoding:
    """One ffmpeg run: `frames` gives (timestamp, RGB bytes, errors logged before it, whether it is a sampled frame
    rather than a probe) for each selected frame; once it is exhausted, `returncode`, `stalled` and `log.trailing`
    say how ffmpeg ended."""

    def __init__(
        self, path: Path, info: VideoInfo, sample_fps: float, seek_to: float | None, probe_fps: float | None
    ) -> None:
        self.info, self.sample_fps, self.probe_fps = info, sample_fps, probe_fps
        self.process = _start_ffmpeg(path, info, sample_fps, seek_to, probe_fps)
        assert self.process.stderr is not None  # a pipe, as is stdout
        # After a seek, errors before the first frame come from starting between keyframes and are not counted.
        self.log = FfmpegLog(self.process.stderr, count_leading_errors=seek_to is None)
        self.frame_bytes = info.frame_width * info.frame_height * 3
        self.stalled = False
        self.returncode: int | None = None
        self.frames = self._frames()

    def _frames(self) -> Generator[tuple[float, bytes, "Errors | None", bool], None, None]:
        cut = None
        kept_before = None  # the container time of the frame kept before
        while data := self._read():
            if len(data) < self.frame_bytes:
                cut = f"ffmpeg stopped in the middle of a frame ({len(data)} of {self.frame_bytes} bytes)"
                break
            pts_time, errors, scene = self.log.next_frame()
            # Without probes every frame kept is sampled; with them, a sampled frame is one the expression without
            # probes keeps: it starts a sampling interval or a shot (shots.select_expression).
            sampled = (
                self.probe_fps is None
                or shots.starts_interval(kept_before, pts_time, self.info.start_time - TIME_TOLERANCE, self.sample_fps)
                or scene > shots.SCENE_THRESHOLD
            )
            kept_before = pts_time
            yield pts_time - self.info.start_time, data, errors, sampled
        self.returncode = self.process.wait()
        self.log.join()
        if cut:
            self.log.trailing.add(cut)

    def _read(self) -> bytes:
        """The next frame's bytes; ffmpeg is killed if it does not come within VIDEO_STALL_SECONDS."""
        assert self.process.stdout is not None  # a pipe
        watchdog = threading.Timer(settings.VIDEO_STALL_SECONDS, self._stall)
        watchdog.daemon = True
        watchdog.start()
        try:
            return self.process.stdout.read(self.frame_bytes)
        finally:
            watchdog.cancel()

    def _stall(self) -> None:
        self.stalled = True
        logger.warning(
            "ffmpeg (pid %s) produced no frame for %s s: stopping it", self.process.pid, settings.VIDEO_STALL_SECONDS
        )
        self.process.kill()

    def close(self) -> None:
        self.frames.close()
        _stop(self.process, self.log)


def _start_ffmpeg(
    path: Path, info: VideoInfo, sample_fps: float, seek_to: float | None, probe_fps: float | None
) -> subprocess.Popen:
    """ffmpeg writing the selected frames as raw RGB to stdout and its log (with showinfo's lines, and with probes
    each frame's scene score) to stderr."""
    input_options = video_decode.input_options(seek_to)  # what is read and decoded, from where
    # The first frame of each interval of the grid (and of the probes' grid), and the first frame of each shot.
    selected = shots.select_expression(info.start_time - TIME_TOLERANCE, sample_fps, probe_fps)
    stream = ffmpeg.input(str(path.absolute()), **input_options)["V:0"]
    stream = stream.filter("select", selected)
    if probe_fps is not None:  # which frames are a shot's first: select puts the score it used on every frame
        stream = stream.filter("metadata", mode="print", key=ffmpeg_log.SCENE_SCORE_KEY)
    stream = stream.filter("showinfo")
    # Only the kept frames are scaled and turned; large ones shrink before they are turned and piped.
    if (info.frame_width, info.frame_height) != (info.width, info.height):
        stored = (
            (info.frame_height, info.frame_width)
            if info.rotation in (90, 270)
            else (info.frame_width, info.frame_height)
        )
        stream = stream.filter("scale", *stored, flags="area")
    for name, argument in ROTATION_FILTERS.get(info.rotation, []):
        stream = stream.filter(name, argument) if argument else stream.filter(name)
    stream = stream.output(
        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{info.frame_width}x{info.frame_height}", fps_mode="passthrough"
    )
    command = [FFMPEG, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info", "-copyts"]
    arguments = guarded(stream.compile(cmd=command))
    logger.debug("running %s", " ".join(arguments))
    return subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stop(process: subprocess.Popen, log: FfmpegLog) -> None:
    """Kill ffmpeg if it still runs (the consumer stopped early), reap it and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait()
    log.join()
    assert process.stdout is not None and process.stderr is not None  # pipes
    process.stdout.close()
    process.stderr.close()
