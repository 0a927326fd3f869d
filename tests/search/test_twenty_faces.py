"""A query photo of twenty people, tiled from LFW, through the real face engine and the real Milvus server."""

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from media_index import face_engine, face_weights, indexing, intake
from media_index.models import Asset
from tests.conftest import DATA_DIR

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.shared_data]

TILE = 150
# The big tile (the first person, twice the size) fills the top-left 2x2 cells; the other people the rest.
CELLS = [(column, row) for row in range(4) for column in range(6) if not (column < 2 and row < 2)]


@pytest.fixture(scope="module", autouse=True)
def models() -> None:
    face_weights.install_weights()
    face_engine.load()


@pytest.fixture(scope="module")
def people() -> list[list[Path]]:
    """The photos of the first twenty LFW people (by name) who have two or more."""
    folders = sorted(folder for folder in (DATA_DIR / "lfw").iterdir() if folder.is_dir())
    photos = (sorted(folder.glob("*.jpg")) for folder in folders)
    return [person for person in photos if len(person) >= 2][:20]


def centre(path: Path) -> Image.Image:
    """The middle 150x150 of a 250x250 LFW photo: the person's face without the people behind them."""
    with Image.open(path) as image:
        return image.convert("RGB").crop((50, 50, 200, 200))


def group_photo(people: list[list[Path]]) -> io.BytesIO:
    """Everyone's first photo in a 6x4 grid, the first person's at twice the size so that theirs is the largest face."""
    canvas = Image.new("RGB", (6 * TILE, 4 * TILE), "white")
    canvas.paste(centre(people[0][0]).resize((2 * TILE, 2 * TILE)), (0, 0))
    for person, (column, row) in zip(people[1:], CELLS, strict=False):
        canvas.paste(centre(person[0]), (column * TILE, row * TILE))
    upload = io.BytesIO()
    canvas.save(upload, format="JPEG", quality=92)
    upload.seek(0)
    upload.name = "twenty people.jpg"
    return upload


def person_at(box: tuple[float, float, float, float]) -> int:
    """Whose tile a face box is centred in."""
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    if x < 2 * TILE and y < 2 * TILE:
        return 0
    return 1 + CELLS.index((int(x // TILE), int(y // TILE)))


# Whose second photos are in the archive: the largest face's, the picked face's (19) and a few others'.
ARCHIVED = (0, 4, 8, 12, 16, 19)


@pytest.fixture
def archive(people, media_root, vector_store_on, monkeypatch) -> dict[int, Asset]:
    """Second photos of the ARCHIVED people, indexed in place: a search should find the person picked, and only them."""
    from media_index import tasks

    monkeypatch.setattr(tasks.index_asset_task, "apply_async", lambda *args, **kwargs: None)
    assets = {person: intake.register_path(people[person][1]) for person in ARCHIVED}
    for asset in assets.values():
        indexing.index_asset(asset.pk)
    return assets


@pytest.fixture
def user_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reviewer", password="a-long-password-1"))
    return client


def shown_region(style: str, width: int, height: int) -> tuple[float, float, float, float]:
    """The part of the photo (x1, y1, x2, y2 in pixels) that a face-picker tile's CSS background shows."""
    numbers = re.fullmatch(r"background-size:([\d.]+)% ([\d.]+)%;background-position:([\d.]+)% ([\d.]+)%", style)
    size_x, size_y, position_x, position_y = (float(value) / 100 for value in numbers.groups())
    side_x, side_y = width / size_x, height / size_y
    x, y = position_x * (width - side_x), position_y * (height - side_y)
    return x, y, x + side_x, y + side_y


def test_twenty_faces_are_found_each_selectable_and_the_largest_is_searched(user_client, people, archive):
    answer = user_client.post("/", {"photo": group_photo(people)}, follow=True)
    assert answer.status_code == 200
    result = answer.context["result"]
    assert len(result.faces) == 20
    assert sorted(person_at(face.box) for face in result.faces) == list(range(20))

    assert result.chosen == 0 and person_at(result.faces[0].box) == 0
    assert result.matches[0].asset == archive[0] and result.matches[0].same_person
    assert not any(match.same_person for match in result.matches[1:])
    page = answer.content.decode()
    assert "20 faces found. Searching face 1, the largest (green)" in page
    assert "click another box on the photo or another face below" in page
    # Each face has a numbered box on the photo and a numbered tile in the list below, both links that search it.
    links = re.findall(r'href="\?face=(\d+)"[^>]*><span>(\d+)</span></a>', page)
    assert sorted(links) == sorted([(str(number), str(number + 1)) for number in range(20)] * 2)

    # Each tile shows its whole face, square and from within the photo (give or take the CSS's rounding).
    for face, item in zip(result.faces, answer.context["faces"], strict=True):
        x1, y1, x2, y2 = shown_region(item["thumb"], result.width, result.height)
        assert -0.5 <= x1 <= face.box[0] and -0.5 <= y1 <= face.box[1]
        assert face.box[2] <= x2 <= result.width + 0.5 and face.box[3] <= y2 <= result.height + 0.5
        assert x2 - x1 == pytest.approx(y2 - y1, abs=0.5)


def test_picking_face_n_searches_that_face(user_client, people, archive):
    answer = user_client.post("/", {"photo": group_photo(people)}, follow=True)
    # The bottom-right person: neither the largest face nor the first in the list.
    faces = answer.context["result"].faces
    number = next(index for index, face in enumerate(faces) if person_at(face.box) == 19)
    assert number != 0

    picked = user_client.get(f"{answer.request['PATH_INFO']}?face={number}")
    result = picked.context["result"]
    assert result.chosen == number and person_at(result.faces[number].box) == 19
    assert result.matches[0].asset == archive[19] and result.matches[0].same_person
    assert not any(match.same_person for match in result.matches[1:])
    page = picked.content.decode()
    assert f"Searching face {number + 1} (green)" in page
    assert f'<li><a href="?face={number}" class="chosen" aria-current="true"' in page
