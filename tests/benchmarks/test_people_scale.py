"""The people sections of the benchmark: the synthetic archives they measure, how their figures are worked out, and
each section run end to end at a tiny size."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from django.db.models import F

from benchmarks import people_page, people_scale
from benchmarks.runner import Report, people_lines
from media_index.models import Face, Frame
from people.models import Person
from tests.conftest import BASE_DIR


def test_the_mix_holds_people_of_very_different_sizes_and_strangers():
    mix = people_scale.people_mix(20_000, seed=4)
    assert mix.vectors.shape == (20_000, 512) and mix.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(mix.vectors, axis=1), 1.0, atol=1e-5)
    summary = people_scale.mix_summary(mix.labels, min_faces=3)
    assert summary["strangers"] == 6_000 and summary["faces"] == 20_000
    # People of an exponential share of the faces: a few drew none.
    assert mix.people == 560 and 500 < summary["people"] <= 560
    # Some people too small to form a group, and some ten times the typical size.
    assert summary["people_with_min_faces"] < summary["people"]
    assert summary["largest_person"] > 5 * summary["median_person"]
    # The same seed makes the same archive.
    assert np.array_equal(people_scale.people_mix(20_000, seed=4).labels, mix.labels)


def test_in_the_mix_a_person_is_close_together_and_strangers_mostly_alone():
    mix = people_scale.people_mix(4_000, seed=1)
    radius = 1.0  # the default REVSEARCH_PEOPLE_CLUSTER_DISTANCE
    distances = np.sqrt(np.maximum(2 - 2 * mix.vectors @ mix.vectors.T, 0))
    np.fill_diagonal(distances, np.inf)
    same = mix.labels[:, None] == mix.labels[None, :]
    people = mix.labels >= 0
    # Most faces of a person have most of their person within the radius...
    close_to_own = [np.mean(distances[i][same[i]] < radius) for i in np.flatnonzero(people)[:300]]
    assert np.median(close_to_own) > 0.5
    # ...and a stranger is mostly far from everyone, but not always: the density rule has strays to deal with.
    alone = np.mean(distances[~people].min(axis=1) >= radius)
    assert 0.6 < alone < 1.0


def test_assignment_alternates_off_and_on():
    assert people_scale.assign_order(1) == [False, True]
    assert people_scale.assign_order(2) == [False, True, True, False]


def test_the_assignment_cost_is_the_median_of_each_setting():
    runs = [
        {"assign": False, "photos_per_second": 20.0, "cpu_seconds": 80.0},
        {"assign": True, "photos_per_second": 17.0, "cpu_seconds": 90.0},
        {"assign": True, "photos_per_second": 19.0, "cpu_seconds": 94.0},
        {"assign": False, "photos_per_second": 22.0, "cpu_seconds": 84.0},
    ]
    figures = people_scale.assign_figures(runs, photos=100, workers=2)
    assert figures["off_photos_per_second"] == 21.0 and figures["on_photos_per_second"] == 18.0
    assert figures["ratio"] == pytest.approx(18 / 21, abs=1e-3)
    assert figures["slowdown"] == pytest.approx(3 / 21, abs=1e-3) and not figures["meets_target"]
    assert (figures["off_cpu_ms_per_photo"], figures["on_cpu_ms_per_photo"]) == (820.0, 920.0)
    assert figures["cpu_ratio"] == pytest.approx(92 / 82, abs=1e-3)
    runs[1]["photos_per_second"] = 21.0
    assert people_scale.assign_figures(runs, photos=100, workers=2)["meets_target"]


def test_stages_are_timed_while_the_block_runs_and_put_back_after():
    module = types.SimpleNamespace(work=lambda x: x * 2)
    original = module.work
    with people_scale.timed_stages([(module, "work", "working"), (module, "renamed", "missing")]) as seconds:
        assert module.work(3) == 6 and module.work(4) == 8
    assert module.work is original
    assert set(seconds) == {"working"} and seconds["working"] >= 0


@pytest.mark.processes
def test_the_cluster_section_rebuilds_the_stored_mix(db, media_root, vector_store_on):
    lines = []
    figures = people_scale.cluster_in_archive(600, lines.append, seed=2)
    assert figures["report"]["faces"] == 600 and figures["mix"]["faces"] == 600
    assert figures["report"]["people"] == Person.objects.count() > 0
    assert Face.objects.exclude(person=None).count() == figures["report"]["grouped"] > 0
    assert {"read vectors", "neighbours", "stable groups", "write faces", "other"} <= set(figures["stages"])
    assert sum(figures["stages"].values()) <= figures["seconds"] + 0.1
    # Synthetic people are well apart: the groups are nearly pure.
    assert figures["bcubed_precision"] > 0.8 and figures["meets_target"] is None
    assert any("rebuild:" in line and "people formed" in line for line in lines)


def test_the_page_archive_is_people_with_faces_photos_moments_and_covers(db):
    made = people_page.fill_people(60, seed=3)
    assert Person.objects.count() == 60 and made["faces"] == Face.objects.count()
    assert min(person.faces.count() for person in Person.objects.all()) >= people_page.MIN_FACES
    assert 0 < made["named"] < 60 and made["chosen_covers"] == Person.objects.exclude(cover=None).count() > 0
    assert not Person.objects.exclude(cover=None).exclude(cover__person_id=F("id")).exists()
    # Every video face is one frame's, and in a track of its own person that starts at the track's first face.
    video_faces = Face.objects.exclude(frame=None)
    assert video_faces.count() == Frame.objects.count() > 0 and not Face.objects.filter(frame=None).exclude(track=None)
    for face in video_faces:
        first = Face.objects.get(pk=face.track)
        assert first.person_id == face.person_id and first.asset_id == face.asset_id and first.pk <= face.pk
    assert made["moments"] == video_faces.values("track").distinct().count()


def test_the_page_section_renders_the_people_page_signed_in(db):
    lines = []
    figures = people_page.page_in_archive(40, lines.append, renders=2, seed=5)
    assert figures["url"] == "/people/" and figures["renders"] == 2
    assert 0 < figures["min_ms"] <= figures["median_ms"] <= figures["max_ms"]
    assert figures["queries"] > 0 and figures["bytes"] > 1000
    assert figures["data"]["people"] == 40
    assert any("/people/: median" in line for line in lines)


def test_the_summary_says_each_people_figure_against_its_target():
    report = Report(
        people_assign={"on_photos_per_second": 19.0, "off_photos_per_second": 20.0, "workers": 2, "photos": 1000,
                       "slowdown": 0.05, "target_slowdown": 0.1, "on_cpu_ms_per_photo": 95.0,
                       "off_cpu_ms_per_photo": 90.0},
        people_cluster={"mix": {"faces": 100_000}, "seconds": 200.0, "cores": 2, "target_seconds": 600,
                        "stages": {"neighbours": 150.0}},
        people_page={"data": {"people": 10_000}, "median_ms": 80.0, "queries": 5, "target_ms": 300},
    )  # fmt: skip
    text = "\n".join(people_lines(report))
    assert "19.0 photos/s on, 20.0 off" in text and "5.0% slower" in text and "95.0 ms on, 90.0 ms off" in text
    assert "100,000 faces: 200.0 s" in text and "neighbours 150.0 s" in text
    assert "10,000 people: median 80.0 ms, 5 queries" in text


@pytest.mark.processes
def test_the_cluster_and_page_sections_run_from_the_command_in_scratch_databases(tmp_path):
    environment = os.environ | {"REVSEARCH_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "manage.py", "benchmark", "--json", "--only", "people_cluster,people_page"]
        + ["--people-faces", "400", "--people", "30", "--data", str(tmp_path / "no-photos-needed")],
        cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["people_cluster"]["report"]["faces"] == 400
    assert report["people_page"]["data"]["people"] == 30 and report["people_page"]["queries"] > 0
    assert report["photos"] == [] and report["people_assign"] == {}
    # The home's own database was never written: both ran in scratch databases.
    database = tmp_path / "db.sqlite3"
    assert not database.exists() or database.stat().st_size == 0
