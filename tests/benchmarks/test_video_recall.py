"""The video benchmark's recall gate: the reference pipeline's faces matched to the new one's, frame by frame."""

import numpy as np
from PIL import Image

from benchmarks import videos
from media_index.face_engine import Face

CROP = Image.new("RGB", (160, 160))


def face(box: tuple[float, float, float, float], vector: int = 0) -> Face:
    embedding = np.zeros(4, dtype=np.float32)
    embedding[vector] = 1.0
    return Face(box=box, probability=0.99, embedding=embedding, crop=CROP)


def test_faces_on_the_same_frame_times_are_found() -> None:
    reference = [(0.0, [face((0, 0, 10, 10)), face((20, 20, 40, 40))]), (1.0, [face((5, 5, 15, 15))])]
    found = videos.recall(
        reference, [(0.0, [face((1, 1, 11, 11)), face((19, 21, 40, 41))]), (1.0, [face((5, 5, 15, 15))])]
    )
    assert (found["reference_faces"], found["found"], found["recall"], found["extra"]) == (3, 3, 1.0, 0)
    assert found["max_distance"] == 0.0


def test_a_frame_one_frame_later_matches_but_one_further_away_does_not() -> None:
    reference = [(1.0, [face((0, 0, 10, 10))]), (2.0, [face((0, 0, 10, 10))])]
    new = [(1.04, [face((0, 0, 10, 10))]), (2.08, [face((0, 0, 10, 10))])]
    found = videos.recall(reference, new)
    assert (found["found"], found["recall"], found["extra"]) == (1, 0.5, 1)


def test_boxes_that_overlap_too_little_are_not_the_same_face() -> None:
    # IoU 0.47 and 0.82: the first face is missed, and the box found instead counts as one more.
    reference = [(0.0, [face((0, 0, 10, 10)), face((50, 50, 60, 60))])]
    found = videos.recall(reference, [(0.0, [face((0, 0, 10, 10 * 0.47)), face((50, 50, 60, 58.2))])])
    assert (found["found"], found["extra"]) == (1, 1)


def test_one_new_box_answers_for_one_reference_face_only() -> None:
    # Two reference faces on nearly the same spot, one box found: one of them is missed.
    reference = [(0.0, [face((0, 0, 10, 10)), face((1, 0, 11, 10))])]
    found = videos.recall(reference, [(0.0, [face((0, 0, 10, 10), vector=1)])])
    assert (found["found"], found["recall"]) == (1, 0.5)
    assert found["median_distance"] == 1.4142  # the embeddings differ: matched by the box alone


def test_nothing_found_is_no_recall_and_nothing_to_find_is_full_recall() -> None:
    assert videos.recall([(0.0, [face((0, 0, 10, 10))])], [])["recall"] == 0.0
    assert videos.recall([(0.0, [])], [(0.0, [face((0, 0, 10, 10))])]) == {
        "reference_faces": 0,
        "found": 0,
        "recall": 1.0,
        "extra": 1,
        "median_distance": 0.0,
        "max_distance": 0.0,
    }
