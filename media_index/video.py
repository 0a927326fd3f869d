"""Video adapter: probe a file with ffprobe and stream sampled frames out of ffmpeg, one at a time.

Frames keep their real presentation times: ffmpeg's `select` filter picks the first frame of each sampling
interval, `showinfo` reports that frame's time on stderr, and nothing is duplicated or resampled.
"""

import collections
import contextlib
import io
import itertools
import logging
import math
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg
import PIL.Image

logger = logging.getLogger(__name__)

# Decoder threads: ffmpeg should not fight the face engine for the machine's two cores.
DECODE_THREADS = 2
# Seconds within which two times are the same frame's (frames are never this close together): the sampling
# grid's lines move this much earlier, so that rounding never puts a frame exactly on a line in the interval
# before it, and a resumed run skips the frame at `after` even if that time was rounded on its way back.
TIME_TOLERANCE = 1e-3
# A resumed run seeks this many seconds before the last frame handled, so that decoding starts at or before it;
# when a seek lands past it all the same, the next margin is tried, and None decodes from the beginning.
RESUME_MARGINS = (1.0, 10.0, 60.0, None)
# Containers that ffprobe reads as a single picture, not a stream of frames.
STILL_IMAGE_FORMATS = re.compile(r"_pipe$|^image2$")
# The filters that turn frames clockwise by VideoInfo.rotation degrees, as ffmpeg's autorotate would.
ROTATION_FILTERS = {
    90: [("transpose", "clock")],
    180: [("hflip", None), ("vflip", None)],
    270: [("transpose", "cclock")],
}
# "[h264 @ 0x55d0] [error] message": ffmpeg's log with `-loglevel level+info`; the context is optional.
LOG_LINE = re.compile(r"^(?:\[[^\]]+ @ 0x[0-9a-f]+\] )?\[(?P<level>[a-z]+)\] (?P<message>.*)$")
SHOWINFO_TIME_BASE = re.compile(r"^config in time_base: (?P<num>\d+)/(?P<den>\d+)")
SHOWINFO_FRAME = re.compile(r"^n:\s*\d+ pts:\s*(?P<pts>\S+) ")
ERROR_LEVELS = {"error", "fatal", "panic"}


class UnreadableVideo(Exception):
    """The file is not a video that can be decoded; the message says why, in words a user can act on."""


@dataclass(frozen=True)
class VideoInfo:
    """What probing found. width/height are of the decoded frames, i.e. after rotation; times in seconds."""

    duration: float  # length of the video stream (last frame end - first frame), seconds
    fps: float  # average frame rate of the video stream
    width: int
    height: int
    rotation: int  # degrees clockwise that ffmpeg turns the stored frames to show them upright: 0, 90, 180, 270
    start_time: float  # container time of the first video frame (0.852 for the Hamilton clip)
    codec: str


@dataclass(frozen=True)
class SampledFrame:
    """One sampled frame: index counts sampled frames from 0; timestamp is seconds from the first video frame."""

    index: int
    timestamp: float
    image: PIL.Image.Image  # RGB, upright


