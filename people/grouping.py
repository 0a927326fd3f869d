"""Faces into groups, over unit vectors compared by Euclidean distance.

group() builds the single-linkage tree of the faces within `radius` of each other and keeps, along each branch,
the groups that stay together longest as the distance shrinks: HDBSCAN's excess-of-mass selection (Campello,
Moulavi and Sander 2013) with a density neighbourhood of one face. A group needs at least `min_faces` faces, so
one stray face never forms a person. A plain density rule cut at one radius (density_groups, in the spirit of
DBSCAN) chains look-alikes into one person as soon as the radius lets enough people in: on LFW it stays below the
issue's BCubed targets at every radius, where the stable groups meet them (docs/people.md, `evaluate clusters`).
Numpy and plain Python: the same code serves the full rebuild, the measurements and the tests.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Rows of the distance matrix computed at once: 512 x 100,000 float32 similarities take 200 MB.
BLOCK_ROWS = 512
# Neighbours kept per face: more than any group's core needs, few enough to hold 100,000 faces in memory.
MAX_NEIGHBOURS = 64
# Pairs of neighbours whose distance is computed at once: 65,536 x 2 x 512 float32 take 256 MB.
EDGE_BLOCK = 65_536


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
    return stable_groups(vectors, neighbours(vectors, radius), radius, min_faces)


def stable_groups(vectors: np.ndarray, near: list[np.ndarray], radius: float, min_faces: int) -> np.ndarray:
    """Group labels 0..k-1, -1 for faces in no group, from each face's neighbours within `radius` (see the module).

    1. Link the neighbours, shortest distance first: the single-linkage tree, one per set of linked faces.
    2. Walk each tree from the top (born at `radius`): where a branch splits into two parts of at least min_faces
       faces, two new groups are born; a smaller part falls out of its group at that distance.
    3. A group's stability sums, over its faces, how far below its birth (in 1 / distance) each stayed in it.
       From the leaves up, a group is kept when it is more stable than its kept descendants together.
    """
    count = len(near)
    smallest = max(min_faces, 2)  # a group of one is a face left alone
    tree = _single_linkage(count, *_edges(np.asarray(vectors, dtype=np.float32), near))
    labels = _stable_labels(tree, count, 1.0 / radius, smallest)
    if min_faces <= 1:  # every face is somebody: those left alone are people of one
        alone = labels == -1
        labels[alone] = np.arange(alone.sum()) + labels.max(initial=-1) + 1
    return labels


def _edges(vectors: np.ndarray, near: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pair of neighbours once, with its distance, shortest first."""
    count = len(near)
    lengths = np.fromiter((len(others) for others in near), dtype=np.int64, count=count)
    if not lengths.sum():
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    rows = np.repeat(np.arange(count, dtype=np.int64), lengths)
    columns = np.concatenate(near).astype(np.int64)
    keys = np.unique(np.minimum(rows, columns) * count + np.maximum(rows, columns))
    first, second = keys // count, keys % count
    distance = np.empty(len(keys), dtype=np.float32)
    for start in range(0, len(keys), EDGE_BLOCK):
        end = start + EDGE_BLOCK
        similarity = np.einsum("ij,ij->i", vectors[first[start:end]], vectors[second[start:end]])
        distance[start:end] = np.sqrt(np.maximum(2.0 - 2.0 * similarity, 0.0))
    order = np.argsort(distance, kind="stable")
    return first[order], second[order], distance[order]


@dataclass
class _Tree:
    """Single-linkage merges: node count + k joins left[k] and right[k] at height[k]; size of every node."""

    left: list[int]
    right: list[int]
    height: list[float]
    size: list[int]
    tops: list[int]  # the node at the top of each set of linked faces (a face alone is its own top)


def _single_linkage(count: int, first: np.ndarray, second: np.ndarray, distance: np.ndarray) -> _Tree:
    """Kruskal's merges over the edges, shortest first (union-find with path halving)."""
    parent, node = list(range(count)), list(range(count))
    tree = _Tree([], [], [], [1] * count, [])
    for a, b, height in zip(first.tolist(), second.tolist(), distance.tolist(), strict=True):
        while parent[a] != a:
            parent[a] = a = parent[parent[a]]
        while parent[b] != b:
            parent[b] = b = parent[parent[b]]
        if a == b:
            continue
        tree.left.append(node[a])
        tree.right.append(node[b])
        tree.height.append(height)
        tree.size.append(tree.size[node[a]] + tree.size[node[b]])
        low, high = min(a, b), max(a, b)
        parent[high] = low
        node[low] = count + len(tree.left) - 1
    tree.tops = [node[index] for index in range(count) if parent[index] == index]
    return tree


def _stable_labels(tree: _Tree, count: int, top_birth: float, smallest: int) -> np.ndarray:
    """The condensed tree's groups, the most stable kept, as labels (steps 2 and 3 of stable_groups)."""
    birth: list[float] = []
    stability: list[float] = []
    parent_group: list[int] = []
    fallen: list[list[int]] = []  # nodes whose faces fell out of each group (or stayed in it to the end)

    def new_group(born: float, parent: int) -> int:
        birth.append(born)
        stability.append(0.0)
        parent_group.append(parent)
        fallen.append([])
        return len(birth) - 1

    stack = [(top, new_group(top_birth, -1)) for top in tree.tops if tree.size[top] >= smallest]
    while stack:
        node, group_id = stack.pop()
        if node < count:
            fallen[group_id].append(node)
            continue
        merge = node - count
        strength = 1.0 / max(tree.height[merge], 1e-9)
        parts = (tree.left[merge], tree.right[merge])
        if all(tree.size[part] >= smallest for part in parts):
            stability[group_id] += tree.size[node] * (strength - birth[group_id])
            stack.extend((part, new_group(strength, group_id)) for part in parts)
            continue
        for part in parts:
            if tree.size[part] >= smallest:
                stack.append((part, group_id))
            else:
                stability[group_id] += tree.size[part] * (strength - birth[group_id])
                fallen[group_id].append(part)
    children: list[list[int]] = [[] for _ in birth]
    for group_id, parent in enumerate(parent_group):
        if parent >= 0:
            children[parent].append(group_id)
    best, kept = [0.0] * len(birth), [False] * len(birth)
    for group_id in reversed(range(len(birth))):  # children are numbered after their parent
        below = sum(best[child] for child in children[group_id])
        kept[group_id] = not children[group_id] or stability[group_id] > below
        best[group_id] = stability[group_id] if kept[group_id] else below
    labels = np.full(count, -1, dtype=np.int64)
    pending = [group_id for group_id, parent in enumerate(parent_group) if parent < 0]
    label = -1
    while pending:
        group_id = pending.pop()
        if not kept[group_id]:
            pending.extend(children[group_id])
            continue
        label, inside = label + 1, [group_id]
        while inside:
            member = inside.pop()
            inside.extend(children[member])
            labels[_faces_under(tree, count, fallen[member])] = label
    return labels


def _faces_under(tree: _Tree, count: int, nodes: list[int]) -> list[int]:
    """The faces at the leaves of the nodes."""
    faces, stack = [], list(nodes)
    while stack:
        node = stack.pop()
        if node < count:
            faces.append(node)
        else:
            stack += (tree.left[node - count], tree.right[node - count])
    return faces


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
