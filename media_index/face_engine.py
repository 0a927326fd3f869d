"""Face engine adapter: MTCNN finds faces, InceptionResnetV1 (FaceNet) turns each into a 512-d embedding.

dlib's ResNet (128-d) is the baseline embedder, on the same MTCNN boxes. Every function takes the FACE_MODEL key
to use (None: the setting), so the evaluation can run several models in one process. Models load lazily, once
per process and per key, under a lock; inference runs without autograd.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import PIL.Image
import torch
from django.conf import settings
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from media_index import dlib_embedder, face_models, face_precision, face_weights, mtcnn, torchvision_compat

logger = logging.getLogger(__name__)

CROP_SIZE = 160
# 32 of 160 px, as in FaceNet's LFW protocol: it separates people better than no margin (docs/evaluation.md).
CROP_MARGIN = 32
EMBEDDING_BATCH = 32
# MTCNN stays in float32 whatever FACE_PRECISION says: in bfloat16 its boxes moved (IoU down to 0.76 on the shared
# photos) and it was slower (docs/performance.md, "Reduced precision"). `evaluate precision` sets it to measure that.
BFLOAT16_DETECTOR = False
# detect_around looks for a face again near where it was, in a region scaled so that its box is this many pixels
# (O-Net's input), from candidate boxes shifted by these many box sides each way, and of these sizes (box sides).
REGION_FACE_SIDE = 48
AROUND_SHIFTS = (-1.0, -0.5, 0.0, 0.5, 1.0)
AROUND_SIZES = (0.8, 1.0, 1.25)


@dataclass(frozen=True)
class Face:
    """One detected face. box is (x1, y1, x2, y2) in pixels of the image given; embedding is float32
    (dimension(),), unit L2 norm."""

    box: tuple[float, float, float, float]
    probability: float
    embedding: np.ndarray
    # The 160x160 RGB crop FaceNet embeds, for thumbnails (dlib aligns a chip of its own from the same box).
    crop: PIL.Image.Image


# A detected face: its box (x1, y1, x2, y2) in pixels of the full image, and MTCNN's probability.
Detection = tuple[tuple[float, float, float, float], float]
# Embeddings of all the faces in order, given the images, each image's boxes and all the crops.
Embed = Callable[
    [list[PIL.Image.Image], list[list[tuple[float, float, float, float]]], list[PIL.Image.Image]], list[np.ndarray]
]


@dataclass(frozen=True)
class _Models:
    detector: torch.nn.Module
    embed: Embed
    # "float32", or the parts in bfloat16 (as "embedder-bfloat16"): caches of embeddings keep precisions apart.
    precision: str


_lock = threading.Lock()
# By stored model name, FACE_PRECISION asked for and BFLOAT16_DETECTOR, so that an evaluation can hold both precisions.
_loaded: dict[tuple[str, str, bool], _Models] = {}


def _model(model: str | None) -> face_models.FaceModel:
    """The registry entry asked for (the FACE_MODEL setting when None), refused with the choices when unknown."""
    return face_models.get(settings.FACE_MODEL, "FACE_MODEL") if model is None else face_models.get(model)


def model_name(model: str | None = None) -> str:
    """The name stored with every face, so embeddings of different models are never compared."""
    return _model(model).stored_name


def dimension(model: str | None = None) -> int:
    """The length of the model's embeddings, which its vector collection must have."""
    return _model(model).dimension


def _build_embedder(weights: str) -> torch.nn.Module:
    """InceptionResnetV1 with the given pretrained weights, for embeddings (no classifier)."""
    from facenet_pytorch import InceptionResnetV1

    if weights == "vggface2":
        # facenet-pytorch downloads into $TORCH_HOME/checkpoints; point it at the configured cache.
        os.environ["TORCH_HOME"] = str(settings.TORCH_HOME)
        return InceptionResnetV1(pretrained="vggface2", classify=False)
    path = face_weights.weights_path()
    face_weights.verify_weights(path)
    embedder = InceptionResnetV1(classify=False)
    embedder.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return embedder


