"""LFW metrics on inputs small enough to work out by hand (the comments show the working)."""

import numpy as np
import pytest

from benchmarks.evaluation import metrics

# Six pairs, sorted by distance: same, same, different, same, different, different.
SIX_DISTANCES = np.array([0.2, 0.4, 0.5, 0.7, 0.9, 1.1])
SIX_SAME = np.array([True, True, False, True, False, False])


def test_separable_pairs_score_perfectly() -> None:
    # Every same pair (0.1..0.4) is closer than every different pair (0.6..0.9), in each of 10 folds.
    same_distances, different_distances = np.linspace(0.1, 0.4, 30), np.linspace(0.6, 0.9, 30)
    distances = np.concatenate([same_distances, different_distances])
    same = np.arange(60) < 30
    folds = np.concatenate([np.arange(30) % 10, np.arange(30) % 10])
    result = metrics.verify(distances, same, folds)
    assert result.accuracy == 1.0
    assert result.std == 0.0
    assert result.auc == 1.0
    assert result.tar_at_far_1e_3 == 1.0
    # The only separating candidate is the midpoint of the gap: (0.4 + 0.6) / 2.
    assert result.threshold == pytest.approx(0.5)
    assert len(result.fold_thresholds) == 10


def test_threshold_maximises_accuracy_and_prefers_the_smaller_of_equals() -> None:
    # Candidates and correct pairs (accepted same + rejected different):
    # 0.2 (accepts nothing) 0+3=3, 0.3: 1+3=4, 0.45: 2+3=5, 0.6: 2+2=4, 0.8: 3+2=5, 1.0: 3+1=4, above 1.1: 3+0=3.
    # 0.45 and 0.8 both get 5 of 6 right; the smaller accepts fewer strangers.
    assert metrics._best_threshold(SIX_DISTANCES, SIX_SAME) == pytest.approx(0.45)


