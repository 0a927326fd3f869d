"""Clustering quality against known identities: BCubed and pairwise precision, recall and F, in numpy alone.

A label of -1 (noise, left out of every group) counts as a group of its own: a face nobody was found for is a
person of one, which costs recall and never precision.
"""

from dataclasses import dataclass

import numpy as np

NOISE = -1


@dataclass(frozen=True)
class ClusterScore:
    """How one clustering compares with the truth; every share is in [0, 1]."""

    bcubed_precision: float
    bcubed_recall: float
    bcubed_f: float
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f: float
    people_found: int  # groups formed (noise excluded)
    people_true: int
    unclustered: int  # faces labelled -1


def harmonic(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def with_singletons(labels: np.ndarray) -> np.ndarray:
    """The labels with each -1 replaced by a new label of its own."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    noise = labels == NOISE
    start = labels.max(initial=NOISE) + 1
    labels[noise] = np.arange(start, start + noise.sum())
    return labels


def _cells(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """One code per item for its (true identity, predicted group) cell."""
    _, truth_codes = np.unique(truth, return_inverse=True)
    _, predicted_codes = np.unique(predicted, return_inverse=True)
    return truth_codes.astype(np.int64) * (predicted_codes.max(initial=0) + 1) + predicted_codes


def _size_of_each(values: np.ndarray) -> np.ndarray:
    """For each item, how many items share its value."""
    _, codes, sizes = np.unique(values, return_inverse=True, return_counts=True)
    return sizes[codes]


def _pairs_within(values: np.ndarray) -> int:
    """How many pairs of items share a value."""
    _, sizes = np.unique(values, return_counts=True)
    return int((sizes * (sizes - 1) // 2).sum())


def bcubed(truth: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """BCubed precision, recall and F (Bagga & Baldwin 1998; Amigo et al. 2009), averaged over items.

    An item's precision is the share of its predicted group that has its true identity, its recall the share of
    its true identity that is in its predicted group.
    """
    truth, labels = _checked(truth, labels)
    if len(truth) == 0:
        return 1.0, 1.0, 1.0
    predicted = with_singletons(labels)
    cell = _size_of_each(_cells(truth, predicted))
    precision = float(np.mean(cell / _size_of_each(predicted)))
    recall = float(np.mean(cell / _size_of_each(truth)))
    return precision, recall, harmonic(precision, recall)


def pairwise(truth: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F over the pairs of items put in one group (1.0 where there is no pair to judge)."""
    truth, labels = _checked(truth, labels)
    predicted = with_singletons(labels)
    together, predicted_pairs, true_pairs = (
        _pairs_within(_cells(truth, predicted)),
        _pairs_within(predicted),
        _pairs_within(truth),
    )
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / true_pairs if true_pairs else 1.0
    return precision, recall, harmonic(precision, recall)


def score(truth: np.ndarray, labels: np.ndarray) -> ClusterScore:
    """Every figure of one clustering: truth holds identities (any integers), labels the groups with -1 for noise."""
    truth, labels = _checked(truth, labels)
    b_precision, b_recall, b_f = bcubed(truth, labels)
    p_precision, p_recall, p_f = pairwise(truth, labels)
    return ClusterScore(
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f=b_f,
        pairwise_precision=p_precision,
        pairwise_recall=p_recall,
        pairwise_f=p_f,
        people_found=len(np.unique(labels[labels != NOISE])),
        people_true=len(np.unique(truth)),
        unclustered=int((labels == NOISE).sum()),
    )


def _checked(truth: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    truth, labels = np.asarray(truth, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    if truth.ndim != 1 or truth.shape != labels.shape:
        raise ValueError(f"truth and labels must be 1-d of one length, not of shapes {truth.shape} and {labels.shape}")
    return truth, labels
