"""The detector comparison: BlazeFace's anchors and decoding as MediaPipe lays them out, tiles that cover a frame,
and, with the evaluation set's runtime, BlazeFace and HOG finding the faces MTCNN finds on a shared photo."""

import numpy as np
import pytest
from PIL import Image

from benchmarks import detectors
from benchmarks.videos import iou, pairs
from media_index import face_engine
from tests.conftest import SAMPLES


def test_anchors_match_the_models_outputs_row_by_row() -> None:
    short = detectors.anchors(128, detectors.BLAZEFACE["short"][2])
    full = detectors.anchors(192, detectors.BLAZEFACE["full"][2])
    assert (len(short), len(full)) == (896, 2304)  # the models' output rows
    # Stride 8 first: a 16x16 grid, two anchors a cell, the first cell's centre at half a cell.
    assert short[0] == pytest.approx([0.5 / 16, 0.5 / 16]) and short[1] == pytest.approx(short[0])
    assert short[2] == pytest.approx([1.5 / 16, 0.5 / 16])  # along the row first
    assert short[512] == pytest.approx([0.5 / 8, 0.5 / 8])  # then the 8x8 grid, six anchors a cell
    assert full[48] == pytest.approx([0.5 / 48, 1.5 / 48])
    assert short.min() > 0 and short.max() < 1


def test_decoding_places_a_box_by_its_anchor_and_drops_low_scores() -> None:
    centres = detectors.anchors(128, detectors.BLAZEFACE["short"][2])
    regressors = np.zeros((1, 896, 16), dtype=np.float32)
    scores = np.full((1, 896, 1), -5.0, dtype=np.float32)
    regressors[0, 600] = [6.4, -12.8, 32.0, 64.0] + [0.0] * 12  # 0.05 right, 0.1 up; 0.25 wide, 0.5 high
    scores[0, 600] = 3.0  # sigmoid 0.95
    scores[0, 10] = -0.5  # 0.38: only kept with the lower threshold
    regressors[0, 10, 2:4] = 16.0
    scores[0, 20] = 3.0  # a box without a size is never kept
    boxes = detectors.decode(regressors, scores, centres, 128, min_score=0.5)
    x, y = centres[600] + [0.05, -0.1]
    assert boxes.shape == (1, 5)
    assert boxes[0, :4] == pytest.approx([x - 0.125, y - 0.25, x + 0.125, y + 0.25], abs=1e-6)
    assert boxes[0, 4] == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert len(detectors.decode(regressors, scores, centres, 128, min_score=0.3)) == 2
    # A raw score far past float32's exp range neither warns nor turns into nan.
    scores[0, 600] = -1e6
    with np.errstate(over="raise"):
        assert len(detectors.decode(regressors, scores, centres, 128, min_score=0.5)) == 0


def test_suppression_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10, 0.6], [1, 1, 11, 11, 0.9], [20, 20, 30, 30, 0.7]], dtype=float)
    kept = detectors.suppress(boxes)
    assert kept[:, 4].tolist() == [0.9, 0.7]


@pytest.mark.parametrize(("width", "height", "count"), [(1920, 1080, 28), (640, 360, 3), (300, 200, 2)])
def test_tiles_cover_the_frame_and_overlap(width: int, height: int, count: int) -> None:
    tiles = detectors.tiles(width, height)
    assert len(tiles) == count
    covered = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in tiles:
        assert x2 - x1 == y2 - y1 == min(detectors.TILE_SIDE, width, height)
        assert x1 >= 0 and y1 >= 0 and x2 <= width and y2 <= height
        covered[int(y1) : int(y2), int(x1) : int(x2)] = True
    assert covered.all()


def test_tiled_boxes_come_back_in_the_frames_pixels_once_each() -> None:
    image = Image.new("RGB", (1000, 500))

    def one_face_at_the_tiles_centre(tile: Image.Image) -> list[detectors.Box]:
        return [(150.0, 150.0, 200.0, 200.0)]  # a face at the same place of every tile

    boxes = detectors.in_tiles(one_face_at_the_tiles_centre, image)
    assert len(boxes) == len(detectors.tiles(1000, 500))  # tiles 288 apart: these boxes do not overlap
    assert (150.0, 150.0, 200.0, 200.0) in boxes and (766.0, 266.0, 816.0, 316.0) in boxes  # the last tile's


@pytest.mark.skipif(not detectors.blazeface_available(), reason="the evaluation set is not installed (make tools)")
def test_blazeface_and_hog_find_the_faces_mtcnn_finds_on_a_shared_photo() -> None:
    image = Image.open(SAMPLES / "two_people.jpg").convert("RGB")
    reference = [box for box, _ in face_engine.detect_faces([image])[0]]
    assert len(reference) == 2
    for detect in (detectors.BlazeFace("short").detect, detectors.BlazeFace("full").detect, detectors.hog(0)):
        found = detect(image)
        assert len(pairs(reference, found, detectors.MATCH_IOU)) == 2, found
        assert all(max(iou(box, other) for other in reference) > 0.3 for box in found)
