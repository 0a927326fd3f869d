"""Baseline embedder: dlib's ResNet face encoder (128-d) on the boxes MTCNN found.

face_engine loads it once per process under its lock, so the evaluation can compare it with FaceNet on the same
faces. The dlib-bin wheel is built without BLAS and encodes on the calling thread (measured: CPU time equals wall
time, no threads started): it honours no thread setting, and its binding holds the GIL, so concurrent calls are
serialised (safe under gunicorn's threads, never parallel).
"""

import importlib.util
import logging
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import PIL.Image
import PIL.ImageFile
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

# The 5-point landmarks, not the 68-point ones: dlib's own face recognition examples, which state the LFW figures,
# align with the 5-point model, and dlib's chip extraction is calibrated to give the same 150x150 chip from
# either. The 68-point model expects boxes placed as dlib's HOG detector places them, and ours come from MTCNN;
# the 5-point model is made for both of dlib's detectors' boxes, and it carries no non-commercial restriction.
# On the samples it also separates same from different people better (docs/evaluation.md).
LANDMARKS = "small"
# No jittering: dlib's published LFW figure averages 100 jittered copies of each face, for a small gain.
JITTERS = 1

Encode = Callable[..., list[np.ndarray]]


def load() -> Encode:
    """face_recognition.face_encodings; importing face_recognition reads all of dlib's model files, once."""
    face_recognition = import_face_recognition()
    import dlib

    logger.info(
        "dlib %s, BLAS %s: faces are encoded one at a time on the calling thread", dlib.__version__, dlib.DLIB_USE_BLAS
    )
    return face_recognition.face_encodings


def import_face_recognition(needed_by: str = "REVSEARCH_FACE_MODEL=dlib-resnet") -> ModuleType:
    """The face_recognition package, or a clear error where the evaluation set is missing; importing it leaves the
    process's settings as they were."""
    missing = [name for name in ("face_recognition", "face_recognition_models") if not importlib.util.find_spec(name)]
    if missing:
        raise ImproperlyConfigured(
            f"{needed_by} needs {' and '.join(missing)}, which only the evaluation set installs:"
            " run `make tools` (requirements/eval.txt), or choose another face model"
        )
    truncated = PIL.ImageFile.LOAD_TRUNCATED_IMAGES
    with warnings.catch_warnings():
        # face_recognition_models imports pkg_resources, which warns; with warnings as errors face_recognition
        # would take that for a missing package and quit() the process.
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import face_recognition
    # face_recognition turns this on for the whole process at import; the services must go on refusing
    # truncated photos.
    PIL.ImageFile.LOAD_TRUNCATED_IMAGES = truncated
    return face_recognition


def embed(
    encode: Encode,
    images: list[PIL.Image.Image],
    boxes: list[list[tuple[float, float, float, float]]],
) -> list[np.ndarray]:
    """Unit-norm float32 (128,) embeddings of each image's boxes, in order: dlib aligns its own chip per box.

    dlib's vectors have norms near 1.4, not 1, and its usual same-person threshold of 0.6 is on those raw
    vectors (about 0.43 once normalised); Milvus and the evaluation compare normalised vectors.
    """
    embeddings: list[np.ndarray] = []
    for image, image_boxes in zip(images, boxes, strict=True):
        if not image_boxes:
            continue
        locations = [_css(box, image.width, image.height) for box in image_boxes]
        vectors = encode(np.asarray(image), known_face_locations=locations, num_jitters=JITTERS, model=LANDMARKS)
        embeddings.extend((vector / np.linalg.norm(vector)).astype(np.float32) for vector in vectors)
    return embeddings


def _css(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """An (x1, y1, x2, y2) box as face_recognition's (top, right, bottom, left), clipped to the image.

    That is a dlib rectangle: integer pixels whose right and bottom are the last column and row inside the face,
    so x2 (the edge after the face) becomes round(x2) - 1.
    """
    x1, y1, x2, y2 = box
    left = min(max(round(x1), 0), width - 1)
    top = min(max(round(y1), 0), height - 1)
    right = min(max(round(x2) - 1, left), width - 1)
    bottom = min(max(round(y2) - 1, top), height - 1)
    return top, right, bottom, left
