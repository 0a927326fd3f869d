"""Synthetic face-like vectors for measuring Milvus, and the exact answers a search is scored against.

The vectors are clustered like face embeddings, so that the numbers say something about an archive of faces rather
than about uniform noise.
"""

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

DIMENSION = 512
# Faces of recurring people: this many a person on average (sizes vary, exponentially), at every size, so a person's
# neighbourhood looks the same at 10k and at 1M and only the haystack grows.
FACES_PER_PERSON = 100
# The share of faces of people seen only once (strangers in the background), scattered between the others.
STRANGERS = 0.2
# Centres: every centre shares one direction with this weight, and the rest varies along axes of decaying
# strength (standard deviation j ** -0.5 along the j-th of a random basis), as real embeddings do not fill the sphere.
SHARED_DIRECTION = 0.5
SPECTRUM_POWER = 0.5
# Per-face noise, of a strength drawn for each face. Together: same person about 0.61-0.90 apart (L2), different
# people 1.18-1.43, a face's nearest other person about 1.05 (the CASIA-WebFace model on real faces: 0.61-0.83
# and 0.99-1.57); uniform random unit vectors would all be about 1.41 apart.
NOISE = (0.4, 0.9)


@dataclass(frozen=True)
class FaceSet:
    """Synthetic unit-norm float32 vectors (N x 512) and held-out queries of the same people; labels say whose."""

    vectors: np.ndarray
    labels: np.ndarray
    queries: np.ndarray
    people: int


