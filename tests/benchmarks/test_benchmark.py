"""The benchmark's parts that need no service: scoring the side-by-side, reading face_recognition, /proc."""

import os
import subprocess
import sys
import time

import pytest
from PIL import Image

from benchmarks import ceiling, machine, versus
from benchmarks.runner import Report, summary_lines
from media_index.calibration import ScoreScale


def test_labels_are_scored_against_the_truth():
    truth = {"a1.jpg": "Ann", "a2.jpg": "Ann", "b1.jpg": "Bob", "x.jpg": "unknown", "y.jpg": "unknown"}
    labels = {"a1.jpg": "Ann", "a2.jpg": "Bob", "x.jpg": "Ann"}  # b1 missed, y rightly unknown
    scored = versus._scored(labels, truth, seconds=2.0)
    assert scored["right"] == 2 and scored["accuracy"] == 0.4
    assert (scored["wrong_person"], scored["missed"], scored["false_match"]) == (1, 1, 1)


@pytest.mark.parametrize(
    "line, path, name, distance",
    [
        ("/tmp/u/Ann_0002.jpg,Ann_Smith,0.41", "/tmp/u/Ann_0002.jpg", "Ann_Smith", "0.41"),
        ("/tmp/u/x, y.jpg,unknown_person,None", "/tmp/u/x, y.jpg", "unknown_person", "None"),
        ("/tmp/u/z.jpg,no_persons_found,None", "/tmp/u/z.jpg", "no_persons_found", "None"),
        ("/tmp/u/z.jpg,Bob", "/tmp/u/z.jpg", "Bob", None),
    ],
)
def test_face_recognition_lines_are_read(line, path, name, distance):
    match = versus.CLI_LINE.match(line)
    assert (match["path"], match["name"], match["distance"]) == (path, name, distance)


def test_the_side_by_side_keeps_one_photo_of_each_person_to_search_with(tmp_path):
    for person, count in (("Ann", 3), ("Bob", 2), ("Cy", 1), ("Di", 1)):
        (tmp_path / person).mkdir()
        for number in range(1, count + 1):
            Image.new("RGB", (8, 8)).save(tmp_path / person / f"{person}_{number:04d}.jpg")
    known, unknown, truth = versus.versus_photos(tmp_path, people=5, per_person=4, strangers=1)
    assert {name: path.name for name, path in known.items()} == {"Ann": "Ann_0001.jpg", "Bob": "Bob_0001.jpg"}
    assert sorted(path.name for path in unknown) == ["Ann_0002.jpg", "Ann_0003.jpg", "Bob_0002.jpg", "Cy_0001.jpg"]
    assert truth == {"Ann_0002.jpg": "Ann", "Ann_0003.jpg": "Ann", "Bob_0002.jpg": "Bob", "Cy_0001.jpg": "unknown"}


@pytest.mark.processes
def test_service_processes_are_found_under_their_parent_with_memory_and_cpu():
    child = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(80 * 2**20); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = {process.pid: process for process in machine.service_processes(os.getpid())}
            if child.pid in found and found[child.pid].peak_rss_mb > 80:
                break
            time.sleep(0.1)
        assert found[child.pid].peak_rss_mb > 80  # the child's 80 MB, seen under this process
        assert found[os.getpid()].cpu_seconds > 0
    finally:
        child.kill()
        child.wait()


def test_each_photo_is_named_after_its_nearest_match():
    matches = [("a.jpg", 0.9, "Ann"), ("a.jpg", 0.4, "Bob"), ("b.jpg", 0.5, "Cy"), ("a.jpg", 0.6, "Di")]
    assert versus._nearest_labels(matches) == {"a.jpg": "Bob", "b.jpg": "Cy"}
    assert versus._nearest_labels([]) == {}


def test_versus_names_within_the_identification_threshold_for_its_own_gallery(tmp_path, settings, monkeypatch):
    # Two known people, so a gallery of two faces: the curve gives 0.95 there, far more than 0.7 at 1000 faces.
    for person, count in (("Ann", 3), ("Bob", 2), ("Cy", 1)):
        (tmp_path / person).mkdir()
        for number in range(1, count + 1):
            Image.new("RGB", (8, 8)).save(tmp_path / person / f"{person}_{number:04d}.jpg")
    curve = ((2, 0.95), (1000, 0.7))
    scale = ScoreScale(threshold=1.1, midpoint=1.1, slope=20.0, source="test", identification=0.7, curve=curve)
    monkeypatch.setattr(versus, "shipped_scale", lambda model_name: scale)
    monkeypatch.setattr(versus.face_engine, "precision", lambda: "float32")
    # Ann's photos at 0.9 and 0.5 (named at 0.95, one missed at 0.7), Bob's at 1.0 (missed), the stranger at 1.05.
    matches = [("Ann_0002.jpg", 0.9, "Ann"), ("Ann_0003.jpg", 0.5, "Ann"), ("Bob_0002.jpg", 1.0, "Bob")]
    matches.append(("Cy_0001.jpg", 1.05, "Bob"))
    monkeypatch.setattr(versus, "_ours", lambda known, unknown, batch: (1.0, matches, 2))
    monkeypatch.setattr(versus, "_face_recognition_cli", lambda known, unknown: (2.0, []))
    counted: list[list] = []

    def count(batches):  # 1 GFLOP to detect and 3 to embed a photo
        counted.extend(batches)
        return ceiling.Arithmetic(len(batches), 3.0 * len(batches), len(batches)), []

    monkeypatch.setattr(versus.ceiling, "count_arithmetic", count)
    peaks = ceiling.Peaks(detect=10.0, embed=20.0, by_dtype={"float32": 10.0, "bfloat16": 20.0})
    monkeypatch.setattr(versus.ceiling, "processor_peaks", lambda: peaks)
    settings.PHOTO_BATCH = 1
    figures = versus.versus_face_recognition(tmp_path, lambda line: None, people=2, strangers=1)
    # The two known photos and the four to label, one at a time: 6 x (1/10 + 3/20) = 1.5 s at the peak, 2.0 s theirs.
    assert [len(batch) for batch in counted] == [1] * 6
    assert figures["ceiling"] == {"gflop": 24.0, "seconds_at_peak": 1.5, "time_ratio_at_most": 1.33,
                                  "target_time_ratio": 3.0}  # fmt: skip
    line = next(line for line in summary_lines(Report(versus=figures)) if line.startswith("versus"))
    assert "at this processor's peak at most 1.33x (target 3x)" in line
    assert figures["gallery_faces"] == 2 and figures["identification_threshold"] == 0.95
    assert figures["ours"]["right"] == 3 and figures["ours"]["missed"] == 1  # Ann twice, Cy rightly unknown
    assert figures["ours_pair_threshold"]["right"] == 3 and figures["ours_pair_threshold"]["false_match"] == 1
