"""Face verification and retrieval metrics for the LFW benchmark, in numpy alone.

Everywhere here a pair is accepted as the same person when its distance is strictly below the threshold.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

# On the weights of the standardised fit: keeps perfectly separable pairs finite and is negligible otherwise.
CALIBRATION_PENALTY = 1e-3
# A damped Newton step on a strongly concave objective converges within a few dozen iterations.
CALIBRATION_ITERATIONS = 100


@dataclass(frozen=True)
class Verification:
    """LFW View 2 figures. accuracy and std are over the held-out folds; auc, tar_at_far_1e_3 and threshold use all
    pairs. Same person when distance < threshold."""

    accuracy: float
    std: float
    auc: float
    tar_at_far_1e_3: float
    threshold: float
    fold_thresholds: tuple[float, ...]  # the threshold chosen for each fold, in ascending fold order


@dataclass(frozen=True)
class Retrieval:
    """Search quality with each photo in turn as the query; the three shares and map_at_20 are in [0, 1].

    The field names say 20 and 10: top20_hit_portion and map_at_20 are measured at the k given to `retrieval`."""

    queries: int
    top20_hit_portion: float
    recall_at_1: float
    recall_at_10: float
    map_at_20: float


@dataclass(frozen=True)
class ScoreCalibration:
    """P(same person | distance) = 1 / (1 + exp(slope * (distance - midpoint))), fitted by logistic regression on
    labelled pairs. midpoint is the distance where P = 1/2; slope > 0, per unit of distance."""

    midpoint: float
    slope: float

    def probability(self, distance: float | np.ndarray) -> float | np.ndarray:
        """P(same person) at `distance`, written with tanh so that no exp overflows far from the midpoint."""
        half_logit = 0.5 * self.slope * (np.asarray(distance, dtype=np.float64) - self.midpoint)
        probability = 0.5 - 0.5 * np.tanh(half_logit)
        return float(probability) if np.ndim(distance) == 0 else probability


def _pairs(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """distances as float64 and same as bool, checked: 1-d, one length, finite, both kinds of pair present."""
    distances = np.asarray(distances, dtype=np.float64)
    labels = np.asarray(same)
    if distances.ndim != 1 or labels.ndim != 1:
        raise ValueError(f"distances and same must be 1-d, not of shapes {distances.shape} and {labels.shape}")
    if len(distances) != len(labels):
        raise ValueError(f"{len(distances)} distances but {len(labels)} same labels")
    if not np.isfinite(distances).all():
        raise ValueError("distances must be finite")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("same must hold booleans (or 0 and 1)")
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("need at least one same-person pair and one different-person pair")
    return distances, labels


def _best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The threshold that classifies these pairs most accurately.

    1. Candidates: the smallest distance (accepts nothing), the midpoints between consecutive distinct distances,
       and the next float above the largest (accepts everything).
    2. Count, for every candidate at once, the same pairs below it and the different pairs not below it, by binary
       search in each kind's sorted distances: O(n log n) rather than O(n^2).
    3. Take the first maximum: of equally accurate thresholds the smallest, which accepts the fewest strangers.
    """
    values = np.unique(distances)
    candidates = np.concatenate(([values[0]], (values[:-1] + values[1:]) / 2, [np.nextafter(values[-1], np.inf)]))
    same_sorted, different_sorted = np.sort(distances[same]), np.sort(distances[~same])
    correct = (
        np.searchsorted(same_sorted, candidates, side="left")
        + len(different_sorted)
        - np.searchsorted(different_sorted, candidates, side="left")
    )
    return float(candidates[np.argmax(correct)])


