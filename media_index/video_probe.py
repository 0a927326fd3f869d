"""Video probing: what a file in the inbox holds, learnt by ffprobe, and refused before any decoder reads it.

Any file in the inbox may be hostile, so ffprobe (and ffmpeg after it) read local files of the inbox's containers
only (DEMUXERS), frames over MAX_VIDEO_PIXELS are refused, and ffprobe is stopped after VIDEO_STALL_SECONDS.
"""

import json
import logging
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

FFPROBE = "ffprobe"
# The demuxers of the containers in models.VIDEO_SUFFIXES. ffprobe and ffmpeg may use no other, and read through
# the `file` protocol only: a playlist (hls), a list of files (concat), an image sequence or a device saved under a
# video's name would make them open other files, or other hosts; this way they refuse it before reading on.
DEMUXERS = {
    ".mp4": "mov,mp4,m4a,3gp,3g2,mj2",
    ".m4v": "mov,mp4,m4a,3gp,3g2,mj2",
    ".mov": "mov,mp4,m4a,3gp,3g2,mj2",
    ".mkv": "matroska,webm",
    ".webm": "matroska,webm",
    ".avi": "avi",
}
LOCAL_ONLY = {"protocol_whitelist": "file", "format_whitelist": ",".join(sorted(set(DEMUXERS.values())))}
# Formats that point at other files, named as such when refused.
LIST_FORMATS = {"hls": "an HLS playlist", "concat": "an ffconcat list of files", "dash": "a DASH manifest"}
# Containers that ffprobe reads as a single picture, not a stream of frames.
STILL_IMAGE_FORMATS = re.compile(r"_pipe$|^image2$")
# setpriv (util-linux) has the kernel kill ffmpeg and ffprobe when the process that started them dies (a worker
# killed at its time limit), so that no decoder runs on unwatched. Without it they are started as they are.
SETPRIV = shutil.which("setpriv")
# "[h264 @ 0x55d0] [error] message": ffmpeg's log with `-loglevel level+info`. The context (a demuxer, a decoder)
# is optional, and may be followed by another ("[h264 @ 0x..] [IMGUTILS @ 0x..] [error] ...").
LOG_LINE = re.compile(
    r"^(?:\[(?P<context>[^\]]+?) @ 0x[0-9a-f]+\] )?(?:\[[^\]]+? @ 0x[0-9a-f]+\] )*"
    r"\[(?P<level>[a-z]+)\] (?P<message>.*)$"
)
PICTURE_TOO_LARGE = re.compile(r"Picture size (?P<width>\d+)x(?P<height>\d+) exceeds specified max pixel count")


class UnreadableVideo(Exception):
    """The file is not a video that can be decoded; the message says why, in words a user can act on."""


@dataclass(frozen=True)
class VideoInfo:
    """What probing found. width/height are of the decoded frames, i.e. after rotation; times in seconds."""

    duration: float  # length of the video stream (last frame end - first frame), seconds; 0 when the file omits it
    fps: float  # average frame rate of the video stream
    width: int
    height: int
    rotation: int  # degrees clockwise that ffmpeg turns the stored frames to show them upright: 0, 90, 180, 270
    start_time: float  # container time of the first video frame (0.852 for the Hamilton clip)
    codec: str
    frame_width: int  # the sampled frames: width/height scaled down to fit VIDEO_FRAME_MAX_SIDE, upright
    frame_height: int


def probe(path: Path) -> VideoInfo:
    """The video stream's size, rate and times; UnreadableVideo when there is nothing to decode, or too much."""
    status = path.stat()  # a missing file raises FileNotFoundError here
    if not stat.S_ISREG(status.st_mode):
        raise UnreadableVideo(f"{path.name} is not a regular file (a pipe, socket or device): it is not read")
    if status.st_size == 0:
        raise UnreadableVideo(f"{path.name} is empty (0 bytes): the copy may not have finished")
    found = _ffprobe(path)
    streams = found["streams"]
    # Cover pictures of music files are video streams too; ffmpeg's `V` stream specifier skips them as well.
    videos = [s for s in streams if s["codec_type"] == "video" and not s.get("disposition", {}).get("attached_pic")]
    if not videos:
        others = ", ".join(f"{s['codec_type']} ({s.get('codec_name', 'unknown')})" for s in streams)
        raise UnreadableVideo(f"{path.name} has no video stream (it holds only {others or 'nothing'})")
    stream = videos[0]
    codec = stream.get("codec_name", "unknown")
    if not stream.get("width") or not stream.get("height"):
        raise UnreadableVideo(f"{path.name} has a video stream ({codec}) that this ffmpeg cannot decode")
    if stream["width"] * stream["height"] > settings.MAX_VIDEO_PIXELS:
        raise _too_large(path, stream["width"], stream["height"])
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    if not fps:
        raise UnreadableVideo(f"{path.name} has a video stream without a frame rate, which cannot be sampled")
    rotation = _rotation(stream)
    width, height = stream["width"], stream["height"]
    if rotation in (90, 270):
        width, height = height, width
    scale = min(1.0, settings.VIDEO_FRAME_MAX_SIDE / max(width, height))
    info = VideoInfo(
        duration=_duration(stream, found["format"]),
        fps=float(fps),
        width=width,
        height=height,
        rotation=rotation,
        start_time=_start_time(stream),
        codec=codec,
        frame_width=max(1, round(width * scale)),
        frame_height=max(1, round(height * scale)),
    )
    logger.debug("probed %s: %s", path, info)
    return info


