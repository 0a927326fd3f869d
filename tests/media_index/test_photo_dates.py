"""When a photo was taken: its EXIF date, read in the configured time zone, or nothing when it says nonsense."""

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from media_index.imaging import taken_at


def with_exif_date(text: str | None) -> Image.Image:
    photo = Image.new("RGB", (8, 8))
    exif = photo.getexif()
    if text is not None:
        exif.get_ifd(0x8769)[36867] = text
    stream = io.BytesIO()
    photo.save(stream, "JPEG", exif=exif)
    return Image.open(stream)


def test_the_exif_date_is_read_in_the_configured_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    expected = datetime(2010, 5, 10, 10, 4, 1, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    assert taken_at(with_exif_date("2010:05:10 10:04:01")) == expected


@pytest.mark.parametrize("text", [None, "0000:00:00 00:00:00", "yesterday", "2010:13:40 25:00:00"])
def test_no_date_or_a_nonsense_one_gives_none(text):
    assert taken_at(with_exif_date(text)) is None
