"""The face engine on real photos with the real CASIA-WebFace weights, and dlib's baseline embedder."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from PIL import Image, ImageFile, ImageOps

from media_index import dlib_embedder, face_engine, face_weights
from tests.conftest import SAMPLES


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    """Build the weights if needed and load the models once for the whole module."""
    face_weights.install_weights()
    face_engine.load()
    face_engine.load("dlib-resnet")


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def faces_in(name: str, model: str | None = None) -> list[face_engine.Face]:
    return face_engine.find_faces(open_rgb(SAMPLES / name), model=model)


def distance(a: face_engine.Face, b: face_engine.Face) -> float:
    return float(np.linalg.norm(a.embedding - b.embedding))


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = width * height
    return intersection / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection)


@pytest.mark.shared_data
def test_same_person_is_closer_than_another_person(settings) -> None:
    [a1], [a2], [b] = faces_in("person_a_1.jpg"), faces_in("person_a_2.jpg"), faces_in("person_b.jpg")
    assert distance(a1, a2) < distance(a1, b)
    assert distance(a1, a2) < distance(a2, b)
    # The search scores a match at MATCH_DISTANCE: these photos fall on the right sides of it.
    assert distance(a1, a2) < settings.MATCH_DISTANCE < min(distance(a1, b), distance(a2, b))


@pytest.mark.shared_data
def test_two_people_are_two_faces_largest_first_each_matching_its_person() -> None:
    faces = faces_in("two_people.jpg")
    assert len(faces) == 2
    areas = [(face.box[2] - face.box[0]) * (face.box[3] - face.box[1]) for face in faces]
    assert areas == sorted(areas, reverse=True)
    [a1], [b] = faces_in("person_a_1.jpg"), faces_in("person_b.jpg")
    nearest_to_a = min(faces, key=lambda face: distance(face, a1))
    nearest_to_b = min(faces, key=lambda face: distance(face, b))
    assert nearest_to_a is not nearest_to_b


@pytest.mark.shared_data
def test_no_face_gives_an_empty_list() -> None:
    assert faces_in("no_face.jpg") == []


@pytest.mark.parametrize("model", ["casia-webface", "dlib-resnet"])
@pytest.mark.parametrize("name", ["person_a_1.jpg", "person_a_2.jpg", "person_b.jpg", "two_people.jpg"])
@pytest.mark.shared_data
def test_faces_are_well_formed(name: str, model: str, settings) -> None:
    image = open_rgb(SAMPLES / name)
    faces = face_engine.find_faces(image, model=model)
    assert faces
    for face in faces:
        assert face.embedding.dtype == np.float32
        assert face.embedding.shape == (face_engine.dimension(model),)
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= image.width and 0 <= y1 < y2 <= image.height
        assert min(x2 - x1, y2 - y1) >= settings.FACE_MIN_SIZE
        assert settings.FACE_MIN_PROBABILITY <= face.probability <= 1
        assert face.crop.mode == "RGB" and face.crop.size == (160, 160)


@pytest.mark.shared_data
def test_filters_drop_small_and_unsure_faces(settings) -> None:
    settings.FACE_MIN_SIZE = 10
    settings.FACE_MIN_PROBABILITY = 0.5
    # person_a_1 also holds a small false positive (about 55 px, p 0.8) that the defaults drop.
    assert len(faces_in("person_a_1.jpg")) == 2
    settings.FACE_MIN_SIZE = 100
    assert len(faces_in("person_a_1.jpg")) == 1
    settings.FACE_MIN_PROBABILITY = 0.9
    settings.FACE_MIN_SIZE = 10
    assert len(faces_in("person_a_1.jpg")) == 1


@pytest.mark.shared_data
def test_downscaled_detection_finds_the_same_faces_as_full_resolution(settings) -> None:
    image = open_rgb(SAMPLES / "person_b.jpg")  # 970x2204
    settings.FACE_DETECT_MAX_SIDE = 4096
    full = face_engine.find_faces(image)
    settings.FACE_DETECT_MAX_SIDE = 640
    downscaled = face_engine.find_faces(image)
    assert len(full) == len(downscaled) == 1
    # Boxes come back in the given image's pixels and the crop is cut from it at full resolution.
    assert overlap(full[0].box, downscaled[0].box) > 0.9
    assert distance(full[0], downscaled[0]) < 0.3


@pytest.mark.shared_data
def test_detect_around_finds_each_face_again_near_its_box_and_nothing_where_none_is() -> None:
    image = open_rgb(SAMPLES / "two_people.jpg")
    faces = face_engine.detect_faces([image])[0]
    assert len(faces) == 2
    boxes = [box for box, _ in faces]
    # Moved by half a side to the right and down: where a face walking across a frame was a moment before.
    moved = [
        (x1 + (x2 - x1) / 2, y1 + (y2 - y1) / 2, x2 + (x2 - x1) / 2, y2 + (y2 - y1) / 2) for x1, y1, x2, y2 in boxes
    ]
    for looked_at in (boxes, moved):
        found = face_engine.detect_around([image, image], looked_at)
        for box, near in zip(boxes, found, strict=True):
            assert max(overlap(box, other) for other, _ in near) > 0.8
    # The same box in a photo of nobody, and the corner of this one, holds no face.
    nobody = open_rgb(SAMPLES / "no_face.jpg").resize(image.size)
    side = boxes[0][2] - boxes[0][0]
    assert face_engine.detect_around([nobody, image], [boxes[0], (0.0, 0.0, side / 2, side / 2)]) == [[], []]


@pytest.mark.shared_data
def test_batch_gives_what_single_images_give() -> None:
    image = open_rgb(SAMPLES / "two_people.jpg")
    frames = [image, ImageOps.mirror(image), Image.new("RGB", image.size, "gray")]
    batched = face_engine.find_faces_batch(frames)
    assert [len(faces) for faces in batched] == [2, 2, 0]
    for frame, faces in zip(frames, batched, strict=True):
        for single, in_batch in zip(face_engine.find_faces(frame), faces, strict=True):
            assert np.allclose(single.box, in_batch.box, atol=0.01)
            assert np.allclose(single.embedding, in_batch.embedding, atol=1e-5)
    assert face_engine.find_faces_batch([]) == []


def test_model_name_follows_the_setting(settings) -> None:
    settings.FACE_MODEL = "casia-webface"
    assert face_engine.model_name() == "facenet-20180408-casia-webface"
    settings.FACE_MODEL = "vggface2"
    assert face_engine.model_name() == "facenet-20180402-vggface2"
    settings.FACE_MODEL = "dlib-resnet"
    assert face_engine.model_name() == "dlib-resnet-v1"
    assert face_engine.dimension() == 128
    settings.FACE_MODEL = "arcface"
    with pytest.raises(ImproperlyConfigured, match="FACE_MODEL='arcface'"):
        face_engine.model_name()


def test_an_explicit_model_overrides_the_setting(settings) -> None:
    settings.FACE_MODEL = "casia-webface"
    assert face_engine.model_name("dlib-resnet") == "dlib-resnet-v1"
    assert face_engine.dimension("dlib-resnet") == 128
    assert face_engine.model_name() == "facenet-20180408-casia-webface"
    assert face_engine.dimension() == face_engine.dimension("vggface2") == 512
    with pytest.raises(ImproperlyConfigured, match="model='arcface'"):
        face_engine.dimension("arcface")


def test_missing_weights_tell_the_user_how_to_install_them(settings, tmp_path, monkeypatch) -> None:
    settings.TORCH_HOME = tmp_path
    monkeypatch.setattr(face_engine, "_loaded", {})
    with pytest.raises(face_weights.WeightsError, match="python manage.py install_face_weights"):
        face_engine.load()


@pytest.mark.shared_data
def test_dlib_same_person_is_closer_than_another_person() -> None:
    [a1], [a2], [b] = (faces_in(name, "dlib-resnet") for name in ("person_a_1.jpg", "person_a_2.jpg", "person_b.jpg"))
    assert distance(a1, a2) < min(distance(a1, b), distance(a2, b))


@pytest.mark.shared_data
def test_dlib_embeds_the_faces_the_default_model_finds() -> None:
    default, dlib = faces_in("two_people.jpg"), faces_in("two_people.jpg", "dlib-resnet")
    assert len(dlib) == 2
    assert [face.box for face in dlib] == [face.box for face in default]
    assert [face.probability for face in dlib] == [face.probability for face in default]
    [a1], [b] = faces_in("person_a_1.jpg", "dlib-resnet"), faces_in("person_b.jpg", "dlib-resnet")
    assert min(dlib, key=lambda face: distance(face, a1)) is not min(dlib, key=lambda face: distance(face, b))


@pytest.mark.shared_data
def test_models_alternating_in_one_process_give_what_each_gives_alone(monkeypatch) -> None:
    image = open_rgb(SAMPLES / "two_people.jpg")
    alone = {}
    for model in ("casia-webface", "dlib-resnet"):
        monkeypatch.setattr(face_engine, "_loaded", {})
        alone[model] = face_engine.find_faces(image, model=model)
    for model in ("casia-webface", "dlib-resnet", "casia-webface", "dlib-resnet"):
        for single, alternating in zip(alone[model], face_engine.find_faces(image, model=model), strict=True):
            assert np.array_equal(single.embedding, alternating.embedding)
    assert {name for name, *_ in face_engine._loaded} == {"facenet-20180408-casia-webface", "dlib-resnet-v1"}


@pytest.mark.shared_data
def test_dlib_batch_gives_what_single_images_give() -> None:
    image = open_rgb(SAMPLES / "two_people.jpg")
    frames = [Image.new("RGB", image.size, "gray"), image, ImageOps.mirror(image)]
    batched = face_engine.find_faces_batch(frames, model="dlib-resnet")
    assert [len(faces) for faces in batched] == [0, 2, 2]
    for frame, faces in zip(frames, batched, strict=True):
        for single, in_batch in zip(face_engine.find_faces(frame, model="dlib-resnet"), faces, strict=True):
            assert np.allclose(single.embedding, in_batch.embedding, atol=1e-5)


def test_dlib_boxes_become_dlib_rectangles_inside_the_image() -> None:
    # dlib's right and bottom are the last pixel inside the face, so a box to the image's edge ends one before it.
    assert dlib_embedder._css((0.0, 0.0, 640.0, 480.0), 640, 480) == (0, 639, 479, 0)
    assert dlib_embedder._css((10.2, 20.7, 50.6, 80.3), 640, 480) == (21, 50, 79, 10)


def test_loading_dlib_leaves_truncated_photos_refused() -> None:
    # face_recognition turns this on for the whole process when imported; the fixture has loaded it.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.shared_data
def test_the_faster_embedder_gives_the_published_models_embeddings() -> None:
    """Folded batch norms and channels-last memory change speed only: the unmodified network agrees to 1e-5."""
    import torch

    crops = [face.crop for face in faces_in("two_people.jpg")]
    pixels = torch.from_numpy(np.stack([np.asarray(crop, dtype=np.float32) for crop in crops])).permute(0, 3, 1, 2)
    with torch.inference_mode():
        published = face_engine._build_embedder("casia-webface").eval()((pixels - 127.5) / 128.0).numpy()
        faster = face_engine._embed(face_engine._for_speed(face_engine._build_embedder("casia-webface").eval()), crops)
    assert len(crops) == 2
    assert np.allclose(np.stack(faster), published, atol=1e-5)
    assert not np.allclose(published[0], published[1], atol=0.1)  # two people: the comparison has teeth


def test_the_dlib_model_without_the_evaluation_set_names_what_to_install(monkeypatch):
    """The production image has no dlib: choosing its model says what is missing instead of failing on an import."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "face_recognition" else real_find_spec(name)
    )
    with pytest.raises(ImproperlyConfigured, match=r"dlib-resnet needs face_recognition, .*make tools"):
        dlib_embedder.load()