def probe(path: Path) -> VideoInfo:
    """The video stream's size, rate and times; UnreadableVideo when there is nothing to decode."""
    if path.stat().st_size == 0:  # a missing file raises FileNotFoundError here
        raise UnreadableVideo(f"{path.name} is empty (0 bytes): the copy may not have finished")
    try:
        found = ffmpeg.probe(str(path.absolute()), v="error")
    except ffmpeg.Error as error:
        raise UnreadableVideo(_probe_failure(path, error.stderr.decode(errors="replace"))) from None
    format_name = found["format"].get("format_name", "")
    streams = found["streams"]
    # Cover pictures of music files are video streams too; ffmpeg's `V` stream specifier skips them as well.
    videos = [s for s in streams if s["codec_type"] == "video" and not s.get("disposition", {}).get("attached_pic")]
    if not videos:
        others = ", ".join(f"{s['codec_type']} ({s.get('codec_name', 'unknown')})" for s in streams)
        raise UnreadableVideo(f"{path.name} has no video stream (it holds only {others or 'nothing'})")
    stream = videos[0]
    codec = stream.get("codec_name", "unknown")
    if STILL_IMAGE_FORMATS.search(format_name):
        raise UnreadableVideo(
            f"{path.name} is a single still image ({codec}), not a video: "
            "give it its image extension (such as .jpg) to index it as a photo"
        )
    if not stream.get("width") or not stream.get("height"):
        raise UnreadableVideo(f"{path.name} has a video stream ({codec}) that this ffmpeg cannot decode")
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    if not fps:
        raise UnreadableVideo(f"{path.name} has a video stream without a frame rate, which cannot be sampled")
    rotation = _rotation(stream)
    width, height = stream["width"], stream["height"]
    if rotation in (90, 270):
        width, height = height, width
    info = VideoInfo(
        duration=_duration(stream, found["format"]),
        fps=float(fps),
        width=width,
        height=height,
        rotation=rotation,
        start_time=_start_time(stream),
        codec=codec,
    )
    logger.debug("probed %s: %s", path, info)
    return info


def expected_frames(info: VideoInfo, sample_fps: float) -> int:
    """How many frames sample_frames yields for the whole video, for progress (exact for a constant rate)."""
    frames = max(1, round(info.duration * info.fps))
    if sample_fps >= info.fps:
        return frames  # every interval holds at most one frame, so every frame is sampled
    last = (frames - 1) / info.fps
    return math.floor((last + TIME_TOLERANCE) * sample_fps) + 1


def sample_frames(
    path: Path, info: VideoInfo, sample_fps: float, after: float | None = None, first_index: int = 0
) -> Iterator[SampledFrame]:
    """The first frame of each 1/sample_fps interval (counted from the first frame), upright RGB, with its time.

    1. ffmpeg decodes the video stream (from a keyframe a little before `after` when resuming) and `select`
       keeps a frame when it starts a new interval of a grid anchored at the first frame, so a resumed run
       keeps the same frames as an uninterrupted one; `showinfo` logs each kept frame's pts on stderr.
    2. A thread drains stderr: it queues the kept frames' times and remembers error lines.
    3. Frames are read from stdout one at a time and paired in order with their times; those before `after`,
       or within TIME_TOLERANCE after it, are skipped.
    4. At the end, error lines or a failed exit raise UnreadableVideo after the frames that did decode.
    """
    if sample_fps <= 0:
        raise ValueError(f"sample_fps must be positive, not {sample_fps}")
    started = time.monotonic()
    index = first_index
    with contextlib.closing(_frames_after(path, info, sample_fps, after)) as frames:
        for timestamp, data in frames:
            yield SampledFrame(index, timestamp, PIL.Image.frombytes("RGB", (info.width, info.height), data))
            index += 1
    logger.info(
        "sampled %d frames of %s at %g fps in %.1f s", index - first_index, path, sample_fps, time.monotonic() - started
    )


def _frames_after(path: Path, info: VideoInfo, sample_fps: float, after: float | None) -> Iterator[tuple[float, bytes]]:
    """(timestamp, RGB bytes) of the selected frames later than `after`, seeking to it when it is set.

    The grid is the same as an uninterrupted run's only if decoding starts at or before `after`: when a seek
    lands past it (containers without an index, such as MPEG-TS), decoding starts again from further back."""
    if after is None:
        yield from _decode(path, info, sample_fps, None)
        return
    handled = after + TIME_TOLERANCE
    for margin in RESUME_MARGINS:
        seek_to = None if margin is None else info.start_time + after - margin
        with contextlib.closing(_decode(path, info, sample_fps, seek_to)) as decoded:
            first = next(decoded, None)
            if seek_to is not None and (first is None or first[0] > handled):
                logger.info("seek in %s to %.2f s landed past %.2f s: seeking further back", path, seek_to, after)
                continue
            if first is not None:
                frames = itertools.chain([first], decoded)
                yield from ((timestamp, data) for timestamp, data in frames if timestamp > handled)
            return


