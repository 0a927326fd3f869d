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
