"""The ceiling: how fast this processor could index the shared videos if every multiply-add of detection and
embedding ran at its peak, against issue 17's targets (30x real time at 360p, 10x at 1080p, one sample a second).

A sampled frame costs at least its decoding (ffmpeg and the sampler, CPU seconds measured: the cost a frame beyond
the first pass of the clip, over a loop of it, so that ffmpeg's start is left out) and its arithmetic:
MTCNN's and FaceNet's floating-point operations, counted by torch's FlopCounterMode on the video's own frames and
faces, done at the rate of a large matrix product on one thread (the most a core does). Spread perfectly over
every core, with nothing else to do, that gives the highest real-time factor the machine allows; no runtime,
kernel or scheduling can beat it without computing less or in a cheaper number format. Beside it, the same
arithmetic at the rates today's kernels reach on these frames (CPU time, one thread): what two perfectly shared
cores would give with the code as it is.

The photos' side of it (issue 17's 3x face_recognition's speed) is in the versus section, which counts the same
operations on its folder with count_arithmetic.
"""

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import PIL.Image
import torch
from django.conf import settings
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.stretched_video import looped_video
from benchmarks.videos import cpu_seconds, reference_videos
from media_index import face_engine, video, video_probe

logger = logging.getLogger(__name__)

Say = Callable[[str], None]

# Issue 17's targets, real time at one sample a second on two cores.
TARGETS = {"360p": 30.0, "1080p": 10.0}
PEAK_SIDE = 2048  # a matrix product this large runs at a core's peak (oneDNN's or MKL's best kernel)
PEAK_REPEAT = 5
LOOP_MINUTES = 0.5  # the clip played over for the decoding cost of a frame, without ffmpeg's start


def realtime_factor(sample_fps: float, cores: int, frame_seconds: float) -> float:
    """Seconds of video a second: `cores` busy with nothing else, each sampled frame costing frame_seconds of CPU."""
    return cores / (sample_fps * frame_seconds)


def peak_gflops(dtype: torch.dtype = torch.float32) -> float:
    """One thread's best rate on a large matrix product in dtype, in GFLOP/s of CPU time (best of PEAK_REPEAT), as
    the networks' rates are: another program on the machine slows it less than it would the clock's."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(PEAK_SIDE, PEAK_SIDE, dtype=dtype), torch.randn(PEAK_SIDE, PEAK_SIDE, dtype=dtype)
        a @ b  # the first product pays for the kernel's set-up
        best = min(_cpu(lambda: a @ b) for _ in range(PEAK_REPEAT))
    finally:
        torch.set_num_threads(threads)
    return 2 * PEAK_SIDE**3 / best / 1e9


@dataclass
class Arithmetic:
    """Floating-point operations of detection and embedding over some images, in billions (GFLOP), and the faces."""

    detect_gflop: float
    embed_gflop: float
    faces: int

    def seconds_at(self, peaks: "Peaks") -> float:
        """The least time it can take: each network's operations at its dtype's peak (processor_peaks)."""
        return self.detect_gflop / peaks.detect + self.embed_gflop / peaks.embed


@dataclass(frozen=True)
class Peaks:
    """A core's peak, GFLOP/s, in the dtype each network computes in, and by dtype (for the report)."""

    detect: float
    embed: float
    by_dtype: dict[str, float]


def count_arithmetic(batches: list[list[PIL.Image.Image]]) -> tuple[Arithmetic, list[list[face_engine.Detection]]]:
    """Detection and embedding of each batch of same-size images, as the face engine runs them, with their
    operations counted (torch's FlopCounterMode); and the detections."""
    detections: list[list[face_engine.Detection]] = []
    detect = embed = 0
    for images in batches:
        with torch.inference_mode(), FlopCounterMode(display=False) as counted:
            found = face_engine.detect_faces(images)
        detect += counted.get_total_flops()
        with torch.inference_mode(), FlopCounterMode(display=False) as counted:
            face_engine.embed_faces(images, found)
        embed += counted.get_total_flops()
        detections += found
    return Arithmetic(detect / 1e9, embed / 1e9, sum(len(found) for found in detections)), detections


def processor_peaks() -> Peaks:
    """A core's peak in the dtype each network computes in as loaded (bfloat16 where FACE_PRECISION chose it)."""
    precision = face_engine.precision()
    detect = torch.bfloat16 if "detector-bfloat16" in precision else torch.float32
    embed = torch.bfloat16 if "embedder-bfloat16" in precision else torch.float32
    rates = {dtype: peak_gflops(dtype) for dtype in dict.fromkeys((detect, embed))}  # each dtype measured once
    by_dtype = {str(dtype).removeprefix("torch."): rate for dtype, rate in rates.items()}
    return Peaks(rates[detect], rates[embed], by_dtype)


