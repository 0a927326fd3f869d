"""Torch-only stand-ins for the two torchvision functions facenet-pytorch's MTCNN imports.

PyPI's torchvision for this torch links CUDA libraries and fails to import on CPU-only machines.
"""

import logging
import sys
import types

import numpy as np
import torch

logger = logging.getLogger(__name__)


def to_tensor(picture: np.ndarray) -> torch.Tensor:
    """Return a float HWC array as a CHW tensor, unscaled (facenet-pytorch only passes float32 crops)."""
    if not np.issubdtype(picture.dtype, np.floating):
        raise TypeError(f"to_tensor stand-in expects a float array, got {picture.dtype}")
    return torch.from_numpy(picture.transpose(2, 0, 1)).contiguous()


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS as torchvision.ops.nms: (x1, y1, x2, y2) boxes, kept indices by decreasing score.

    In numpy: each step is a few small array operations, which cost far less than torch's do on such small
    arrays (in torch the loop was a sixth of MTCNN's time on a video frame: docs/performance.md)."""
    # float32 first: numpy has no bfloat16, which MTCNN's boxes and scores are under autocast.
    corners, ranks = boxes.detach().cpu().float().numpy(), scores.detach().cpu().float().numpy()
    order = np.argsort(-ranks, kind="stable")
    x1, y1, x2, y2 = corners.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(best)
        widths = np.maximum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0)
        heights = np.maximum(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0)
        intersections = widths * heights
        with np.errstate(invalid="ignore", divide="ignore"):
            overlaps = intersections / (areas[best] + areas[rest] - intersections)
        # "not greater" rather than "<=" so that a NaN overlap (two empty boxes) suppresses nothing.
        order = rest[~(overlaps > iou_threshold)]
    return torch.from_numpy(np.array(keep, dtype=np.int64))


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each class of idxs, by shifting each class's boxes apart as torchvision does."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def _real_torchvision_works() -> bool:
    """Whether torchvision imports and its NMS operator is registered."""
    try:
        import torchvision.ops  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken build raises RuntimeError, not ImportError
        for name in [name for name in sys.modules if name.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        return False
    return True


def install() -> None:
    """Register minimal torchvision modules so `import facenet_pytorch` works without torchvision."""
    if "torchvision" in sys.modules or _real_torchvision_works():
        return
    modules = {
        name: types.ModuleType(name)
        for name in (
            "torchvision",
            "torchvision.transforms",
            "torchvision.transforms.functional",
            "torchvision.ops",
            "torchvision.ops.boxes",
        )
    }
    modules["torchvision.transforms.functional"].__dict__.update(to_tensor=to_tensor)
    modules["torchvision.ops.boxes"].__dict__.update(batched_nms=batched_nms)
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    sys.modules.update(modules)
    logger.info("torchvision is not usable here: installed torch-only to_tensor and batched_nms")
