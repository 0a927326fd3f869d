"""The reduced-precision gate's box comparison: counts per photo, each face against its best match."""

from pathlib import Path

from benchmarks.evaluation import precision

PHOTOS = [Path("a.jpg"), Path("b.jpg")]


def test_the_same_boxes_in_another_order_pass() -> None:
    faces = [[((0.0, 0.0, 10.0, 10.0), 0.99), ((20.0, 0.0, 30.0, 10.0), 0.98)], []]
    result = precision.compare_boxes(PHOTOS, faces, [faces[0][::-1], []])
    assert result["worst_iou"] == 1.0 and result["faces_below_gate"] == 0 and result["passes"]


def test_a_moved_box_or_a_missing_face_fails() -> None:
    reference = [[((0.0, 0.0, 10.0, 10.0), 0.99)], [((0.0, 0.0, 10.0, 10.0), 0.99)]]
    moved = precision.compare_boxes(PHOTOS, reference, [[((1.0, 0.0, 11.0, 10.0), 0.99)], reference[1]])
    assert moved["worst_iou"] == round(90 / 110, 4) and moved["worst_photo"] == "a.jpg"
    assert moved["faces_below_gate"] == 1 and moved["count_differs"] == [] and not moved["passes"]
    missing = precision.compare_boxes(PHOTOS, reference, [reference[0], []])
    assert missing["count_differs"] == ["b.jpg"] and missing["worst_iou"] == 0.0 and not missing["passes"]
