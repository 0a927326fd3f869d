"""The indexing rule replayed in arrival order: people form from close faces, one close link is not enough."""

import numpy as np

from benchmarks.evaluation import arrival

BASIS = np.eye(8, dtype=np.float32)
ANGLE = 2 * np.arcsin(0.3)
# The first face is 0.6 from the second and from the third, which are 0.81 from each other; the fourth is far away.
CHAIN = np.array(
    [
        BASIS[0],
        np.cos(ANGLE) * BASIS[0] + np.sin(ANGLE) * BASIS[1],
        np.cos(ANGLE) * BASIS[0] + np.sin(ANGLE) * BASIS[2],
        BASIS[5],
    ],
    dtype=np.float32,
)


def test_a_face_close_to_only_one_of_a_persons_two_faces_stays_out():
    labels = arrival.assign_in_order(CHAIN, radius=0.7, min_faces=2, order=np.array([0, 1, 2, 3]))
    assert labels[0] == labels[1] >= 0 and labels[2] == -1 and labels[3] == -1


def test_a_face_close_to_two_faces_without_a_person_forms_one_with_them():
    labels = arrival.assign_in_order(CHAIN, radius=0.7, min_faces=2, order=np.array([1, 2, 0, 3]))
    assert labels[0] == labels[1] == labels[2] >= 0 and labels[3] == -1


def test_a_shuffled_order_is_the_same_every_run():
    first = arrival.assign_in_order(CHAIN, radius=0.7, min_faces=2)
    assert (first == arrival.assign_in_order(CHAIN, radius=0.7, min_faces=2)).all()
