"""ffmpeg's log while sampling: drained in a thread, it gives each frame's time and scene score, and the errors the
decoder logged before it (video.py)."""

import io
import queue
import re
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import IO

from .video_probe import LOG_LINE

SHOWINFO_TIME_BASE = re.compile(r"^config in time_base: (?P<num>\d+)/(?P<den>\d+)")
SHOWINFO_FRAME = re.compile(r"^n:\s*\d+ pts:\s*(?P<pts>\S+) ")
SCENE_SCORE_KEY = "lavfi.scene_score"  # the metadata select puts on every frame
SCENE_SCORE = re.compile(rf"^{re.escape(SCENE_SCORE_KEY)}=(?P<score>\S+)$")
ERROR_LEVELS = {"error", "fatal", "panic"}
# Distinct error messages kept for each damaged stretch (a broken stream repeats a few of them thousands of times).
ERROR_MESSAGES = 3


@dataclass
class Errors:
    """Error lines ffmpeg logged in one gap between frames: how many, and the first few distinct messages."""

    count: int = 0
    messages: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.count += 1
        message = message.rstrip(".")
        if len(self.messages) < ERROR_MESSAGES and message not in self.messages:
            self.messages.append(message)


class FfmpegLog:
    """Drains ffmpeg's stderr in a thread (a full pipe would stall ffmpeg) and keeps what sampling needs."""

    def __init__(self, stderr: IO[bytes], count_leading_errors: bool) -> None:
        self.trailing = Errors()  # logged after the last frame; complete once join() returns
        self.last_time: float | None = None
        self._stderr = stderr
        self._count_leading_errors = count_leading_errors
        self._frames: queue.SimpleQueue[tuple[float, Errors | None, float] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name="ffmpeg-stderr", daemon=True)
        self._thread.start()

    def next_frame(self) -> tuple[float, "Errors | None", float]:
        """The container time of the next frame on stdout (showinfo logs it before the frame is written), the
        errors logged since the frame before it, and its scene score (0 when not printed)."""
        frame = self._frames.get()
        if frame is None:
            raise RuntimeError("ffmpeg wrote a frame that showinfo did not report")
        return frame

    def join(self) -> None:
        self._thread.join()

    def _drain(self) -> None:
        time_base = None
        errors = Errors()
        scene = 0.0
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
                            errors.add(message)
                    elif score := SCENE_SCORE.match(message):
                        scene = float(score["score"])
                    elif base := SHOWINFO_TIME_BASE.match(message):
                        time_base = Fraction(int(base["num"]), int(base["den"]))
                    elif frame := SHOWINFO_FRAME.match(message):
                        # From pts, not showinfo's pts_time, which has only 6 significant digits. A frame
                        # without a time (NOPTS) stops the thread, and sampling, rather than be paired wrongly.
                        assert time_base is not None, "showinfo logs its time base before any frame"
                        self.last_time = float(int(frame["pts"]) * time_base)
                        self._frames.put((self.last_time, errors if errors.count else None, scene))
                        errors, scene = Errors(), 0.0
        finally:
            self.trailing = errors
            self._frames.put(None)
