"""Clustering and open-set metrics on inputs small enough to work out by hand (the comments show the working)."""

import numpy as np
import pytest

from benchmarks.evaluation import cluster_metrics, openset

# Six faces of three people; the clustering puts person 0's third face with person 1 and leaves person 2 out.
TRUTH = np.array([0, 0, 0, 1, 1, 2])
LABELS = np.array([7, 7, 9, 9, 9, -1])


def test_bcubed_on_a_hand_worked_example():
    # Precision per face: 2/2, 2/2, 1/3, 2/3, 2/3, 1/1 (the noise face is a group of one) -> 14/3 / 6 = 7/9.
    # Recall per face: 2/3, 2/3, 1/3, 2/2, 2/2, 1/1 -> 14/3 / 6 = 7/9.
    precision, recall, f = cluster_metrics.bcubed(TRUTH, LABELS)
    assert precision == pytest.approx(7 / 9) and recall == pytest.approx(7 / 9) and f == pytest.approx(7 / 9)


def test_pairwise_on_the_same_example():
    # Pairs grouped: {0,1} right, {2,3} {2,4} wrong, {3,4} right -> precision 2/4.
    # Pairs of one person: {0,1} {0,2} {1,2} {3,4}, of which {0,1} and {3,4} are grouped -> recall 2/4.
    assert cluster_metrics.pairwise(TRUTH, LABELS) == pytest.approx((0.5, 0.5, 0.5))


def test_the_score_counts_people_found_and_faces_left_out():
    score = cluster_metrics.score(TRUTH, LABELS)
    assert (score.people_found, score.people_true, score.unclustered) == (2, 3, 1)
    assert score.bcubed_f == pytest.approx(7 / 9) and score.pairwise_f == pytest.approx(0.5)


def test_noise_faces_are_singletons_not_one_group():
    # Two faces of one person, both left out: each is alone, so each recalls 1/2 of its person.
    precision, recall, _ = cluster_metrics.bcubed(np.array([0, 0, 1]), np.array([-1, -1, -1]))
    assert precision == 1.0 and recall == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    # No pair grouped: nothing wrong (precision 1), none of the one true pair found (recall 0).
    assert cluster_metrics.pairwise(np.array([0, 0, 1]), np.array([-1, -1, -1])) == (1.0, 0.0, 0.0)


def test_everything_in_one_group_and_a_perfect_grouping():
    truth = np.array([0, 0, 1, 1])
    # One group of four: each face's group is half its person -> precision 1/2, recall 1; pairs 2 of 6 right.
    assert cluster_metrics.bcubed(truth, np.array([5, 5, 5, 5]))[:2] == pytest.approx((0.5, 1.0))
    assert cluster_metrics.pairwise(truth, np.array([5, 5, 5, 5]))[:2] == pytest.approx((2 / 6, 1.0))
    # Label numbers need not match the truth's, only the partition does.
    perfect = cluster_metrics.score(truth, np.array([3, 3, 0, 0]))
    assert (perfect.bcubed_precision, perfect.bcubed_recall, perfect.pairwise_f) == (1.0, 1.0, 1.0)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="one length"):
        cluster_metrics.score(np.array([0, 1]), np.array([0]))


def test_the_open_set_threshold_names_at_most_the_allowed_share_of_strangers():
    # 40 stranger distances 0.01..0.40: 5% is 2 of them, so the threshold is the third smallest (0.03):
    # only 0.01 and 0.02 are strictly below it.
    distances = np.arange(1, 41) / 100
    threshold = openset.threshold_for(distances, 0.05)
    assert threshold == pytest.approx(0.03) and np.sum(distances < threshold) == 2
    with pytest.raises(ValueError, match="no stranger"):
        openset.threshold_for(np.array([]))


def test_nearest_gallery_face_and_rates_on_points_of_a_line():
    gallery = np.array([[0.0, 0.0], [10.0, 0.0]])
    index, distance = openset.nearest(np.array([[1.0, 0.0], [9.0, 0.0], [5.5, 0.0]]), gallery)
    assert index.tolist() == [0, 1, 1] and distance == pytest.approx([1.0, 1.0, 4.5])
    trial = openset._Trial(
        stranger=np.array([0.5, 2.0, 3.0, 4.0]),
        known=np.array([0.2, 0.8, 1.5]),
        known_right=np.array([True, False, True]),
        gallery_faces=2,
        known_people=2,
    )
    # Below 1.0: one stranger of four named; known probes 0.2 (right) and 0.8 (wrong person) are named.
    rates = openset.rates([trial], 1.0)
    assert rates.stranger_named == 0.25
    assert rates.known_identified == pytest.approx(1 / 3) and rates.known_misnamed == pytest.approx(1 / 3)