@dataclass(frozen=True)
class FaceSpace:
    """Where synthetic people live: a direction all share, and a random basis for their decaying variation."""

    shared: np.ndarray
    basis: np.ndarray

    @classmethod
    def make(cls, rng: np.random.Generator, dimension: int = DIMENSION) -> "FaceSpace":
        shared = rng.normal(size=dimension)
        basis, _ = np.linalg.qr(rng.normal(size=(dimension, dimension)))
        return cls(shared / np.linalg.norm(shared), basis)

    def centres(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """Unit-norm person centres, as far apart as real people's faces are (see NOISE)."""
        dimension = len(self.shared)
        own = (rng.normal(size=(count, dimension)) * np.arange(1, dimension + 1) ** -SPECTRUM_POWER) @ self.basis
        centres = SHARED_DIRECTION * self.shared + own / np.linalg.norm(own, axis=1, keepdims=True)
        return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def faces_around(centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One unit-norm float32 face per centre: the centre plus isotropic noise of a random strength."""
    count, dimension = centres.shape
    strength = rng.uniform(*NOISE, size=(count, 1)) / np.sqrt(dimension)
    faces = centres + strength * rng.standard_normal(size=(count, dimension))
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    return faces.astype(np.float32)


def face_set(size: int, queries: int, seed: int = 0, chunk: int = 100_000) -> FaceSet:
    """size vectors and held-out queries, made in chunks so 1M vectors need 2 GB, not 4 GB of float64 at once.

    Labels are person numbers; -1 marks a stranger, a person with this one face.
    """
    rng = np.random.default_rng(seed)
    space = FaceSpace.make(rng)
    people = max(1, round(size * (1 - STRANGERS) / FACES_PER_PERSON))
    centres = space.centres(people, rng)
    weights = rng.exponential(size=people)
    weights /= weights.sum()
    labels = rng.choice(people, size=size, p=weights)
    labels[rng.random(size) < STRANGERS] = -1
    vectors = np.empty((size, DIMENSION), dtype=np.float32)
    for start in range(0, size, chunk):
        part = labels[start : start + chunk]
        rows = centres[np.maximum(part, 0)]
        strangers = part < 0
        rows[strangers] = space.centres(int(strangers.sum()), rng)
        vectors[start : start + chunk] = faces_around(rows, rng)
    # Queries are new faces of stored (recurring) people: near the data, never members of it.
    query_labels = rng.choice(people, size=queries, p=weights)
    return FaceSet(vectors, labels, faces_around(centres[query_labels], rng), people)


def distance_summary(faces: FaceSet, pairs: int = 20_000, seed: int = 1) -> dict:
    """Median and 5th-95th percentile L2 distances of same-person and different-person pairs, to compare with faces."""
    rng = np.random.default_rng(seed)
    order = np.argsort(faces.labels, kind="stable")
    # Same person: neighbours in label order that share a label.
    positions = np.flatnonzero((faces.labels[order[:-1]] == faces.labels[order[1:]]) & (faces.labels[order[1:]] >= 0))
    positions = rng.choice(positions, size=min(pairs, len(positions)), replace=False)
    same, partner = order[positions], order[positions + 1]
    first, second = rng.integers(0, len(faces.vectors), size=(2, pairs))
    different = (faces.labels[first] != faces.labels[second]) | (faces.labels[first] < 0)

    def spread(a: np.ndarray, b: np.ndarray) -> list[float]:
        if not len(a):
            return []
        distances = np.linalg.norm(faces.vectors[a] - faces.vectors[b], axis=1)
        return [round(float(value), 2) for value in np.percentile(distances, [5, 50, 95])]

    return {"same_person": spread(same, partner), "different_people": spread(first[different], second[different])}


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 100_000) -> np.ndarray:
    """The ids of each query's true k nearest stored vectors, nearest first, by numpy brute force.

    Chunks keep the distance matrix small; the float32 shortlist is re-ranked in float64 so near-ties are exact.
    """
    shortlist = 2 * k
    best_ids = np.empty((len(queries), 0), dtype=np.int64)
    best_distances = np.empty((len(queries), 0), dtype=np.float32)
    query_norms = np.sum(queries**2, axis=1, keepdims=True)
    for start in range(0, len(vectors), chunk):
        block = vectors[start : start + chunk]
        distances = query_norms + np.sum(block**2, axis=1) - 2 * queries @ block.T
        take = min(shortlist, block.shape[0])
        nearest = np.argpartition(distances, take - 1, axis=1)[:, :take]
        best_ids = np.hstack([best_ids, nearest + start])
        best_distances = np.hstack([best_distances, np.take_along_axis(distances, nearest, axis=1)])
        keep = np.argsort(best_distances, axis=1)[:, :shortlist]
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
        best_distances = np.take_along_axis(best_distances, keep, axis=1)
    exact = np.stack([squared_distances(vectors, query, ids) for query, ids in zip(queries, best_ids, strict=True)])
    return np.take_along_axis(best_ids, np.argsort(exact, axis=1, kind="stable")[:, :k], axis=1)


def squared_distances(vectors: np.ndarray, query: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Squared L2 distances from one query to some stored vectors, in float64."""
    difference = vectors[ids].astype(np.float64) - query.astype(np.float64)
    return np.sum(difference**2, axis=1)


def recall_at_k(found: list[list[int]], exact: np.ndarray, vectors: np.ndarray, queries: np.ndarray) -> float:
    """Share of the true k nearest that a search returned, averaged over queries.

    A returned id as near as the true k-th (within 1e-6 relative) counts too: a tie is not a miss.
    """
    k = exact.shape[1]
    shares = []
    for ids, truth, query in zip(found, exact, queries, strict=True):
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        ids = ids[(ids >= 0) & (ids < len(vectors))]
        kth = squared_distances(vectors, query, truth[-1:])[0]
        near_enough = np.count_nonzero(squared_distances(vectors, query, ids) <= kth * (1 + 1e-6) + 1e-12)
        shares.append(min(near_enough, k) / k)
    return float(np.mean(shares))


def vectors_description() -> str:
    return (
        f"Synthetic face-like vectors: unit-norm float32, {DIMENSION}-d. {100 * (1 - STRANGERS):.0f}% are faces of"
        f" recurring people ({FACES_PER_PERSON} faces a person on average, exponentially distributed),"
        f" {100 * STRANGERS:.0f}% of strangers seen once. A face is its person's centre plus isotropic Gaussian noise"
        f" of norm {NOISE[0]}-{NOISE[1]}, normalised; centres share one direction (weight {SHARED_DIRECTION}) and"
        " vary along a random basis with"
        f" decaying spread (j^-{SPECTRUM_POWER}). Queries are new faces of recurring people, never stored themselves."
        " Exact answers by numpy brute force."
    )
