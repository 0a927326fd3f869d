"""MTCNN's three stages as facenet-pytorch's detect_face runs them, with the same boxes, at a fraction of the cost.

detect_face resamples with torch's "area" interpolation: every level of the image pyramid is pooled from the whole
image, and every candidate box is pooled to 24x24 (R-Net) and 48x48 (O-Net) in a call of its own, hundreds of calls
a video frame. Area pooling is a sum over a window of whole pixels divided by the window's height and width, so here
each image's integral image (summed-area table) gives every window's sum with four look-ups, all levels and all
candidates at once, and the division is done as torch does it: the inputs of the networks are the same, bit for bit
(tests/media_index/test_mtcnn.py), and so are the boxes. The rest is facenet-pytorch's own code.
"""

import logging

import numpy as np
import PIL.Image
import torch

from .torchvision_compat import batched_nms

logger = logging.getLogger(__name__)

# MTCNN's networks see pixels as (x - 127.5) / 128, as facenet-pytorch scales them.
PIXEL_SCALE = 0.0078125
# Each network runs on pieces of its batch small enough that its activations stay in the processor's caches: a video
# chunk's candidates all at once ran three times slower (docs/performance.md, "Video throughput"). P-Net takes whole
# images of one pyramid level, as many as fit in PNET_PIXELS (at least one); R-Net and O-Net take this many boxes.
PNET_PIXELS = 1 << 17
RNET_BATCH = 32
ONET_BATCH = 16


