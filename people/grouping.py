"""Faces into groups by a density rule in the spirit of DBSCAN, over unit vectors compared by Euclidean distance.

A face is a core face when at least `min_faces` faces (itself included) lie within `radius` of it. Core faces
within `radius` of each other form one group; a face that is not core joins the group of its nearest core face
within `radius`, and is left alone (-1) when there is none. So a new person needs `min_faces` mutually close faces,
and one stray face never forms a person. Pure numpy: the same code serves the full rebuild, the measurements and
the tests; `evaluate clusters` chose the defaults (docs/people.md).
"""

from collections.abc import Callable

import numpy as np

# Rows of the distance matrix computed at once: 512 x 100,000 float32 similarities take 200 MB.
BLOCK_ROWS = 512
# Neighbours kept per face: more than any group's core needs, few enough to hold 100,000 faces in memory.
MAX_NEIGHBOURS = 64


def neighbours(
    vectors: np.ndarray,
    radius: float,
    limit: int = MAX_NEIGHBOURS,
    progress: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """For each vector, the indices of up to `limit` others within `radius`, nearest first (exact, blockwise)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    # |a - b|^2 = 2 - 2 a.b for unit vectors: a distance below radius is a similarity above this.
    floor = 1.0 - radius * radius / 2.0
    found: list[np.ndarray] = []
    total = len(vectors)
    for start in range(0, total, BLOCK_ROWS):
        similarity = vectors[start : start + BLOCK_ROWS] @ vectors.T
        for row, scores in enumerate(similarity):
            scores[start + row] = -np.inf  # not its own neighbour
            nearest = np.flatnonzero(scores > floor)
            if len(nearest) > limit:
                nearest = nearest[np.argpartition(-scores[nearest], limit - 1)[:limit]]
            found.append(nearest[np.argsort(-scores[nearest], kind="stable")][:limit])
        if progress:
            progress(min(start + BLOCK_ROWS, total), total)
    return found


def density_groups(near: list[np.ndarray], min_faces: int) -> np.ndarray:
    """Group labels 0..k-1 for each face, -1 for faces in no group, from each face's neighbours nearest first."""
    count = len(near)
    core = np.fromiter((len(others) + 1 >= min_faces for others in near), dtype=bool, count=count)
    parent = np.arange(count)

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for index in np.flatnonzero(core):
        for other in near[index]:
            if core[other]:
                a, b = root(int(index)), root(int(other))
                if a != b:
                    parent[max(a, b)] = min(a, b)
    labels = np.full(count, -1, dtype=np.int64)
    roots: dict[int, int] = {}
    for index in np.flatnonzero(core):
        labels[index] = roots.setdefault(root(int(index)), len(roots))
    for index in np.flatnonzero(~core):
        nearest_core = next((int(other) for other in near[index] if core[other]), None)
        if nearest_core is not None:
            labels[index] = labels[nearest_core]
    return labels


def group(vectors: np.ndarray, radius: float, min_faces: int) -> np.ndarray:
    """Group labels for unit vectors (see the module's docstring)."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.int64)
    return density_groups(neighbours(vectors, radius), min_faces)


def majority_per_track(labels: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """Every face of a video track takes the group most of its grouped faces have, so a moment is one person's.

    tracks: one id per face, -1 for faces in no track (photos). A track none of whose faces is grouped stays out.
    """
    labels = labels.copy()
    for track in np.unique(tracks[tracks >= 0]):
        members = np.flatnonzero(tracks == track)
        grouped = labels[members][labels[members] >= 0]
        if len(grouped):
            values, counts = np.unique(grouped, return_counts=True)
            labels[members] = values[np.argmax(counts)]
    return labels
