"""A test video with known appearance times, built from LFW photos: what moment edges are measured against.

One person (the query's) appears eight times for 0.4 to 2.7 s, between strangers and empty frames, in shots whose
backgrounds change at hard cuts. Some appearances are whole shots (their edges are cuts); in others the photo
appears or goes mid-shot, small enough that the scene score stays under shots.SCENE_THRESHOLD, so that their
edges are found only by refinement; the last one lasts until the video's end. Two cuts fall on the 1 fps
sampling grid (11 s and 13 s), as one in 25 does at 25 fps: those are not told from the grid and are refined too.
Frames are drawn with Pillow and encoded by ffmpeg (H.264, 25 fps); times are on the frame grid, so the truth is
exact to the frame.
"""

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

FPS = 25
SIZE = (640, 360)
PERSON = "Tony_Blair"
# The query photo, and the person's photos shown (by number): FaceNet (CASIA-WebFace) puts those within 0.72 of the
# query on average (0.64-0.80), well inside the same-person threshold (1.12), as the photos of one person in a video
# would be; two of his other photos are at 1.07 and 1.11, and are left out.
QUERY = 6
SHOWN = (102, 86, 121, 64, 48, 94, 92, 133)
# Strangers, one photo each with one face, all at least 1.52 from the query.
STRANGERS = ("Allen_Iverson", "Adrien_Brody", "Arnaud_Clement", "Alisha_Richman", "Aaron_Patterson")
# Photos are shown at this side: a face of about 70 px, while a photo that comes or goes changes so little of the
# frame that ffmpeg's scene score stays near 0.06 (a whole-frame cut scores near 1).
PHOTO_SIDE = 160


@dataclass(frozen=True)
class Shot:
    """A stretch between two cuts (seconds): its background colour and who is on screen when."""

    start: float
    end: float
    colour: tuple[int, int, int]
    # (who, photo, x, y, side, from, to): PERSON's SHOWN[photo], or a stranger's photo; times in seconds.
    shows: tuple[tuple[str, int, int, int, int, float, float], ...] = ()


P = PERSON
S1, S2, S3, S4, S5 = STRANGERS
SHOTS = (
    Shot(0.0, 3.08, (40, 60, 90), ((S1, 0, 60, 100, 160, 0.0, 3.08), (P, 0, 400, 90, 160, 1.32, 2.2))),
    Shot(3.08, 3.48, (120, 40, 40), ((P, 1, 200, 20, 320, 3.08, 3.48),)),
    Shot(3.48, 6.04, (30, 90, 40), ((S2, 0, 240, 100, 160, 4.12, 5.2),)),
    Shot(6.04, 6.76, (90, 90, 30), ((P, 2, 80, 80, 200, 6.04, 6.76), (S3, 0, 380, 80, 200, 6.04, 6.76))),
    Shot(6.76, 11.0, (60, 30, 80), ((S3, 0, 60, 120, 160, 6.76, 11.0), (P, 3, 420, 100, 160, 7.44, 10.16))),
    Shot(11.0, 13.0, (20, 20, 20), ((P, 4, 240, 100, 160, 11.6, 12.12),)),
    Shot(
        13.0,
        17.6,
        (70, 100, 110),
        ((P, 5, 100, 80, 180, 13.0, 14.56), (S4, 0, 400, 80, 180, 13.0, 17.6), (P, 6, 100, 80, 180, 16.12, 17.6)),
    ),  # fmt: skip
    Shot(17.6, 18.4, (100, 70, 50), ((S5, 0, 240, 60, 220, 17.6, 18.4),)),
    Shot(18.4, 22.0, (50, 50, 110), ((S1, 0, 420, 100, 160, 18.4, 22.0), (P, 7, 80, 100, 160, 19.72, 22.0))),
)


@dataclass
class MomentVideo:
    """The video and its truth: the person's appearances and the cuts (seconds from the first frame)."""

    path: Path
    query: Path  # a photo of the person that is not in the video
    appearances: list[tuple[float, float]] = field(default_factory=list)
    cuts: list[float] = field(default_factory=list)
    duration: float = 0.0


def photos(lfw: Path, who: str) -> list[Path]:
    return sorted((lfw / who).glob("*.jpg"))


def person_photo(lfw: Path, number: int) -> Path:
    return lfw / PERSON / f"{PERSON}_{number:04d}.jpg"


def build(lfw: Path, target: Path) -> MomentVideo:
    """Write the video to target (an .mp4) and return its truth."""
    person = [person_photo(lfw, number) for number in SHOWN]
    if missing := [path for path in [*person, person_photo(lfw, QUERY)] if not path.is_file()]:
        raise FileNotFoundError(f"the generated video needs these LFW photos: {', '.join(map(str, missing))}")
    images: dict[tuple[str, int, int], Image.Image] = {}

    def photo(who: str, number: int, side: int) -> Image.Image:
        key = (who, number, side)
        if key not in images:
            source = person[number] if who == PERSON else photos(lfw, who)[number]
            images[key] = Image.open(source).convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
        return images[key]

    duration = SHOTS[-1].end
    frames = round(duration * FPS)
    command = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{SIZE[0]}x{SIZE[1]}", "-r", str(FPS), "-i", "pipe:", "-c:v", "libx264", "-preset", "veryfast",
        "-crf", "20", "-pix_fmt", "yuv420p", str(target),
    ]  # fmt: skip
    encoder = subprocess.Popen(command, stdin=subprocess.PIPE)
    assert encoder.stdin is not None
    try:
        for number in range(frames):
            encoder.stdin.write(_frame(number / FPS, photo).tobytes())
    finally:
        encoder.stdin.close()
    if encoder.wait():
        raise RuntimeError(f"ffmpeg could not write {target}")
    appearances = sorted(
        (begin, end) for shot in SHOTS for who, _, _, _, _, begin, end in shot.shows if who == PERSON
    )  # fmt: skip
    return MomentVideo(target, person_photo(lfw, QUERY), appearances, [shot.start for shot in SHOTS[1:]], duration)


def _frame(time: float, photo) -> Image.Image:
    """The frame shown at `time`: its shot's background, a faint gradient, and the photos on screen then."""
    shot = next(shot for shot in SHOTS if shot.start - 1e-6 <= time < shot.end - 1e-6)
    gradient = np.linspace(0.8, 1.2, SIZE[0])[None, :, None] * np.array(shot.colour)[None, None, :]
    frame = Image.fromarray(np.broadcast_to(gradient, (SIZE[1], SIZE[0], 3)).clip(0, 255).astype(np.uint8))
    ImageDraw.Draw(frame).rectangle((0, SIZE[1] - 30, SIZE[0], SIZE[1]), fill=(10, 10, 10))
    for who, number, x, y, side, begin, end in shot.shows:
        if begin - 1e-6 <= time < end - 1e-6:
            frame.paste(photo(who, number, side), (x, y))
    return frame