def guarded(command: list[str]) -> list[str]:
    """The command, started so that it dies with the process that started it (see SETPRIV)."""
    return [SETPRIV, "--pdeathsig", "KILL", *command] if SETPRIV else command


def _ffprobe(path: Path) -> dict:
    """ffprobe's streams and format; UnreadableVideo when it cannot read the file, or takes too long."""
    local_only = [argument for name, value in LOCAL_ONLY.items() for argument in (f"-{name}", value)]
    command = [FFPROBE, "-hide_banner", "-loglevel", "level+error", *local_only]
    # ffprobe decodes a frame or two to learn the stream: the pixel limit keeps a huge one from being allocated.
    command += ["-max_pixels", str(settings.MAX_VIDEO_PIXELS), "-show_format", "-show_streams", "-of", "json"]
    seconds = settings.VIDEO_STALL_SECONDS
    try:
        done = subprocess.run(
            guarded([*command, str(path.absolute())]), stdin=subprocess.DEVNULL, capture_output=True, timeout=seconds
        )
    except subprocess.TimeoutExpired:
        raise UnreadableVideo(
            f"{path.name}: ffprobe did not finish within {seconds} s, so it was stopped (REVSEARCH_VIDEO_STALL_SECONDS)"
        ) from None
    stderr = done.stderr.decode(errors="replace")
    if oversized := PICTURE_TOO_LARGE.search(stderr):
        raise _too_large(path, int(oversized["width"]), int(oversized["height"]))
    if done.returncode:
        raise UnreadableVideo(_probe_failure(path, stderr))
    return json.loads(done.stdout)


def _too_large(path: Path, width: int, height: int) -> UnreadableVideo:
    return UnreadableVideo(
        f"{path.name} is {width}x{height}, over the limit of {settings.MAX_VIDEO_PIXELS:,} pixels a frame"
        " (REVSEARCH_MAX_VIDEO_PIXELS): it is not decoded"
    )


def _probe_failure(path: Path, stderr: str) -> str:
    """Why ffprobe could not open the file, in words a user can act on."""
    found = [LOG_LINE.match(line) for line in stderr.strip().splitlines()]
    refused = next((match["context"] for match in found if match and "not on whitelist" in match["message"]), None)
    if refused:
        return _refused_format(path, refused)
    lines = [
        match["message"] if match else line for match, line in zip(found, stderr.strip().splitlines(), strict=True)
    ]
    reason = (lines[-1] if lines else "no message").removeprefix(f"{path.absolute()}: ")
    if "moov atom not found" in stderr and _looks_like_mp4(path):
        return (
            f"{path.name} is incomplete: it starts as an MP4/MOV video but its index (moov atom) is missing, "
            "as when a copy, download or recording was cut off"
        )
    return f"{path.name} is not a video that ffmpeg can read ({reason})"


def _refused_format(path: Path, format_name: str) -> str:
    """Why a file in a format outside DEMUXERS is not read."""
    if STILL_IMAGE_FORMATS.search(format_name):
        return (
            f"{path.name} is a single still image ({format_name.removesuffix('_pipe')}), not a video: "
            "give it its image extension (such as .jpg) to index it as a photo"
        )
    if format_name in LIST_FORMATS:
        return (
            f"{path.name} is {LIST_FORMATS[format_name]}, not a video: files that point at other files are never read"
        )
    return f"{path.name} is in the {format_name} format, which is not read: only MP4/MOV, Matroska/WebM and AVI are"


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
