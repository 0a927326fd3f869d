"""Shot-aware sampling: besides the first frame of each sampling interval, ffmpeg keeps the first frame after each
shot cut, so that a shot shorter than the interval still has a sampled frame and a person who appears at a cut is
seen from that very frame.

ffmpeg's scene score compares each decoded frame with the one before: it is the change in their difference, so a
cut scores high while steady motion, noise or a constant strobe stay low. Whether a sampled frame was kept for a
cut alone follows from the times: it is not the first of its interval (see `is_cut`).
"""

import math

# ffmpeg's scene score above which a frame starts a new shot. Measured (docs/performance.md, "Moments"): the three
# cuts of the Hamilton clip score 0.20-0.25 and its other frames at most 0.11; the crowd video's frames at most
# 0.10; the hard cuts between photos of benchmarks/moment_video.py score near 1. A frame kept wrongly only costs
# one more sampled frame.
SCENE_THRESHOLD = 0.15
# Grid lines lie this many seconds before the interval's nominal start, as video.TIME_TOLERANCE says why.
TOLERANCE = 1e-3


def select_expression(origin: float, sample_fps: float, probe_fps: float | None = None) -> str:
    """ffmpeg's `select` expression: the first frame of each 1/sample_fps interval of a grid starting at `origin`
    (container seconds), every frame whose scene score is above SCENE_THRESHOLD, and with probe_fps the first frame
    of each 1/probe_fps interval of the same grid too (probe frames, spans.py).

    prev_t is the previous decoded frame's time: a frame starts an interval when its interval number is higher. The
    first decoded frame is always kept (when resuming it lies before `after` and is skipped); its scene score is 0,
    and every later frame's depends only on the frame decoded before it, so a resumed run keeps the same frames.
    """
    terms = [_starts_interval(origin, rate) for rate in (sample_fps, probe_fps) if rate]
    either = f"gt(scene,{SCENE_THRESHOLD:.6f})"
    for term in reversed(terms):  # ffmpeg's max takes two arguments
        either = f"max({term},{either})"
    return f"if(isnan(prev_t),1,{either})"


def _starts_interval(origin: float, rate: float) -> str:
    interval = f"floor((t-({origin:.9f}))*{rate:.9f})"
    return f"gt({interval},{interval.replace('(t-', '(prev_t-')})"


def starts_interval(previous: float | None, timestamp: float, origin: float, rate: float) -> bool:
    """Whether a frame starts an interval of select_expression's grid (origin and rate), given the time of the frame
    kept before it (container seconds): ffmpeg's arithmetic on the same numbers. A frame that starts an interval is
    always kept, so the frame kept before it is in an earlier interval exactly when the frame decoded before it is.
    """
    grid_origin, grid_rate = float(f"{origin:.9f}"), float(f"{rate:.9f}")
    if previous is None:
        return True
    return math.floor((timestamp - grid_origin) * grid_rate) > math.floor((previous - grid_origin) * grid_rate)


def interval(timestamp: float, sample_fps: float) -> int:
    """The number of the sampling interval a time (seconds from the first frame) falls in, as ffmpeg counts it."""
    return math.floor((timestamp + TOLERANCE) * sample_fps)


def is_cut(previous: float | None, timestamp: float, sample_fps: float) -> bool:
    """Whether a sampled frame was kept for a shot cut alone: the sampled frame before it is in the same interval.

    A cut that falls on an interval's first frame is not told apart: its edges are refined like any other's.
    """
    return previous is not None and interval(previous, sample_fps) == interval(timestamp, sample_fps)
