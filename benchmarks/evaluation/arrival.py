"""The rule people/assignment.py applies while indexing, replayed on embeddings in an arrival order.

Indexing sees faces one at a time and asks Milvus for each one's nearest stored faces; here the same rule runs over
the faces in a shuffled order (fixed seed), with exact neighbours among those that came before, so its grouping
can be scored beside the full rebuild's on the same embeddings.
"""

from collections import Counter

import numpy as np

from people import assignment, grouping

# Neighbours found per face among all of them, before keeping those that came earlier: well over the
# assignment's own NEIGHBOURS, so that a face with many close ones still sees its nearest earlier ones.
POOL = 256
SEED = 20261203


def assign_in_order(vectors: np.ndarray, radius: float, min_faces: int, order: np.ndarray | None = None) -> np.ndarray:
    """Labels as indexing leaves them, faces arriving in `order` (shuffled by default): join a person on two close
    faces of theirs (all of a person of one), or form one with min_faces close faces that have none; -1 for faces
    left alone."""
    near = grouping.neighbours(vectors, radius, limit=POOL)
    if order is None:
        order = np.random.default_rng(SEED).permutation(len(vectors))
    arrived = np.empty(len(vectors), dtype=np.int64)
    arrived[order] = np.arange(len(vectors))
    labels = np.full(len(vectors), -1, dtype=np.int64)
    sizes: Counter[int] = Counter()
    for face in order:
        earlier = [int(other) for other in near[face] if arrived[other] < arrived[face]][: assignment.NEIGHBOURS]
        votes = Counter(int(labels[other]) for other in earlier if labels[other] >= 0)
        if votes:
            person, count = votes.most_common(1)[0]  # neighbours are nearest first: ties go to the nearest
            if count >= min(2, sizes[person]):
                labels[face] = person
                sizes[person] += 1
            continue
        free = [other for other in earlier if labels[other] < 0]
        if len(free) + 1 >= min_faces:
            person = len(sizes)
            labels[[face, *free]] = person
            sizes[person] = len(free) + 1
    return labels
