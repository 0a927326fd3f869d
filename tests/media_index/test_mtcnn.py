"""mtcnn.py against facenet-pytorch's detect_face: the same pooled pixels bit for bit, and the same boxes."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch.nn.functional import interpolate

from media_index import mtcnn, torchvision_compat
from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def detector() -> torch.nn.Module:
    """MTCNN with the weights facenet-pytorch ships, channels-last as face_engine loads it."""
    torchvision_compat.install()
    from facenet_pytorch import MTCNN

    return MTCNN().eval().to(memory_format=torch.channels_last)


def random_images(count: int, width: int, height: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(count)]


def as_tensor(images: list[Image.Image]) -> torch.Tensor:
    """The images as detect_face holds them: float (n, 3, h, w)."""
    return torch.from_numpy(np.stack([np.asarray(image) for image in images])).permute(0, 3, 1, 2).float()


def facenet_boxes(detector: torch.nn.Module, images: list[Image.Image], min_size: float) -> list[np.ndarray]:
    from facenet_pytorch.models.utils.detect_face import detect_face

    nets = (detector.pnet, detector.rnet, detector.onet)
    with torch.inference_mode():
        boxes, _ = detect_face(images, min_size, *nets, detector.thresholds, detector.factor, "cpu")
    return [np.asarray(found, dtype=float).reshape(-1, 5) for found in boxes]


def our_boxes(detector: torch.nn.Module, images: list[Image.Image], min_size: float) -> list[np.ndarray]:
    nets = (detector.pnet, detector.rnet, detector.onet)
    with torch.inference_mode():
        return mtcnn.detect(images, min_size, nets, detector.thresholds, detector.factor)


@pytest.mark.parametrize("size", [(44, 60), (97, 131), (13, 7), (150, 200), (12, 17)])
def test_pyramid_levels_are_torchs_area_interpolation_bit_for_bit(size: tuple[int, int]) -> None:
    images = random_images(2, 131, 97)
    expected = interpolate(as_tensor(images), size=size, mode="area").permute(0, 2, 3, 1).numpy()
    assert np.array_equal(mtcnn.Integrals(images).levels(*size), expected)


def test_crops_are_torchs_area_interpolation_bit_for_bit() -> None:
    images = random_images(2, 131, 97)
    pixels, full = mtcnn.Integrals(images), as_tensor(images)
    # Shrunk, enlarged (a region smaller than the output), the whole image, thin, at the far edges.
    regions = [(1, 3, 40, 5, 77), (0, 10, 15, 20, 24), (1, 0, 97, 0, 131), (0, 50, 51, 3, 90), (1, 80, 97, 120, 131)]
    for side in (24, 48):
        inds, top, bottom, left, right = (np.array(values) for values in zip(*regions, strict=True))
        got = pixels.crops(inds, top, bottom, left, right, side)
        for crop, (index, y0, y1, x0, x1) in zip(got, regions, strict=True):
            expected = interpolate(full[index : index + 1, :, y0:y1, x0:x1], size=(side, side), mode="area")
            assert np.array_equal(crop, expected[0].permute(1, 2, 0).numpy()), (index, y0, y1, x0, x1, side)


def test_window_sums_survive_tables_that_wrap_around() -> None:
    # A photo of more than 17 megapixels sums past 2**32; the windows' sums, differences of four, stay exact.
    images = random_images(1, 64, 48)
    pixels = mtcnn.Integrals(images)
    expected = pixels.crops(np.array([0]), np.array([5]), np.array([40]), np.array([3]), np.array([60]), 24)
    pixels.flat += np.uint32(2**32 - 1000)  # as if everything before these pixels had summed to nearly 2**32
    wrapped = pixels.crops(np.array([0]), np.array([5]), np.array([40]), np.array([3]), np.array([60]), 24)
    assert np.array_equal(wrapped, expected)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["two_people.jpg", "person_a_1.jpg", "no_face.jpg"])
def test_photos_get_facenet_pytorchs_boxes(detector: torch.nn.Module, name: str) -> None:
    with Image.open(SAMPLES / name) as photo:
        image = photo.convert("RGB")
    image.thumbnail((1280, 1280))
    for min_size in (20, 40):
        expected, got = facenet_boxes(detector, [image], min_size), our_boxes(detector, [image], min_size)
        assert got[0].shape == expected[0].shape
        assert np.allclose(got[0], expected[0], atol=1e-3)


@pytest.mark.shared_data
def test_a_batch_of_frames_gets_facenet_pytorchs_boxes_frame_by_frame(detector: torch.nn.Module) -> None:
    with Image.open(SAMPLES / "two_people.jpg") as photo:
        image = photo.convert("RGB").resize((640, 360))
    # Faces, a mirrored copy, one without faces, and a Hamilton-sized random frame: hundreds of candidates.
    frames = [image, ImageOps.mirror(image), Image.new("RGB", image.size, "gray"), *random_images(1, 640, 360)]
    expected, got = facenet_boxes(detector, frames, 40), our_boxes(detector, frames, 40)
    assert [len(boxes) for boxes in got] == [len(boxes) for boxes in expected]
    assert sum(len(boxes) for boxes in got) >= 4
    for ours, theirs in zip(got, expected, strict=True):
        assert np.allclose(ours, theirs, atol=1e-3)


@pytest.mark.shared_data
def test_networks_run_in_pieces_give_what_one_batch_gives(detector: torch.nn.Module, monkeypatch) -> None:
    with Image.open(SAMPLES / "two_people.jpg") as photo:
        frames = [photo.convert("RGB").resize((640, 360))] * 3
    whole = our_boxes(detector, frames, 40)
    monkeypatch.setattr(mtcnn, "PNET_PIXELS", 1)  # one image at a time
    monkeypatch.setattr(mtcnn, "RNET_BATCH", 3)
    monkeypatch.setattr(mtcnn, "ONET_BATCH", 1)
    pieces = our_boxes(detector, frames, 40)
    assert len(whole[0]) == 2
    for a, b in zip(whole, pieces, strict=True):
        assert np.allclose(a, b, atol=1e-3)


def test_an_image_smaller_than_the_smallest_face_has_no_faces(detector: torch.nn.Module) -> None:
    # detect_face fails on the empty pyramid of such an image.
    found = our_boxes(detector, random_images(2, 30, 30), 40)
    assert [boxes.shape for boxes in found] == [(0, 5), (0, 5)]