def _decode(path: Path, info: VideoInfo, sample_fps: float, seek_to: float | None) -> Iterator[tuple[float, bytes]]:
    """(timestamp, RGB bytes) of each selected frame; UnreadableVideo at the end if ffmpeg reported errors.

    After a seek, errors before the first frame come from starting between keyframes and are not counted."""
    process = _start_ffmpeg(path, info, sample_fps, seek_to)
    log = _FfmpegLog(process.stderr, count_leading_errors=seek_to is None)
    frame_bytes = info.width * info.height * 3
    try:
        while data := process.stdout.read(frame_bytes):
            if len(data) < frame_bytes:
                log.errors.append(f"ffmpeg stopped in the middle of a frame ({len(data)} of {frame_bytes} bytes)")
                break
            yield log.next_time() - info.start_time, data
        process.wait()
        log.join()
        if process.returncode or log.errors:
            reached = (
                "no frame was read" if log.last_time is None else f"read up to {log.last_time - info.start_time:.2f} s"
            )
            exit_status = f", ffmpeg exit status {process.returncode}" if process.returncode else ""
            # The last distinct messages, in order: the first ones are often consequences of the same damage.
            problems = "; ".join(list(dict.fromkeys(log.errors))[-3:]) or "no message"
            logger.warning("decoding %s failed%s: %s", path, exit_status, problems)
            raise UnreadableVideo(
                f"{path.name} is damaged or cut short ({reached} of {info.duration:.2f} s{exit_status}): {problems}"
            )
    finally:
        _stop(process, log)


def _start_ffmpeg(path: Path, info: VideoInfo, sample_fps: float, seek_to: float | None) -> subprocess.Popen:
    """ffmpeg writing the selected frames as raw RGB to stdout and its log (with showinfo's lines) to stderr."""
    input_options = {"threads": DECODE_THREADS, "autorotate": 0}
    if seek_to is not None:
        # Seek on the container's own timeline (-seek_timestamp) to the keyframe before the target
        # (-noaccurate_seek); -copyts keeps every frame's original time, so the grid below stays the same.
        input_options |= {"ss": f"{max(0.0, seek_to):.6f}", "seek_timestamp": 1, "noaccurate_seek": None}
    origin = info.start_time - TIME_TOLERANCE
    # prev_t is the previous decoded frame's time: a frame is kept when its interval number is higher, and
    # the first decoded frame is always kept (when resuming it lies before `after` and is skipped).
    interval = f"floor((t-({origin:.9f}))*{sample_fps:.9f})"
    selected = f"if(isnan(prev_t),1,gt({interval},{interval.replace('(t-', '(prev_t-')}))"
    stream = ffmpeg.input(str(path.absolute()), **input_options)["V:0"]
    stream = stream.filter("select", selected).filter("showinfo")
    # Frames are turned after selection, so only the kept ones pay for it.
    for name, argument in ROTATION_FILTERS.get(info.rotation, []):
        stream = stream.filter(name, argument) if argument else stream.filter(name)
    stream = stream.output(
        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{info.width}x{info.height}", fps_mode="passthrough"
    )
    command = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info", "-copyts"]
    logger.debug("running %s", " ".join(stream.compile(cmd=command)))
    return stream.run_async(cmd=command, pipe_stdout=True, pipe_stderr=True)