def video_ceiling(label: str, path: Path, say: Say, fps: float | None = None) -> dict:
    """The video's sampled frames decoded, then detected and embedded twice: once counting the operations and once
    timed; the ceiling and today's kernels' bound from them."""
    fps = fps or settings.VIDEO_SAMPLE_FPS
    face_engine.load()
    info = video_probe.probe(path)
    images, once = _decoded(path, info, fps)
    frames = len(images)
    loop = looped_video(label, path, LOOP_MINUTES)
    looped, over_and_over = _decoded(loop, video_probe.probe(loop), fps, keep=False)
    decode = (over_and_over - once) / (len(looped) - frames)
    arithmetic, detections = count_arithmetic([images])
    faces = max(arithmetic.faces, 1)
    detect_seconds = _cpu(lambda: face_engine.detect_faces(images))
    embed_seconds = _cpu(lambda: face_engine.embed_faces(images, detections))
    peaks = processor_peaks()
    cores = os.cpu_count() or 1
    at_peak = decode + arithmetic.seconds_at(peaks) / frames
    today = decode + (detect_seconds + embed_seconds) / frames
    figures = {
        "label": label,
        "file": path.name,
        "size": f"{info.width}x{info.height}",
        "sample_fps": fps,
        "frames": frames,
        "faces": arithmetic.faces,
        "cores": cores,
        "precision": face_engine.precision(),
        "peak_gflops_a_core": {dtype: round(rate, 1) for dtype, rate in peaks.by_dtype.items()},
        "decode_ms_a_frame": round(1000 * decode, 1),
        "detect_gflop_a_frame": round(arithmetic.detect_gflop / frames, 2),
        "detect_ms_a_frame": round(1000 * detect_seconds / frames, 1),
        "detect_gflops": round(arithmetic.detect_gflop / detect_seconds, 1),
        "embed_gflop_a_face": round(arithmetic.embed_gflop / faces, 2),
        "embed_ms_a_face": round(1000 * embed_seconds / faces, 1),
        "embed_gflops": round(arithmetic.embed_gflop / max(embed_seconds, 1e-9), 1),
        "ceiling_realtime_factor": round(realtime_factor(fps, cores, at_peak), 1),
        "todays_kernels_realtime_factor": round(realtime_factor(fps, cores, today), 1),
        "target_realtime_factor": TARGETS.get(label),
    }
    say(_line(figures))
    return figures


def ceiling_lines(runs: list[dict]) -> list[str]:
    return [_line(run) for run in runs]


def _line(run: dict) -> str:
    target = f" (target {run['target_realtime_factor']:g}x)" if run.get("target_realtime_factor") else ""
    peaks = ", ".join(f"{dtype} {peak} GFLOP/s" for dtype, peak in run["peak_gflops_a_core"].items())
    return (
        f"ceiling {run['label']} ({run['size']}, {run['frames']} frames at {run['sample_fps']:g}/s, {run['faces']}"
        f" faces): at most {run['ceiling_realtime_factor']}x real time on {run['cores']} cores at this processor's"
        f" peak ({peaks} a core){target}; today's kernels on {run['cores']} perfectly shared cores"
        f" {run['todays_kernels_realtime_factor']}x. A frame: decode {run['decode_ms_a_frame']} ms of CPU, detect"
        f" {run['detect_gflop_a_frame']} GFLOP ({run['detect_ms_a_frame']} ms, {run['detect_gflops']} GFLOP/s),"
        f" embed {run['embed_gflop_a_face']} GFLOP a face ({run['embed_ms_a_face']} ms, {run['embed_gflops']} GFLOP/s;"
        f" {run['precision']})"
    )


def ceilings(say: Say) -> list[dict]:
    """The ceiling for each of the benchmark's two videos."""
    return [video_ceiling(label, path, say) for label, path in reference_videos().items()]


def _decoded(path: Path, info: video_probe.VideoInfo, fps: float, keep: bool = True) -> tuple[list, float]:
    """The sampled frames' images (or their times, without keep) and the CPU seconds sampling them took."""
    started = cpu_seconds()
    sampled = video.sample_frames(path, info, fps)
    try:
        frames = [frame.image if keep else frame.timestamp for frame in sampled]
    finally:
        sampled.close()  # ffmpeg is reaped here: its CPU time counts
    return frames, cpu_seconds() - started


def _cpu(work: Callable[[], object]) -> float:
    """CPU seconds of this process for work (the face engine runs on its torch threads)."""
    started = time.process_time()
    with torch.inference_mode():
        work()
    return time.process_time() - started
