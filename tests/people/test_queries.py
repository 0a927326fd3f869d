"""The people page's rows and a person's photos and moments."""

from datetime import UTC, datetime

import pytest
from django.db.models import F

from media_index.models import Asset, Face, Frame, Track
from people import queries
from people.models import Person
from tests.people.conftest import make_asset, make_face

pytestmark = pytest.mark.django_db


@pytest.fixture
def archive():
    """Ada (named) in two photos and two moments of one video; two unnamed people; Bob, hidden."""
    ada, small, large = Person.objects.create(name="Ada"), Person.objects.create(), Person.objects.create()
    bob = Person.objects.create(name="Bob", hidden=True)
    first, second = make_asset(mtime=1_000_000_000), make_asset(mtime=1_600_000_000)
    video = make_asset(Asset.Kind.VIDEO, mtime=1_500_000_000)
    frames = [Frame.objects.create(asset=video, index=i, timestamp=i * 0.5) for i in range(4)]
    make_face(first, ada, probability=0.9)
    clearest = make_face(second, ada, probability=0.999)
    make_face(second, ada, probability=0.8)
    track = make_face(video, ada, frame=frames[0])
    track.track = track.pk
    track.save()
    make_face(video, ada, frame=frames[1], track=track.pk, probability=0.999)
    untracked = make_face(video, ada, frame=frames[3])
    make_face(first, small)
    for _ in range(3):
        make_face(first, large)
    make_face(first, bob)
    return {"ada": ada, "small": small, "large": large, "bob": bob, "clearest": clearest, "untracked": untracked}


def test_people_are_counted_in_two_queries_named_first_then_by_faces(archive, django_assert_num_queries):
    with django_assert_num_queries(2):  # the page, then the details of its rows: never a query per person
        rows = list(queries.people_summary())
    assert [row.pk for row in rows] == [archive["ada"].pk, archive["large"].pk, archive["small"].pk]
    ada = rows[0]
    assert (ada.face_count, ada.photo_count, ada.moment_count) == (6, 2, 2)
    assert ada.latest == datetime.fromtimestamp(1_600_000_000, tz=UTC)
    assert ada.cover_face_id == archive["clearest"].pk
    assert (rows[1].face_count, rows[1].photo_count, rows[1].moment_count) == (3, 1, 0)


def test_a_chosen_cover_wins_and_hidden_people_are_listed_on_request(archive):
    ada = archive["ada"]
    ada.cover = archive["untracked"]
    ada.save()
    rows = list(queries.people_summary(include_hidden=True))
    assert [row.name for row in rows][:2] == ["Ada", "Bob"]
    assert rows[0].cover_face_id == archive["untracked"].pk
    page = list(queries.people_summary(include_hidden=True)[1:3])  # sliceable, for pages
    assert [row.pk for row in page] == [row.pk for row in rows[1:3]]
    assert [row.photo_count for row in page] == [row.photo_count for row in rows[1:3]] == [1, 1]


def test_a_person_appears_in_photos_and_in_moments_by_date(archive):
    found = queries.person_appearances(archive["ada"])
    assert [photo.asset.mtime for photo in found.photos] == [1_000_000_000, 1_600_000_000]
    assert found.photos[1].face == archive["clearest"]
    assert [(moment.start, moment.end) for moment in found.moments] == [(0.0, 0.5), (1.5, 1.5)]
    assert found.moments[0].face.probability == 0.999


def test_a_moment_of_a_track_with_a_span_runs_from_its_start_to_its_end(archive):
    first = Face.objects.get(track=F("pk"))
    Track.objects.create(face=first, asset=first.asset, start=0.0, end=0.87, start_settled=True, end_settled=True)
    found = queries.person_appearances(archive["ada"])
    assert [(moment.start, moment.end) for moment in found.moments] == [(0.0, 0.87), (1.5, 1.5)]


def test_people_are_found_by_name_in_any_case_or_by_id(archive):
    assert queries.find_people("ada") == [archive["ada"]]
    assert queries.find_people(str(archive["small"].pk)) == [archive["small"]]
    assert queries.find_people("nobody") == [] and queries.find_people("  ") == []