def _build_embed(model: face_models.FaceModel, dtype: torch.dtype = torch.float32) -> Embed:
    """The entry's embedder: dlib's encoder on the boxes, or FaceNet on the crops with its weights in dtype."""
    if model.family == "dlib":
        encode = dlib_embedder.load()
        return lambda images, boxes, crops: dlib_embedder.embed(encode, images, boxes)
    # Weights converted once rather than autocast, which casts them again on every batch (same embeddings).
    embedder = _for_speed(_build_embedder(model.weights).eval()).to(dtype)
    return lambda images, boxes, crops: _embed(embedder, crops)


def _for_speed(embedder: torch.nn.Module) -> torch.nn.Module:
    """The same embedder (embeddings equal to 1e-5), faster on a CPU: each batch norm folded into the
    convolution or linear layer before it, and channels-last memory, which oneDNN's convolutions prefer."""
    from facenet_pytorch.models.inception_resnet_v1 import BasicConv2d

    for module in embedder.modules():
        if isinstance(module, BasicConv2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = torch.nn.Identity()
    last_linear, last_bn = cast(torch.nn.Linear, embedder.last_linear), cast(torch.nn.BatchNorm1d, embedder.last_bn)
    embedder.last_linear = fuse_linear_bn_eval(last_linear, last_bn)
    embedder.last_bn = torch.nn.Identity()
    # torch's overloads of Module.to leave out memory_format, which it takes (and documents).
    return embedder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def _models(model: str | None) -> _Models:
    """The detector and embedder for the FACE_MODEL key, loaded on first use."""
    entry = _model(model)
    name = entry.stored_name
    key = (name, settings.FACE_PRECISION, BFLOAT16_DETECTOR)
    with _lock:
        if key not in _loaded:
            started = time.monotonic()
            torchvision_compat.install()
            from facenet_pytorch import MTCNN

            torch.set_num_threads(settings.TORCH_THREADS)
            chosen = face_precision.choose(settings.FACE_PRECISION, face_precision.cpu_flags())
            # Channels-last: this torch's max pooling, and so detection, is faster that way (same boxes).
            detector = MTCNN().eval().to(memory_format=torch.channels_last)
            in_bfloat16 = {
                "detector": BFLOAT16_DETECTOR and chosen.dtype == torch.bfloat16,
                "embedder": entry.family != "dlib" and chosen.dtype == torch.bfloat16,
            }
            if in_bfloat16["detector"]:
                detector.pnet, detector.rnet, detector.onet = (
                    face_precision.InBfloat16(net) for net in (detector.pnet, detector.rnet, detector.onet)
                )
            tag = "-".join(f"{part}-bfloat16" for part, reduced in in_bfloat16.items() if reduced) or "float32"
            _loaded[key] = _Models(detector, _build_embed(entry, chosen.dtype), tag)
            logger.info(
                "loaded face models %s in %.1f s (%d torch threads); face engine precision %s, detector %s",
                name,
                time.monotonic() - started,
                settings.TORCH_THREADS,
                "float32 (dlib's own)" if entry.family == "dlib" else f"{chosen.name} ({chosen.reason})",
                "bfloat16" if in_bfloat16["detector"] else "float32",
            )
        return _loaded[key]


def precision(model: str | None = None) -> str:
    """What the loaded models compute in: "float32", or which of them run in bfloat16 (as "embedder-bfloat16")."""
    return _models(model).precision


def load(model: str | None = None) -> None:
    """Load the models now, so that the first photo does not pay for it (workers call this at start)."""
    _models(model)


def find_faces(image: PIL.Image.Image, model: str | None = None) -> list[Face]:
    """Faces in an RGB image, largest box first; [] when there is none."""
    return find_faces_batch([image], model=model)[0]


def find_faces_batch(images: list[PIL.Image.Image], model: str | None = None) -> list[list[Face]]:
    """find_faces for several same-size images (video frames), detecting and embedding in batches."""
    images = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
    return embed_faces(images, detect_faces(images, model=model), model=model)


def detect_faces(images: list[PIL.Image.Image], model: str | None = None) -> list[list[Detection]]:
    """The faces MTCNN finds in same-size RGB images, largest box first: (box, probability) per face.

    1. Detect on copies whose longer side is at most FACE_DETECT_MAX_SIDE and scale the boxes back.
    2. Keep boxes inside the image with probability >= FACE_MIN_PROBABILITY and shorter side >= FACE_MIN_SIZE.
    """
    if not images:
        return []
    width, height = images[0].size
    with torch.inference_mode():
        return [_keep(found, width, height) for found in _detect(_models(model).detector, images)]


def detect_around(
    images: list[PIL.Image.Image], boxes: list[tuple[float, ...]], model: str | None = None
) -> list[list[Detection]]:
    """For each image, the faces near its box: where a face was a moment before (a video's track, spans.py).

    Cheaper than detect_faces by far: no scan of the whole image. MTCNN's last two stages alone look at candidate
    boxes around the box (AROUND_SHIFTS x AROUND_SHIFTS places, AROUND_SIZES sizes), in a copy of the region scaled
    so that the box is REGION_FACE_SIDE pixels; the boxes come back in the image's pixels, kept as detect_faces
    keeps them.
    """
    if not images:
        return []
    detector = _models(model).detector
    nets, thresholds = _stages(detector)
    reach = max(AROUND_SHIFTS) + max(AROUND_SIZES) / 2  # in box sides, from the box's centre
    region_side = round(2 * reach * REGION_FACE_SIDE)
    regions, placements = [], []
    for image, (x1, y1, x2, y2) in zip(images, boxes, strict=True):
        side = max(x2 - x1, y2 - y1, 1.0)
        left, top = (x1 + x2) / 2 - reach * side, (y1 + y2) / 2 - reach * side
        area = (left, top, left + 2 * reach * side, top + 2 * reach * side)
        # Outside the image, the region is black.
        regions.append(image.transform((region_side, region_side), PIL.Image.Transform.EXTENT, area,
                                       PIL.Image.Resampling.BILINEAR))  # fmt: skip
        placements.append((left, top, side / REGION_FACE_SIDE))
    with torch.inference_mode():
        detected = mtcnn.follow(regions, _candidates(region_side), nets, thresholds)
    found = []
    for image, detections, (left, top, scale) in zip(images, detected, placements, strict=True):
        in_image = np.asarray(detections, dtype=float).reshape(-1, 5) * np.array([scale] * 4 + [1.0])
        found.append(_keep(in_image + [left, top, left, top, 0.0], image.width, image.height))
    return found


def _candidates(region_side: int) -> np.ndarray:
    """detect_around's candidate boxes (x1, y1, x2, y2, score) in a region with the known box at its centre."""
    centres = [region_side / 2 + shift * REGION_FACE_SIDE for shift in AROUND_SHIFTS]
    halves = [size * REGION_FACE_SIDE / 2 for size in AROUND_SIZES]
    candidates = [(x - half, y - half, x + half, y + half, 1.0) for x in centres for y in centres for half in halves]
    return np.array(candidates, dtype=np.float32)


def embed_faces(
    images: list[PIL.Image.Image], detections: list[list[Detection]], model: str | None = None
) -> list[list[Face]]:
    """Crop each detected face from its full-resolution image and embed all of them together (dlib: by image)."""
    crops = [[_crop(image, box) for box, _ in faces] for image, faces in zip(images, detections, strict=True)]
    boxes = [[box for box, _ in faces] for faces in detections]
    with torch.inference_mode():
        embeddings = iter(_models(model).embed(images, boxes, [crop for image_crops in crops for crop in image_crops]))
    return [
        [
            Face(box=box, probability=probability, embedding=next(embeddings), crop=crop)
            for (box, probability), crop in zip(faces, image_crops, strict=True)
        ]
        for faces, image_crops in zip(detections, crops, strict=True)
    ]


def _detect(detector: torch.nn.Module, images: list[PIL.Image.Image]) -> list[np.ndarray]:
    """MTCNN detections (n, 5) per image: x1, y1, x2, y2 in full-resolution pixels, then probability."""
    width, height = images[0].size
    scale = min(1.0, settings.FACE_DETECT_MAX_SIDE / max(width, height))
    if scale < 1.0:
        size = (round(width * scale), round(height * scale))
        images = [image.resize(size, PIL.Image.Resampling.BILINEAR) for image in images]
    # MTCNN's pyramid starts at its minimum face size: not searching for faces that FACE_MIN_SIZE drops
    # saves most of its time. Never below facenet-pytorch's default of 20 px.
    min_size = max(20.0, settings.FACE_MIN_SIZE * scale)
    # What MTCNN.detect runs (facenet-pytorch's detect_face), with the same boxes for less (mtcnn.py); called
    # directly, the minimum size may vary per call.
    nets, thresholds = _stages(detector)
    batch_detections = mtcnn.detect(images, min_size, nets, thresholds, cast(float, detector.factor))
    # The resized copy may not be exactly `scale` in both directions.
    to_full = np.array([width / images[0].width, height / images[0].height] * 2 + [1.0])
    return [np.asarray(detections, dtype=float).reshape(-1, 5) * to_full for detections in batch_detections]


def _stages(
    detector: torch.nn.Module,
) -> tuple[tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module], tuple[float, float, float]]:
    """facenet-pytorch MTCNN's three networks and their thresholds, for mtcnn.py."""
    nets = cast(tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module], (detector.pnet, detector.rnet, detector.onet))
    return nets, cast(tuple[float, float, float], detector.thresholds)


