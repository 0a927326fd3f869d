"""Video decoding: the options ffmpeg reads a video with for sampling, and how much of the stream it decodes.

Sampling keeps about one frame a second of 25 or 30, so most decoding is of frames nobody looks at. With
VIDEO_FAST_DECODE, ffmpeg does not decode the frames no other frame is predicted from (non-reference frames: most
B-frames), so a sampled frame may be one frame later than the first of its interval; its time is still its own (as
showinfo reports it), and the frames that are decoded are the same, pixel for pixel. The 1080p sample video
decodes in 30% less CPU time; a stream without B-frames (the Hamilton clip) gains nothing (docs/performance.md,
"Video throughput"). Not used: `-skip_frame bidir`, which drops reference B-frames too, and with them sampled frames;
and `-skip_loop_filter all` (H.264's deblocking), which saved 15% more but changed pixels enough to move FaceNet's
embeddings of the same faces by up to 0.6 (L2).
"""

import logging

from django.conf import settings

from .video_probe import LOCAL_ONLY

logger = logging.getLogger(__name__)

# Decoder threads: ffmpeg should not fight the face engine for the machine's two cores.
DECODE_THREADS = 2
# Decoding that sampling does not need (see above): the same frames are skipped whatever the start, so a resumed
# run decodes, and keeps, the same frames as an uninterrupted one.
FAST_DECODE = {"skip_frame": "noref"}


def input_options(seek_to: float | None) -> dict[str, int | str | None]:
    """ffmpeg's options for the input: the inbox's containers only, the pixel limit, and where to start decoding."""
    options: dict[str, int | str | None] = {
        "threads": DECODE_THREADS,
        "autorotate": 0,
        "max_pixels": settings.MAX_VIDEO_PIXELS,
        **LOCAL_ONLY,
    }
    if settings.VIDEO_FAST_DECODE:
        options |= FAST_DECODE
    if seek_to is not None:
        # Seek on the container's own timeline (-seek_timestamp) to the keyframe before the target
        # (-noaccurate_seek); -copyts keeps every frame's original time, so the sampling grid stays the same.
        options |= {"ss": f"{max(0.0, seek_to):.6f}", "seek_timestamp": 1, "noaccurate_seek": None}
    return options
