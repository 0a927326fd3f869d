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


def select_expression(origin: float, sample_fps: float) -> str:
    """ffmpeg's `select` expression: the first frame of each 1/sample_fps interval of a grid starting at `origin`
    (container seconds), and every frame whose scene score is above SCENE_THRESHOLD.

    prev_t is the previous decoded frame's time: a frame starts an interval when its interval number is higher. The
    first decoded frame is always kept (when resuming it lies before `after` and is skipped); its scene score is 0,
    and every later frame's depends only on the frame decoded before it, so a resumed run keeps the same frames.
    """
    interval = f"floor((t-({origin:.9f}))*{sample_fps:.9f})"
    starts_interval = f"gt({interval},{interval.replace('(t-', '(prev_t-')})"
    return f"if(isnan(prev_t),1,max({starts_interval},gt(scene,{SCENE_THRESHOLD:.6f})))"


def interval(timestamp: float, sample_fps: float) -> int:
    """The number of the sampling interval a time (seconds from the first frame) falls in, as ffmpeg counts it."""
    return math.floor((timestamp + TOLERANCE) * sample_fps)


def is_cut(previous: float | None, timestamp: float, sample_fps: float) -> bool:
    """Whether a sampled frame was kept for a shot cut alone: the sampled frame before it is in the same interval.

    A cut that falls on an interval's first frame is not told apart: its edges are refined like any other's.
    """
    return previous is not None and interval(previous, sample_fps) == interval(timestamp, sample_fps)
