"""The density rule and video tracks, on hand-made unit vectors."""

import numpy as np

from media_index import tracks
from people import grouping


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def identities(count: int, per_person: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`per_person` noisy copies of `count` random directions (far apart in 64 dimensions), with their truth."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(count, 64)))
    truth = np.repeat(np.arange(count), per_person)
    return unit(centres[truth] + rng.normal(scale=noise, size=(len(truth), 64))), truth


def test_each_person_becomes_one_group_and_strays_stay_out():
    vectors, truth = identities(6, 5, noise=0.05)
    strays = unit(np.random.default_rng(9).normal(size=(4, 64)))
    labels = grouping.group(np.vstack([vectors, strays]), radius=0.8, min_faces=3)
    assert (labels[len(vectors) :] == -1).all()
    for person in range(6):
        assert len(set(labels[: len(vectors)][truth == person])) == 1
    assert len(set(labels[: len(vectors)])) == 6


def test_fewer_close_faces_than_the_minimum_form_no_person():
    vectors, _ = identities(1, 2, noise=0.05)
    assert (grouping.group(vectors, radius=0.8, min_faces=3) == -1).all()
    assert len(set(grouping.group(vectors, radius=0.8, min_faces=2))) == 1


def test_a_face_near_a_group_but_not_core_joins_its_nearest_core():
    vectors, _ = identities(1, 3, noise=0.02)
    outer = unit(vectors[:1] + 0.3 * unit(np.random.default_rng(3).normal(size=(1, 64))))
    labels = grouping.group(np.vstack([vectors, outer]), radius=0.6, min_faces=3)
    assert labels[-1] == labels[0] >= 0


def test_neighbours_are_within_the_radius_nearest_first_and_never_the_face_itself():
    vectors, _ = identities(2, 4, noise=0.1)
    near = grouping.neighbours(vectors, radius=1.0, limit=2)
    for index, others in enumerate(near):
        assert index not in others and len(others) <= 2
        distances = np.linalg.norm(vectors[others] - vectors[index], axis=1)
        assert (distances < 1.0).all() and (np.diff(distances) >= 0).all()


def test_every_face_of_a_track_takes_the_group_most_of_it_has():
    labels = np.array([0, 0, 1, -1, 2, -1])
    tracks_of = np.array([7, 7, 7, 7, -1, 8])
    assert grouping.majority_per_track(labels, tracks_of).tolist() == [0, 0, 0, 0, 2, -1]


def test_a_face_continues_the_nearest_same_person_face_that_has_not_jumped():
    alice, bob = identities(2, 1, noise=0.0)[0]
    before = [tracks.TrackedFace((0, 0, 50, 50), alice), tracks.TrackedFace((200, 0, 250, 50), bob)]
    now = [tracks.TrackedFace((210, 5, 260, 55), bob), tracks.TrackedFace((10, 0, 60, 50), alice)]
    assert tracks.link(before, now, same_person=1.0) == [1, 0]
    jumped = [tracks.TrackedFace((400, 300, 450, 350), alice)]
    assert tracks.link(before, jumped, same_person=1.0) == [None]
    assert tracks.link(before[:1], [tracks.TrackedFace((0, 0, 50, 50), bob)], same_person=1.0) == [None]


def look_alikes(gap: float, per_person: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Two tight groups of faces whose centres are `gap` apart: two people who look alike."""
    rng = np.random.default_rng(4)
    first = unit(rng.normal(size=(1, 64)))[0]
    away = unit(rng.normal(size=(1, 64)))[0]
    away = unit((away - (away @ first) * first)[None, :])[0]  # orthogonal to first
    angle = 2 * np.arcsin(gap / 2)  # two unit vectors at this angle are `gap` apart
    second = np.cos(angle) * first + np.sin(angle) * away
    centres = np.stack([first, second])
    truth = np.repeat([0, 1], per_person)
    return unit(centres[truth] + rng.normal(scale=0.004, size=(len(truth), 64))), truth


def test_look_alikes_within_the_radius_stay_two_people_where_one_cut_chains_them():
    vectors, truth = look_alikes(gap=0.9)
    labels = grouping.group(vectors, radius=1.0, min_faces=2)
    assert len(set(labels[truth == 0])) == 1 and len(set(labels[truth == 1])) == 1
    assert labels[0] != labels[-1] and (labels >= 0).all()
    # The plain density rule cut at the same radius makes them one person.
    assert len(set(grouping.density_groups(grouping.neighbours(vectors, 1.0), 2))) == 1


def test_a_stray_face_beyond_the_radius_stays_out_and_min_faces_one_makes_it_a_person():
    vectors, _ = look_alikes(gap=0.9)
    stray = unit(np.random.default_rng(11).normal(size=(1, 64)))
    everything = np.vstack([vectors, stray])
    assert grouping.group(everything, radius=1.0, min_faces=2)[-1] == -1
    alone = grouping.group(everything, radius=1.0, min_faces=1)
    assert alone[-1] >= 0 and alone[-1] not in alone[:-1]


def test_stable_groups_match_group_and_survive_faces_with_no_neighbour():
    vectors, _ = identities(3, 4, noise=0.05)
    near = grouping.neighbours(vectors, 0.8)
    assert grouping.stable_groups(vectors, near, 0.8, 3).tolist() == grouping.group(vectors, 0.8, 3).tolist()
    lonely = [np.zeros(0, dtype=np.int64) for _ in range(3)]
    assert grouping.stable_groups(vectors[:3], lonely, 0.8, 2).tolist() == [-1, -1, -1]
