"""Video tracks: a face in one sampled frame continues a face of the previous sampled frame when both are the
same person and the box has not jumped, so one person continuously on screen is one track and one moment."""

from dataclasses import dataclass

import numpy as np

# A box may move by this many of its widths between two sampled frames (a second apart by default) and still
# continue the track: people walk and cameras pan, but a face does not cross the frame in a second.
MAX_SHIFT_WIDTHS = 1.5


@dataclass(frozen=True)
class TrackedFace:
    """A face of one sampled frame: its box (left, top, right, bottom) and its unit vector."""

    box: tuple[float, ...]
    vector: np.ndarray


def link(previous: list[TrackedFace], current: list[TrackedFace], same_person: float) -> list[int | None]:
    """For each current face, the index of the previous frame's face it continues, or None.

    Pairs are taken nearest (by vector) first; each previous face continues at most one current face.
    """
    candidates = []
    for i, face in enumerate(current):
        for j, before in enumerate(previous):
            distance = float(np.linalg.norm(face.vector - before.vector))
            if distance < same_person and near(face.box, before.box):
                candidates.append((distance, i, j))
    continues: list[int | None] = [None] * len(current)
    taken: set[int] = set()
    for _, i, j in sorted(candidates):
        if continues[i] is None and j not in taken:
            continues[i] = j
            taken.add(j)
    return continues


def near(box: tuple[float, ...], before: tuple[float, ...]) -> bool:
    """Whether a box may continue a box of the sampled frame before: its centre moved MAX_SHIFT_WIDTHS at most."""
    width = max(box[2] - box[0], before[2] - before[0], 1.0)
    shift = np.hypot((box[0] + box[2] - before[0] - before[2]) / 2, (box[1] + box[3] - before[1] - before[3]) / 2)
    return bool(shift <= MAX_SHIFT_WIDTHS * width)