def detect(
    images: list[PIL.Image.Image],
    min_size: float,
    nets: tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module],
    thresholds: tuple[float, float, float],
    factor: float,
) -> list[np.ndarray]:
    """Boxes (n, 5) per same-size RGB image: x1, y1, x2, y2, probability, as detect_face returns them.

    1. P-Net on each level of a pyramid that starts where a min_size face is 12 pixels; NMS within each level and
       image, then within each image.
    2. R-Net on each surviving box, pooled to 24x24; those above thresholds[1] are refined and NMSed again.
    3. O-Net on each, pooled to 48x48; those above thresholds[2] are refined, with NMS by the smaller area.
    """
    # facenet-pytorch is imported once torchvision's stand-ins are in place (face_engine loads them first).
    from facenet_pytorch.models.utils.detect_face import generateBoundingBox, rerec

    pnet, rnet, onet = nets
    width, height = images[0].size
    pixels = Integrals(images)
    scale, shortest = 12.0 / min_size, min(width, height) * 12.0 / min_size
    boxes, image_inds, picks, offset = [], [], [], 0
    while shortest >= 12:
        level = pixels.levels(int(height * scale + 1), int(width * scale + 1))
        reg, probs = _in_pieces(pnet, _normalised(level), max(1, PNET_PIXELS // (level.shape[1] * level.shape[2])))
        level_boxes, level_inds = generateBoundingBox(reg, probs[:, 1], scale, thresholds[0])
        boxes.append(level_boxes)
        image_inds.append(level_inds)
        picks.append(batched_nms(level_boxes[:, :4], level_boxes[:, 4], level_inds, 0.5) + offset)
        offset += level_boxes.shape[0]
        scale, shortest = scale * factor, shortest * factor
    if not boxes:  # images smaller than the smallest face: detect_face would fail on an empty pyramid
        return [np.empty((0, 5), dtype=np.float32) for _ in images]
    picked = torch.cat(picks)
    found, inds = torch.cat(boxes)[picked], torch.cat(image_inds)[picked]
    pick = batched_nms(found[:, :4], found[:, 4], inds, 0.7)
    found, inds = found[pick], inds[pick]
    sides = torch.stack([found[:, 2] - found[:, 0], found[:, 3] - found[:, 1]] * 2, dim=1)
    found = rerec(torch.cat([found[:, :4] + found[:, 5:9] * sides, found[:, 4:5]], dim=1))
    found, inds = _refine(pixels, found, inds, (rnet, onet), thresholds[1:])
    found_array, inds_array = found.float().numpy(), inds.numpy()
    return [found_array[inds_array == index] for index in range(len(images))]


def follow(
    images: list[PIL.Image.Image],
    candidates: np.ndarray,
    nets: tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module],
    thresholds: tuple[float, float, float],
) -> list[np.ndarray]:
    """Boxes (n, 5) per same-size image, as detect gives them, found from candidate boxes (k, 5: a box and a score)
    alone, the same for every image: R-Net and O-Net only. Where a face is expected near a known place, this finds
    it without P-Net's scan of the whole image, which is most of detection's cost."""
    pixels = Integrals(images)
    found = torch.from_numpy(np.tile(np.asarray(candidates, dtype=np.float32), (len(images), 1)))
    inds = torch.arange(len(images)).repeat_interleave(len(candidates))
    found, inds = _refine(pixels, found, inds, nets[1:], thresholds[1:])
    found_array, inds_array = found.float().numpy(), inds.numpy()
    return [found_array[inds_array == index] for index in range(len(images))]


def _refine(
    pixels: "Integrals",
    found: torch.Tensor,
    inds: torch.Tensor,
    nets: tuple[torch.nn.Module, torch.nn.Module],
    thresholds: tuple[float, float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """MTCNN's second and third stages on candidate boxes (x1, y1, x2, y2, ...) of the images `inds` names."""
    from facenet_pytorch.models.utils.detect_face import batched_nms_numpy, bbreg, rerec

    rnet, onet = nets
    if len(found):
        found, inds, out = _stage(pixels, found, inds, rnet, 24, RNET_BATCH)
        score = out[1][:, 1]
        passed = score > thresholds[0]
        found = torch.cat((found[passed, :4], score[passed].unsqueeze(1)), dim=1)
        inds, moves = inds[passed], out[0][passed]
        pick = batched_nms(found[:, :4], found[:, 4], inds, 0.7)
        found = rerec(bbreg(found[pick], moves[pick]))
        inds = inds[pick]
    if len(found):
        found, inds, out = _stage(pixels, found, inds, onet, 48, ONET_BATCH)
        score = out[2][:, 1]
        passed = score > thresholds[1]
        found = torch.cat((found[passed, :4], score[passed].unsqueeze(1)), dim=1)
        inds = inds[passed]
        found = bbreg(found, out[0][passed])
        pick = batched_nms_numpy(found[:, :4], found[:, 4], inds, 0.7, "Min")
        found, inds = found[pick], inds[pick]
    return found, inds


def _stage(
    pixels: "Integrals", boxes: torch.Tensor, inds: torch.Tensor, net: torch.nn.Module, side: int, pieces: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """A refining network's output on each box's pixels pooled to side x side. Boxes that clipping to the image
    leaves empty are dropped (detect_face fails on them: its crops and boxes no longer pair up)."""
    from facenet_pytorch.models.utils.detect_face import pad

    y, ey, x, ex = pad(boxes, pixels.width, pixels.height)
    kept = (ey > y - 1) & (ex > x - 1)
    if not kept.any():
        return boxes[:0], inds[:0], (torch.zeros(0, 4), torch.zeros(0, 2), torch.zeros(0, 2))
    crops = pixels.crops(inds.numpy()[kept], y[kept] - 1, ey[kept], x[kept] - 1, ex[kept], side)
    kept_tensor = torch.from_numpy(kept)
    return boxes[kept_tensor], inds[kept_tensor], _in_pieces(net, _normalised(crops), pieces)


def _in_pieces(net: torch.nn.Module, batch: torch.Tensor, size: int) -> tuple[torch.Tensor, ...]:
    """The network's outputs on the batch, run on pieces of at most `size` samples (see PNET_PIXELS)."""
    outputs = [net(batch[start : start + size]) for start in range(0, len(batch), size)]
    return tuple(torch.cat(parts) for parts in zip(*outputs, strict=True))


def _normalised(pooled: np.ndarray) -> torch.Tensor:
    """(n, h, w, 3) float32 pixels as the networks' (n, 3, h, w) input, channels-last in memory."""
    return (torch.from_numpy(pooled).permute(0, 3, 1, 2) - 127.5) * PIXEL_SCALE


class Integrals:
    """Summed-area tables of same-size RGB images: any window's pixel sum in four look-ups.

    Kept as uint32: a table's own values may wrap around past 2**32 (a photo of 17 megapixels), but a window's sum,
    a difference of four of them, is exact as long as it is below 2**32 itself.
    """

    def __init__(self, images: list[PIL.Image.Image]) -> None:
        self.width, self.height = images[0].size
        self.tables = np.zeros((len(images), self.height + 1, self.width + 1, 3), dtype=np.uint32)
        for table, image in zip(self.tables, images, strict=True):
            sums = table[1:, 1:]
            # Along each row first: summing whole rows down the image then is a few times faster than the other way.
            np.cumsum(np.asarray(image), axis=1, dtype=np.uint32, out=sums)
            np.cumsum(sums, axis=0, out=sums)
        self.flat = self.tables.reshape(-1, 3)

    def levels(self, rows: int, columns: int) -> np.ndarray:
        """Every image area-pooled to rows x columns: (n, rows, columns, 3) float32, as torch's interpolate."""
        top, bottom, row_counts = _windows(np.zeros(1, dtype=np.int64), np.full(1, self.height), rows)
        left, right, column_counts = _windows(np.zeros(1, dtype=np.int64), np.full(1, self.width), columns)
        pooled = np.empty((len(self.tables), rows, columns, 3), dtype=np.float32)
        for out, table in zip(pooled, self.tables, strict=True):  # an image at a time: less memory at once
            bands = np.take(table, bottom[0], axis=0) - np.take(table, top[0], axis=0)  # sums down each band of rows
            sums = np.take(bands, right[0], axis=1) - np.take(bands, left[0], axis=1)
            out[:] = _averages(sums, row_counts.T[:, :, None], column_counts[:, :, None])
        return pooled

    def crops(
        self, inds: np.ndarray, top: np.ndarray, bottom: np.ndarray, left: np.ndarray, right: np.ndarray, side: int
    ) -> np.ndarray:
        """Region k (rows top..bottom-1, columns left..right-1 of image inds[k]) pooled to side x side, each."""
        y0, y1, row_counts = _windows(top, bottom, side)
        x0, x1, column_counts = _windows(left, right, side)
        # Rows of the flattened tables, for a look-up of all windows' corners at once.
        rows = (inds[:, None] * (self.height + 1) + np.stack([y0, y1])) * (self.width + 1)
        first, last = rows[0][:, :, None], rows[1][:, :, None]
        x0, x1 = x0[:, None, :], x1[:, None, :]
        sums = (
            (np.take(self.flat, last + x1, axis=0) - np.take(self.flat, first + x1, axis=0))
            - np.take(self.flat, last + x0, axis=0)
            + np.take(self.flat, first + x0, axis=0)
        )
        return _averages(sums, row_counts[:, :, None, None], column_counts[:, None, :, None])


def _windows(start: np.ndarray, end: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The windows torch's adaptive average pooling takes for output cell i of size cells over [start, end), per
    region: from start + floor(i * length / size) to start + ceil((i + 1) * length / size); and their lengths."""
    length = (end - start)[:, None]
    cells = np.arange(size)[None, :]
    first = start[:, None] + cells * length // size
    last = start[:, None] - (-(cells + 1) * length // size)
    return first, last, last - first


def _averages(sums: np.ndarray, row_counts: np.ndarray, column_counts: np.ndarray) -> np.ndarray:
    """Window sums divided by the window's height, then its width, in float32: torch's order, so the same bits."""
    averages = sums.astype(np.float32)
    averages /= row_counts.astype(np.float32)
    averages /= column_counts.astype(np.float32)
    return averages
