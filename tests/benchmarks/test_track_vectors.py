"""Vectors per track: which faces of a track each strategy stores, and how found tracks are counted against every
face's vectors."""

import numpy as np
import pytest

from benchmarks import track_vectors
from benchmarks.track_vectors import Sampled


def unit(*angles: float) -> np.ndarray:
    """Unit vectors in a plane, at these angles (radians): distances follow the angle between them."""
    return np.array([[np.cos(angle), np.sin(angle), 0.0] for angle in angles], dtype=np.float32)


def test_best_keeps_the_most_confident_face_and_medoid_the_central_one() -> None:
    vectors = unit(0.0, 0.1, 0.2, 1.0)
    probabilities = np.array([0.9, 0.95, 0.99, 0.97])
    assert track_vectors.select(vectors, probabilities, "best") == [2]
    assert track_vectors.select(vectors, probabilities, "medoid") == [1]
    assert track_vectors.select(vectors, probabilities, "every") == [0, 1, 2, 3]


def test_spread_takes_the_ends_and_the_middle_and_never_more_than_the_track_holds() -> None:
    probabilities = np.ones(7)
    assert track_vectors.select(unit(*range(7)), probabilities, "spread3") == [0, 3, 6]
    assert track_vectors.select(unit(0.0, 0.5), probabilities[:2], "spread3") == [0, 1]
    assert track_vectors.select(unit(), probabilities[:0], "spread3") == []


def test_diverse_keeps_an_outlying_pose_that_spread_misses() -> None:
    # Frames 0-4 and 6 look alike; frame 5 (a profile, say) is far from them all.
    vectors = unit(0.0, 0.05, 0.1, 0.05, 0.0, 1.2, 0.1)
    probabilities = np.ones(7)
    assert 5 in track_vectors.select(vectors, probabilities, "diverse3")
    assert 5 not in track_vectors.select(vectors, probabilities, "spread3")
    assert len(track_vectors.select(vectors, probabilities, "diverse3")) == 3


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        track_vectors.select(unit(0.0), np.ones(1), "newest")


def test_a_track_near_the_query_only_in_a_face_not_stored_is_lost() -> None:
    # Track 0: its most confident face is far from the query, another face is near it. Track 1: far throughout.
    sampled = Sampled(
        vectors=unit(0.0, 1.0, 1.1, 2.5, 2.6),
        probabilities=np.array([0.8, 0.99, 0.9, 0.99, 0.9]),
        frames=np.array([0, 1, 2, 0, 1]),
        tracks=[[0, 1, 2], [3, 4]],
    )
    query = unit(0.05)[0]
    threshold = 0.5  # chord length: about 0.5 rad
    figures = track_vectors.compare(sampled, [(query, None)], threshold)
    assert (figures["every"]["vectors"], figures["every"]["tracks_found"], figures["every"]["recall"]) == (5, 1, 1.0)
    assert (figures["best"]["vectors"], figures["best"]["tracks_found"], figures["best"]["recall"]) == (2, 0, 0.0)
    assert figures["best"]["lost"] == 1 and figures["best"]["best_distance"] is None
    assert figures["spread3"]["recall"] == 1.0 and figures["spread3"]["vectors"] == 5
    assert figures["every"]["best_distance"] == pytest.approx(2 * np.sin(0.025), abs=1e-3)


def test_a_held_out_face_is_not_stored_so_it_cannot_find_itself() -> None:
    # Track 0 has two faces far apart: holding out one leaves only the other, beyond the threshold.
    sampled = Sampled(
        vectors=unit(0.0, 1.0, 0.02),
        probabilities=np.array([0.9, 0.9, 0.9]),
        frames=np.array([0, 1, 1]),
        tracks=[[0, 1], [2]],
    )
    figures = track_vectors.compare(sampled, [(sampled.vectors[0], 0)], threshold=0.5)
    assert (figures["every"]["tracks_found"], figures["every"]["own_track_found"]) == (1, 0)
    assert track_vectors.found(sampled.vectors[0], *track_vectors.stored(sampled, "every", held_out=0), 0.5) == {
        1: pytest.approx(2 * np.sin(0.01), abs=1e-4)
    }


def test_a_lost_track_on_screen_with_the_query_s_own_is_counted_as_somebody_else() -> None:
    # Face 0 held out: its track keeps face 1 (near); track 1 is near only in its less confident face 2, and shares
    # frames with track 0, so it is another person whom storing every face called the same.
    sampled = Sampled(
        vectors=unit(0.0, 0.3, 0.2, 1.5),
        probabilities=np.array([0.9, 0.9, 0.5, 0.99]),
        frames=np.array([0, 1, 0, 1]),
        tracks=[[0, 1], [2, 3]],
    )
    figures = track_vectors.compare(sampled, [(sampled.vectors[0], 0)], threshold=0.5)
    assert (figures["every"]["tracks_found"], figures["every"]["own_track_found"]) == (2, 1)
    best = figures["best"]
    assert (best["tracks_found"], best["lost"], best["lost_of_somebody_else"], best["own_track_found"]) == (1, 1, 1, 1)
    assert best["recall"] == 0.5