def _keep(detections: np.ndarray, width: int, height: int) -> list[Detection]:
    """(box, probability) of the confident, large enough faces, boxes clipped to the image, largest first."""
    boxes = np.clip(detections[:, :4], 0, [width, height, width, height])
    probabilities = detections[:, 4]
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    keep = (probabilities >= settings.FACE_MIN_PROBABILITY) & (sides >= settings.FACE_MIN_SIZE)
    faces = [
        (cast(tuple[float, float, float, float], tuple(map(float, box))), float(probability))
        for box, probability in zip(boxes[keep], probabilities[keep], strict=True)
    ]
    return sorted(faces, key=lambda face: (face[0][2] - face[0][0]) * (face[0][3] - face[0][1]), reverse=True)


def _crop(image: PIL.Image.Image, box: tuple[float, float, float, float]) -> PIL.Image.Image:
    """The face plus CROP_MARGIN (in output pixels, as facenet-pytorch's extract_face), resized to 160x160."""
    x1, y1, x2, y2 = box
    pad_x = CROP_MARGIN * (x2 - x1) / (CROP_SIZE - CROP_MARGIN) / 2
    pad_y = CROP_MARGIN * (y2 - y1) / (CROP_SIZE - CROP_MARGIN) / 2
    region = (
        int(max(x1 - pad_x, 0)),
        int(max(y1 - pad_y, 0)),
        int(min(x2 + pad_x, image.width)),
        int(min(y2 + pad_y, image.height)),
    )
    return image.crop(region).resize((CROP_SIZE, CROP_SIZE), PIL.Image.Resampling.BILINEAR)


def _embed(embedder: torch.nn.Module, crops: list[PIL.Image.Image]) -> list[np.ndarray]:
    """Unit-norm float32 (512,) embeddings, with facenet-pytorch's fixed standardisation (x - 127.5) / 128."""
    dtype = next(embedder.parameters()).dtype
    embeddings = []
    for start in range(0, len(crops), EMBEDDING_BATCH):
        pixels = np.stack([np.asarray(crop, dtype=np.float32) for crop in crops[start : start + EMBEDDING_BATCH]])
        # NHWC pixels seen as NCHW are already channels-last in memory.
        batch = (torch.from_numpy(pixels).permute(0, 3, 1, 2) - 127.5) / 128.0
        output = embedder(batch.to(dtype).contiguous(memory_format=torch.channels_last)).float()
        if dtype != torch.float32:
            # FaceNet normalises in its own dtype: bfloat16's 8-bit mantissa leaves norms up to 0.4% off one.
            output = torch.nn.functional.normalize(output, dim=1)
        embeddings.extend(output.numpy())
    return embeddings