class _FfmpegLog:
    """Drains ffmpeg's stderr in a thread (a full pipe would stall ffmpeg) and keeps what sampling needs."""

    def __init__(self, stderr: io.BufferedReader, count_leading_errors: bool) -> None:
        self.errors: collections.deque[str] = collections.deque(maxlen=10)
        self.last_time: float | None = None
        self._stderr = stderr
        self._count_leading_errors = count_leading_errors
        self._times: queue.SimpleQueue[float | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name="ffmpeg-stderr", daemon=True)
        self._thread.start()

    def next_time(self) -> float:
        """The container time of the next frame on stdout (showinfo logs it before the frame is written)."""
        pts_time = self._times.get()
        if pts_time is None:
            raise RuntimeError("ffmpeg wrote a frame that showinfo did not report")
        return pts_time

    def join(self) -> None:
        self._thread.join()

    def _drain(self) -> None:
        time_base = None
        try:
            # Universal newlines: ffmpeg ends some lines with a carriage return.
            with io.TextIOWrapper(self._stderr, encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    match = LOG_LINE.match(line.rstrip())
                    if not match:
                        continue
                    message = match["message"]
                    if match["level"] in ERROR_LEVELS:
                        if self._count_leading_errors or self.last_time is not None:
                            self.errors.append(message)
                    elif base := SHOWINFO_TIME_BASE.match(message):
                        time_base = Fraction(int(base["num"]), int(base["den"]))
                    elif frame := SHOWINFO_FRAME.match(message):
                        # From pts, not showinfo's pts_time, which has only 6 significant digits. A frame
                        # without a time (NOPTS) stops the thread, and sampling, rather than be paired wrongly.
                        self.last_time = float(int(frame["pts"]) * time_base)
                        self._times.put(self.last_time)
        finally:
            self._times.put(None)


def _stop(process: subprocess.Popen, log: _FfmpegLog) -> None:
    """Kill ffmpeg if it still runs (the consumer stopped early), reap it and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait()
    log.join()
    process.stdout.close()
    process.stderr.close()


def _probe_failure(path: Path, stderr: str) -> str:
    """Why ffprobe could not open the file, in words a user can act on."""
    lines = [match["message"] if (match := LOG_LINE.match(line)) else line for line in stderr.strip().splitlines()]
    reason = (lines[-1] if lines else "no message").removeprefix(f"{path.absolute()}: ")
    if "moov atom not found" in stderr and _looks_like_mp4(path):
        return (
            f"{path.name} is incomplete: it starts as an MP4/MOV video but its index (moov atom) is missing, "
            "as when a copy, download or recording was cut off"
        )
    return f"{path.name} is not a video that ffmpeg can read ({reason})"


def _looks_like_mp4(path: Path) -> bool:
    """Whether the file starts with an ISO media box (ftyp and friends), i.e. was meant to be MP4/MOV."""
    with path.open("rb") as file:
        return file.read(8)[4:] in {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"}


def _rate(text: str | None) -> Fraction | None:
    """A frame rate such as '2997/100'; None for ffprobe's '0/0' (unknown)."""
    numerator, _, denominator = (text or "0/0").partition("/")
    if not int(denominator or 1) or not int(numerator):
        return None
    return Fraction(int(numerator), int(denominator or 1))


def _rotation(stream: dict) -> int:
    """Degrees clockwise, one of 0/90/180/270, as ffmpeg's autorotate would turn the frames."""
    for side_data in stream.get("side_data_list", []):
        if "rotation" in side_data:
            # A display matrix's rotation is counter-clockwise.
            return round(-float(side_data["rotation"]) / 90) % 4 * 90
    return round(float(stream.get("tags", {}).get("rotate", 0)) / 90) % 4 * 90


def _start_time(stream: dict) -> float:
    """The first frame's container time, exact when ffprobe gives it in time-base units."""
    if "start_pts" in stream and "time_base" in stream:
        return float(stream["start_pts"] * Fraction(stream["time_base"]))
    return float(stream.get("start_time", 0.0))


def _duration(stream: dict, container: dict) -> float:
    """The video stream's length; the container's (less the stream's offset) when the stream has none (MKV)."""
    if "duration" in stream:
        return float(stream["duration"])
    offset = float(stream.get("start_time", 0.0)) - float(container.get("start_time", 0.0))
    return max(0.0, float(container.get("duration", 0.0)) - offset)
