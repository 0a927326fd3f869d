"""The torch-only NMS and to_tensor against a plain reference written here, on random boxes with ties."""

import numpy as np
import pytest
import torch

from media_index import torchvision_compat


def reference_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Textbook greedy NMS in float32, ties taken in index order, as torchvision's CPU kernel."""
    order = sorted(range(len(scores)), key=lambda index: -scores[index])
    suppressed = [False] * len(scores)
    keep = []
    for position, best in enumerate(order):
        if suppressed[best]:
            continue
        keep.append(best)
        x1, y1, x2, y2 = boxes[best]
        for other in order[position + 1 :]:
            ox1, oy1, ox2, oy2 = boxes[other]
            width = max(np.float32(0), min(x2, ox2) - max(x1, ox1))
            height = max(np.float32(0), min(y2, oy2) - max(y1, oy1))
            intersection = width * height
            union = (x2 - x1) * (y2 - y1) + (ox2 - ox1) * (oy2 - oy1) - intersection
            with np.errstate(invalid="ignore", divide="ignore"):
                if intersection / union > threshold:
                    suppressed[other] = True
    return keep


def reference_batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, threshold: float) -> list[int]:
    """NMS class by class, the survivors ordered by decreasing score (ties by index)."""
    kept = []
    for label in np.unique(classes):
        members = np.flatnonzero(classes == label)
        kept += [int(members[index]) for index in reference_nms(boxes[members], scores[members], threshold)]
    return sorted(kept, key=lambda index: (-scores[index], index))


def random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Boxes on a small integer grid (many overlaps, exact duplicates, some empty) with tied scores."""
    count = int(rng.integers(0, 60))
    corners = rng.integers(0, 40, size=(count, 2))
    sizes = rng.integers(0, 25, size=(count, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1).astype(np.float32)
    if count > 4:
        boxes[rng.integers(0, count, 3)] = boxes[rng.integers(0, count, 3)]
    scores = (rng.integers(0, 8, size=count) / 8).astype(np.float32)
    classes = rng.integers(0, 4, size=count)
    return boxes, scores, classes, float(rng.choice([0.3, 0.5, 0.7]))


def test_nms_matches_reference_on_random_boxes() -> None:
    rng = np.random.default_rng(20260101)
    kept_some = 0
    for _ in range(200):
        boxes, scores, _, threshold = random_case(rng)
        # Half the trials use real-valued coordinates, as MTCNN's regressed boxes are.
        if rng.random() < 0.5:
            boxes = (boxes + rng.random(boxes.shape) * 3).astype(np.float32)
        keep = torchvision_compat.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold)
        assert keep.dtype == torch.int64
        assert keep.tolist() == reference_nms(boxes, scores, threshold)
        kept_some += 0 < len(keep) < len(boxes)
    assert kept_some > 100, "the random cases should mostly suppress something"


def test_batched_nms_matches_per_class_reference() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        boxes, scores, classes, threshold = random_case(rng)
        keep = torchvision_compat.batched_nms(
            torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), threshold
        )
        assert keep.tolist() == reference_batched_nms(boxes, scores, classes, threshold)


def test_batched_nms_keeps_overlapping_boxes_of_different_classes() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.95])
    keep = torchvision_compat.batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5)
    assert keep.tolist() == [2, 1]


def test_nms_takes_bfloat16_boxes_and_scores_as_under_autocast() -> None:
    rng = np.random.default_rng(11)
    boxes, scores, classes, threshold = random_case(rng)
    while len(boxes) < 20:
        boxes, scores, classes, threshold = random_case(rng)
    # Whole coordinates below 256 and eighths are exact in bfloat16: the answer must be float32's.
    keep = torchvision_compat.nms(torch.from_numpy(boxes).bfloat16(), torch.from_numpy(scores).bfloat16(), threshold)
    assert keep.tolist() == reference_nms(boxes, scores, threshold)
    bfloat16 = [torch.from_numpy(array).bfloat16() for array in (boxes, scores)]
    assert torchvision_compat.batched_nms(*bfloat16, torch.from_numpy(classes), threshold).dtype == torch.int64


def test_to_tensor_makes_chw_without_scaling() -> None:
    picture = np.random.default_rng(1).uniform(0, 255, size=(5, 7, 3)).astype(np.float32)
    tensor = torchvision_compat.to_tensor(picture)
    assert tensor.shape == (3, 5, 7)
    assert tensor.dtype == torch.float32
    assert torch.equal(tensor, torch.from_numpy(picture).permute(2, 0, 1))
    with pytest.raises(TypeError):
        torchvision_compat.to_tensor(picture.astype(np.uint8))


def test_install_lets_facenet_pytorch_import() -> None:
    torchvision_compat.install()
    from facenet_pytorch.models.utils import detect_face

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]])
    assert detect_face.batched_nms(boxes, torch.tensor([0.5, 0.9]), torch.tensor([0, 0]), 0.5).tolist() == [1]