def test_an_open_set_split_keeps_strangers_out_of_the_gallery():
    # Four people, two with three faces each near their own point, two with one face: the single-face people
    # are always strangers, and with faces this far apart every known probe is named right.
    rng = np.random.default_rng(0)
    centres = np.eye(4)
    people = {
        "a": centres[0] + rng.normal(0, 0.01, (3, 4)),
        "b": centres[1] + rng.normal(0, 0.01, (3, 4)),
        "c": centres[2][None, :],
        "d": centres[3][None, :],
    }
    result = openset.evaluate("toy", people, pair_threshold=1.5, splits=4)
    assert result.known_people == 1 and result.gallery_faces == 2 and result.known_probes == 1
    assert result.stranger_probes == 3 + 1 + 1  # the other person's three faces, and c and d
    assert result.rank_1 == 1.0 and result.at_identification.known_identified == 1.0
    # Strangers are about sqrt(2) from any gallery face: the pair threshold 1.5 names every one of them.
    assert result.at_pair.stranger_named == 1.0 and result.at_identification.stranger_named <= 0.05
    assert [point.known_people for point in result.curve] == [1]  # no smaller gallery than the whole known half


def toy_people(people: int, faces: int, strangers: int) -> dict[str, np.ndarray]:
    """People whose faces lie near a random unit point of their own, and one-face strangers, in 16 dimensions."""
    rng = np.random.default_rng(1)

    def unit(rows: np.ndarray) -> np.ndarray:
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    centres = unit(rng.normal(size=(people + strangers, 16)))
    several = {f"p{n}": unit(centres[n] + rng.normal(0, 0.15, (faces, 16))) for n in range(people)}
    return several | {f"s{n}": centres[people + n][None, :] for n in range(strangers)}


def test_the_threshold_tightens_as_the_gallery_grows_and_ends_at_the_whole_known_half():
    # 40 people of 4 faces: 20 known a split, 3 gallery faces each; LADDER's 10 people is the one smaller gallery,
    # drawn LADDER_PEOPLE // 10 times a split from that split's known people, against the same strangers.
    result = openset.evaluate("toy", toy_people(40, 4, 200), pair_threshold=1.0, splits=3)
    small, whole = result.curve
    assert (small.known_people, small.gallery_faces, small.galleries) == (10, 30, 3 * openset.LADDER_PEOPLE // 10)
    assert (whole.known_people, whole.gallery_faces, whole.galleries) == (20, 60, 3)
    assert whole.at == result.at_identification
    # A stranger is never nearer to a part of a gallery than to all of it: the smaller gallery's threshold is higher.
    assert small.at.threshold > whole.at.threshold
    assert small.at.stranger_named <= openset.FALSE_MATCH and whole.at.stranger_named <= openset.FALSE_MATCH
    assert openset.stored_curve(result) == [[30, round(small.at.threshold, 4)], [60, round(whole.at.threshold, 4)]]
    assert [point["gallery_faces"] for point in openset.record(result)["by_gallery_size"]] == [30, 60]


@pytest.mark.django_db
def test_the_curve_is_stored_with_the_calibration_and_read_back():
    from media_index import calibration

    result = openset.evaluate("toy", toy_people(40, 4, 200), pair_threshold=1.0, splits=2)
    stored = openset.store(result, lambda threshold: (0.9, 10))
    assert stored.identification_curve == openset.stored_curve(result)
    scale = calibration.for_model("toy")
    assert scale.identification == pytest.approx(result.at_identification.threshold)
    assert scale.identification_for(30) == pytest.approx(result.curve[0].at.threshold, abs=1e-4)
    assert scale.identification_for(10**6) == pytest.approx(result.at_identification.threshold, abs=1e-4)
    # A second run updates the same row, curve and all.
    stored.identification_curve = None
    stored.save()
    again = openset.store(result, lambda threshold: (0.9, 10))
    assert again.pk == stored.pk and again.identification_curve == openset.stored_curve(result)