def test_roc_points_and_auc_of_six_pairs() -> None:
    # 3 same and 3 different pairs; passing each distance accepts one pair: S S D S D D.
    far, tar = metrics.roc_curve(SIX_DISTANCES, SIX_SAME)
    np.testing.assert_allclose(far, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tar, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    # Area: TAR 2/3 over FAR 0..1/3, then TAR 1 over 1/3..1 = 2/9 + 6/9. Equally: 8 of the 9 (same, different)
    # pairs have the same pair closer (only 0.7 > 0.5 is out of order).
    assert metrics.roc_auc(SIX_DISTANCES, SIX_SAME) == pytest.approx(8 / 9)
    # FAR 0 allows TAR 2/3; FAR 1/3 (one stranger) is needed to reach TAR 1.
    assert metrics.tar_at_far(SIX_DISTANCES, SIX_SAME, 0.0) == pytest.approx(2 / 3)
    assert metrics.tar_at_far(SIX_DISTANCES, SIX_SAME, 0.3) == pytest.approx(2 / 3)
    assert metrics.tar_at_far(SIX_DISTANCES, SIX_SAME, 0.5) == 1.0


def test_tied_distances_enter_the_roc_together() -> None:
    # A same and a different pair at 0.3, another such pair at 0.5: the ROC is the diagonal, not a staircase.
    distances, same = np.array([0.3, 0.3, 0.5, 0.5]), np.array([True, False, True, False])
    far, tar = metrics.roc_curve(distances, same)
    np.testing.assert_allclose(far, [0, 0.5, 1])
    np.testing.assert_allclose(tar, [0, 0.5, 1])
    assert metrics.roc_auc(distances, same) == pytest.approx(0.5)
    # No threshold accepts the tied same pair without its tied stranger.
    assert metrics.tar_at_far(distances, same, 0.0) == 0.0


def test_ties_count_half_in_the_auc() -> None:
    # Same at 0.1 and 0.3, different at 0.3 and 0.6. (same, different) pairs: 0.1 beats both, 0.3 ties 0.3 (half)
    # and beats 0.6: 3.5 of 4 = 7/8. ROC: (0,0) (0,1/2) (1/2,1) (1,1); the tie is the diagonal step.
    distances, same = np.array([0.1, 0.3, 0.3, 0.6]), np.array([True, True, False, False])
    np.testing.assert_allclose(metrics.roc_curve(distances, same)[0], [0, 0, 0.5, 1])
    assert metrics.roc_auc(distances, same) == pytest.approx(7 / 8)


def test_each_fold_is_tested_on_a_threshold_chosen_elsewhere() -> None:
    # Fold 0: same 0.125, different 0.5. Fold 1: same 0.375, different 0.625 (all exact in binary).
    # Fold 0 is tested at fold 1's threshold (0.375 + 0.625) / 2 = 0.5: 0.125 accepted, 0.5 not (strictly below
    # only), both right: 1.0. Fold 1 is tested at (0.125 + 0.5) / 2 = 0.3125: 0.375 wrongly rejected: 0.5.
    result = metrics.verify([0.125, 0.5, 0.375, 0.625], [True, False, True, False], [0, 0, 1, 1])
    assert result.fold_thresholds == (0.5, 0.3125)
    assert result.accuracy == 0.75
    # Population std of (1.0, 0.5) is 0.25 (the sample std would be 0.354).
    assert result.std == 0.25
    # All four pairs: same 0.125, 0.375 below different 0.5, 0.625; the gap's midpoint is 0.4375.
    assert result.threshold == 0.4375
    assert result.auc == 1.0


def test_assign_folds_keeps_one_same_and_one_different_pair_in_each_fold() -> None:
    folds = metrics.assign_folds(20)
    same = np.arange(20) < 10  # the file lists 10 same pairs, then 10 different pairs
    assert folds.shape == (20,)
    for fold in range(10):
        assert np.count_nonzero(same[folds == fold]) == 1
        assert np.count_nonzero(~same[folds == fold]) == 1


def test_assign_folds_makes_contiguous_nearly_equal_parts() -> None:
    # 25 pairs: a first half of 13 cut into 3 parts of 5, 4, 4 (i * 3 // 13), a second half of 12 into 4, 4, 4.
    folds = metrics.assign_folds(25, folds=3)
    np.testing.assert_array_equal(folds, [0] * 5 + [1] * 4 + [2] * 4 + [0] * 4 + [1] * 4 + [2] * 4)


def test_assign_folds_leaves_folds_empty_when_pairs_are_few() -> None:
    # 4 pairs in 10 folds: each half of 2 goes to folds 0 and 5 (i * 10 // 2), each fold a same and a different pair.
    np.testing.assert_array_equal(metrics.assign_folds(4), [0, 5, 0, 5])
    np.testing.assert_array_equal(metrics.assign_folds(1), [0])
    assert metrics.assign_folds(0).shape == (0,)


def test_retrieval_of_three_queries() -> None:
    ranked_same = [
        # 2 relevant, found at ranks 1 and 3: portion 2/2, AP (1/1 + 2/3) / 2 = 5/6.
        [True, False, True, False],
        # 3 relevant, found at rank 2 only: portion 1/3, AP (1/2) / 3 = 1/6.
        [False, True, False],
        # 1 relevant, at rank 11: inside the top 20 (portion 1, AP 1/11) but not the top 10.
        [False] * 10 + [True],
    ]
    result = metrics.retrieval(ranked_same, [2, 3, 1])
    assert result.queries == 3
    assert result.top20_hit_portion == pytest.approx((1 + 1 / 3 + 1) / 3)  # 7/9
    assert result.recall_at_1 == pytest.approx(1 / 3)
    assert result.recall_at_10 == pytest.approx(2 / 3)
    assert result.map_at_20 == pytest.approx((5 / 6 + 1 / 6 + 1 / 11) / 3)  # 4/11


def test_retrieval_divides_by_what_fits_in_the_top_k() -> None:
    # 5 relevant but k = 2: both top results are the person, so the portion and AP are 1, not 2/5.
    result = metrics.retrieval([[True, True, False, True]], [5], k=2)
    assert result.top20_hit_portion == 1.0
    assert result.map_at_20 == 1.0
    # At k = 2, a hit at rank 11 is out of reach.
    assert metrics.retrieval([[False] * 10 + [True]], [1], k=2).top20_hit_portion == 0.0


def test_knn_majority_vote_and_tie() -> None:
    neighbours = [
        ["b", "a", "a", "b"],  # k=4: a 2, b 2, tied: b has the nearest neighbour, so b (right)
        ["a", "b", "b", "c"],  # k=4: b 2 wins outright over a 1 (wrong for a)
        ["c", "a"],  # shorter than k: votes c 1, a 1, tied: c is nearer (right)
    ]
    assert metrics.knn_accuracy(neighbours, ["b", "a", "c"], k=4) == pytest.approx(2 / 3)
    # k=3: first list a 2 over b 1 (wrong for b); second b 2 (wrong); third c (right).
    assert metrics.knn_accuracy(neighbours, ["b", "a", "c"], k=3) == pytest.approx(1 / 3)


def test_calibration_recovers_a_known_logistic() -> None:
    # 4000 distances labelled same with P = 1 / (1 + exp(6 (d - 1))). The fit's standard errors are about 0.01
    # on the midpoint and 0.2 on the slope.
    rng = np.random.default_rng(7)
    distances = rng.uniform(0.2, 1.8, 4000)
    same = rng.random(4000) < 1 / (1 + np.exp(6 * (distances - 1.0)))
    calibration = metrics.fit_score_calibration(distances, same)
    assert calibration.midpoint == pytest.approx(1.0, abs=0.05)
    assert calibration.slope == pytest.approx(6.0, rel=0.15)
    assert calibration.probability(calibration.midpoint) == pytest.approx(0.5)
    curve = calibration.probability(np.array([0.5, 1.5]))
    assert curve[0] > 0.9 > 0.1 > curve[1]


def test_calibration_of_separable_pairs_is_finite_and_steep() -> None:
    # No overlap: maximum likelihood alone would make the slope infinite; the penalty keeps it finite, with the
    # midpoint in the gap between 0.5 and 0.9.
    calibration = metrics.fit_score_calibration([0.2, 0.3, 0.5, 0.9, 1.0, 1.3], [1, 1, 1, 0, 0, 0])
    assert 0.5 < calibration.midpoint < 0.9
    assert 10 < calibration.slope < 1e3
    assert calibration.probability(0.2) > 0.99
    # Far from the midpoint the probability is 0 without an overflow (warnings are errors).
    assert calibration.probability(100.0) == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.verify([0.1, 0.2], [True, False, True], [0, 1]), "2 distances but 3 same labels"),
        (lambda: metrics.verify([0.1, 0.2], [True, True], [0, 1]), "at least one same-person pair"),
        (lambda: metrics.verify([0.1, 0.2], [False, False], [0, 1]), "at least one same-person pair"),
        (lambda: metrics.verify([0.1, 0.2], [True, False], [0]), "give every pair its fold"),
        (lambda: metrics.verify([0.1, 0.2], [True, False], [0, 0]), "at least two folds"),
        (lambda: metrics.verify([0.1, np.nan], [True, False], [0, 1]), "finite"),
        (lambda: metrics.roc_curve([0.1, 0.2], [2, 0]), "booleans"),
        (lambda: metrics.tar_at_far([0.1, 0.2], [True, False], 1.5), "far must lie in"),
        (lambda: metrics.assign_folds(-1), "must not be negative"),
        (lambda: metrics.assign_folds(20, folds=1), "at least two folds"),
        (lambda: metrics.retrieval([[True]], [1, 2]), "1 ranked lists but 2"),
        (lambda: metrics.retrieval([], []), "no queries"),
        (lambda: metrics.retrieval([[False]], [0]), "no other photo"),
        (lambda: metrics.retrieval([[True, True]], [1]), "2 same-person results but only 1"),
        (lambda: metrics.knn_accuracy([["a"]], ["a", "b"], 1), "1 neighbour lists but 2"),
        (lambda: metrics.knn_accuracy([[]], ["a"], 1), "no neighbours"),
        (lambda: metrics.knn_accuracy([["a"]], ["a"], 0), "k must be at least 1"),
        (lambda: metrics.fit_score_calibration([0.5, 0.5], [True, False]), "same distance"),
        (lambda: metrics.fit_score_calibration([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]), "not closer"),
    ],
)
def test_bad_inputs_raise_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