def verify(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> Verification:
    """LFW View 2: the accuracy of thresholds chosen without seeing the pairs they are tested on.

    1. For each fold, choose the threshold on the other folds (`_best_threshold`) and measure accuracy on this one.
    2. Report the mean and the population standard deviation of the fold accuracies, as LFW papers do.
    3. AUC, TAR at FAR 1e-3 and the reported threshold use all pairs.
    """
    distances, same = _pairs(distances, same)
    folds = np.asarray(folds)
    if folds.shape != distances.shape:
        raise ValueError(f"{len(distances)} pairs but folds of shape {folds.shape}: give every pair its fold")
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2:
        raise ValueError("need at least two folds: each fold's threshold is chosen on the others")
    thresholds, accuracies = [], []
    for fold in fold_ids:
        held_out = folds == fold
        threshold = _best_threshold(distances[~held_out], same[~held_out])
        thresholds.append(threshold)
        accuracies.append(np.mean((distances[held_out] < threshold) == same[held_out]))
    return Verification(
        accuracy=float(np.mean(accuracies)),
        std=float(np.std(accuracies)),
        auc=roc_auc(distances, same),
        tar_at_far_1e_3=tar_at_far(distances, same, 1e-3),
        threshold=_best_threshold(distances, same),
        fold_thresholds=tuple(thresholds),
    )


def roc_curve(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(far, tar) as the threshold rises past each distinct distance, from (0, 0) to (1, 1), both non-decreasing.

    All pairs at one distance are accepted together, so a tie between same and different pairs is one diagonal
    segment rather than a staircase that would favour whichever kind happened to be sorted first.
    """
    distances, same = _pairs(distances, same)
    values, position = np.unique(distances, return_inverse=True)
    same_counts = np.bincount(position, weights=same.astype(np.float64), minlength=len(values))
    different_counts = np.bincount(position, weights=(~same).astype(np.float64), minlength=len(values))
    far = np.concatenate(([0.0], np.cumsum(different_counts) / np.count_nonzero(~same)))
    tar = np.concatenate(([0.0], np.cumsum(same_counts) / np.count_nonzero(same)))
    return far, tar


def roc_auc(distances: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a same pair is closer than a different pair, ties counting half."""
    far, tar = roc_curve(distances, same)
    return float(np.trapezoid(tar, far))


def tar_at_far(distances: np.ndarray, same: np.ndarray, far: float) -> float:
    """The highest TAR among ROC points whose FAR is at most `far`, without interpolating towards `far`.

    With fewer than 1/far different pairs no threshold reaches FAR = far exactly, so this is the TAR at a smaller
    FAR (possibly 0): a lower bound, never an estimate borrowed from a threshold that accepts too many strangers.
    """
    if not 0 <= far <= 1:
        raise ValueError(f"far must lie in [0, 1], not {far}")
    fars, tars = roc_curve(distances, same)
    return float(tars[fars <= far].max())


def assign_folds(count: int, folds: int = 10) -> np.ndarray:
    """Fold numbers 0..folds-1 for `count` pairs listed without folds, same-person pairs first.

    LFW's View 1 files (pairsDevTrain, pairsDevTest) list every same-person pair, then every different-person pair.
    1. Split the list into halves, the first taking the odd pair if `count` is odd.
    2. Cut each half into `folds` contiguous parts whose sizes differ by at most one.
    3. Fold i is part i of the first half plus part i of the second, so each fold keeps the file's balance.
    With fewer than 2 * folds pairs some folds stay empty (`verify` needs two that are not).
    """
    if folds < 2:
        raise ValueError(f"need at least two folds, not {folds}")
    if count < 0:
        raise ValueError(f"count must not be negative, not {count}")
    first = (count + 1) // 2
    return np.concatenate([np.arange(half) * folds // max(half, 1) for half in (first, count - first)])


def retrieval(ranked_same: list[list[bool]], relevant: list[int], k: int = 20) -> Retrieval:
    """Search quality when each photo in turn is the query and the rest of the index is searched.

    ranked_same[i] says, nearest first and the query itself excluded, whether each result shows the query's person;
    relevant[i] is how many other photos of that person the index holds. Per query, then averaged:
    1. hit portion: same-person results in the top k over min(k, relevant), so 1 means as many as could fit.
    2. recall@1 and recall@10: whether the first result, or any of the first ten, is the same person.
    3. AP@k: the precision at each same-person rank within the top k, summed and divided by min(k, relevant).
    A query whose person has no other photo cannot score: leave it out.
    """
    if len(ranked_same) != len(relevant):
        raise ValueError(f"{len(ranked_same)} ranked lists but {len(relevant)} relevant counts")
    if not ranked_same:
        raise ValueError("no queries to score")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    portions, at_1, at_10, precisions = [], [], [], []
    for query, (ranked, count) in enumerate(zip(ranked_same, relevant, strict=True)):
        hits = np.asarray(ranked, dtype=bool)
        if count < 1:
            raise ValueError(f"query {query}: its person has no other photo in the index; leave such queries out")
        if np.count_nonzero(hits) > count:
            raise ValueError(f"query {query}: {np.count_nonzero(hits)} same-person results but only {count} relevant")
        ranks = np.flatnonzero(hits[:k]) + 1
        possible = min(k, count)
        portions.append(len(ranks) / possible)
        at_1.append(hits[:1].any())
        at_10.append(hits[:10].any())
        precisions.append(np.sum(np.arange(1, len(ranks) + 1) / ranks) / possible)
    return Retrieval(
        queries=len(ranked_same),
        top20_hit_portion=float(np.mean(portions)),
        recall_at_1=float(np.mean(at_1)),
        recall_at_10=float(np.mean(at_10)),
        map_at_20=float(np.mean(precisions)),
    )


def knn_accuracy(neighbour_labels: list[list[str]], true_labels: list[str], k: int) -> float:
    """Share of photos that the majority of their k nearest neighbours (nearest first) labels correctly.

    A tie goes to the tied label whose nearest member comes first, as a 1-NN would decide between them. A list
    shorter than k (a small index) votes with what it has.
    """
    if len(neighbour_labels) != len(true_labels):
        raise ValueError(f"{len(neighbour_labels)} neighbour lists but {len(true_labels)} true labels")
    if not true_labels:
        raise ValueError("no photos to classify")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    correct = 0
    for photo, (neighbours, truth) in enumerate(zip(neighbour_labels, true_labels, strict=True)):
        nearest = neighbours[:k]
        if not nearest:
            raise ValueError(f"photo {photo} has no neighbours to vote")
        # most_common lists equal counts in the order first met, which is nearest first.
        correct += Counter(nearest).most_common(1)[0][0] == truth
    return correct / len(true_labels)


def _penalised_log_likelihood(weights: np.ndarray, features: np.ndarray, same: np.ndarray) -> float:
    logits = features @ weights
    return float(np.sum(same * logits - np.logaddexp(0.0, logits)) - 0.5 * CALIBRATION_PENALTY * weights @ weights)


def fit_score_calibration(distances: np.ndarray, same: np.ndarray) -> ScoreCalibration:
    """Logistic regression of `same` on distance by Newton's method (IRLS), so a distance reads as a probability.

    1. Standardise the distances, so that the penalty and the stopping rule do not depend on their scale.
    2. Maximise the log-likelihood of P(same) = sigmoid(a + b z) less a tiny L2 penalty on (a, b): perfectly
       separable pairs would otherwise drive b to minus infinity.
    3. Halve each Newton step until the penalised objective does not fall; stop when the step is below 1e-10.
    4. Map back to distances: slope = -b / scale, midpoint = centre - a scale / b (where P = 1/2).
    """
    distances, same = _pairs(distances, same)
    centre, scale = distances.mean(), distances.std()
    if scale == 0:
        raise ValueError("every pair has the same distance: there is no trend to calibrate")
    features = np.column_stack([np.ones_like(distances), (distances - centre) / scale])
    labels = same.astype(np.float64)
    weights = np.zeros(2)
    for _ in range(CALIBRATION_ITERATIONS):
        probability = 0.5 + 0.5 * np.tanh(0.5 * features @ weights)
        gradient = features.T @ (labels - probability) - CALIBRATION_PENALTY * weights
        curvature = (features.T * (probability * (1 - probability))) @ features + CALIBRATION_PENALTY * np.eye(2)
        step = np.linalg.solve(curvature, gradient)
        current = _penalised_log_likelihood(weights, features, labels)
        while _penalised_log_likelihood(weights + step, features, labels) < current and np.abs(step).max() > 1e-10:
            step = step / 2
        weights = weights + step
        if np.abs(step).max() < 1e-10:
            break
    intercept, coefficient = weights
    if coefficient >= 0:
        raise ValueError("same-person pairs are not closer than different-person pairs: no calibration with slope > 0")
    return ScoreCalibration(midpoint=float(centre - intercept * scale / coefficient), slope=float(-coefficient / scale))
