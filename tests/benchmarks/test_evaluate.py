"""`manage.py evaluate lfw` end to end on a small balanced slice, and the LFW protocol reading."""

import json

import pytest
from django.core.management import call_command

from benchmarks.evaluation import lfw
from media_index import calibration, face_engine
from media_index.models import Calibration
from tests.conftest import DATA_DIR

pytestmark = pytest.mark.processes

LFW = DATA_DIR / "lfw"


@pytest.mark.shared_data
def test_view_2_has_ten_folds_of_balanced_pairs():
    pairs, missing = lfw.read_pairs(LFW, LFW / "pairs.txt")
    assert len(pairs) == 6000 and missing == []
    assert {pair.fold for pair in pairs} == set(range(10))
    fold_3 = [pair for pair in pairs if pair.fold == 3]
    assert sum(pair.same for pair in fold_3) == 300 and len(fold_3) == 600
    assert pairs[0].first == LFW / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    assert pairs[0].second == LFW / "Abel_Pacheco" / "Abel_Pacheco_0004.jpg" and pairs[0].same


@pytest.mark.shared_data
def test_a_pairs_file_without_folds_is_split_into_ten(tmp_path):
    pairs, _ = lfw.read_pairs(LFW, LFW / "pairsDevTest.txt")
    assert len(pairs) == 1000 and {pair.fold for pair in pairs} == set(range(10))
    limited = lfw.limit_pairs(pairs, 100)
    assert len(limited) == 100 and sum(pair.same for pair in limited) == 50
    assert {pair.fold for pair in limited} == set(range(10))


@pytest.mark.shared_data
def test_photos_the_folder_lacks_are_skipped_and_counted(tmp_path):
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("2\nAbel_Pacheco\t1\t4\nNobody_Here\t1\tAbel_Pacheco\t1\n")
    pairs, missing = lfw.read_pairs(LFW, pairs_file)
    assert len(pairs) == 1 and missing == [LFW / "Nobody_Here" / "Nobody_Here_0001.jpg"]


def test_a_malformed_line_names_the_file_and_line(tmp_path):
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("1\nAbel_Pacheco\t1\n")
    with pytest.raises(ValueError, match=r"pairs.txt:2: expected 3 or 4 fields"):
        lfw.read_pairs(LFW, pairs_file)


@pytest.mark.django_db(transaction=True)
@pytest.mark.shared_data
def test_evaluate_on_a_slice_reports_both_models_and_calibrates(tmp_path, settings, monkeypatch):
    settings.HOME_DIR = tmp_path / "home"
    out = tmp_path / "report"
    arguments = ["lfw", "--pairs", str(LFW / "pairsDevTest.txt"), "--limit", "100", "--out", str(out)]
    call_command("evaluate", *arguments, "--calibrate", "yes")

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == face_engine.model_name("casia-webface")
    assert metrics["data"]["pairs"] == 100
    assert metrics["verification"]["accuracy"] > 0.85 and metrics["verification"]["auc"] > 0.9
    assert 0.5 < metrics["verification"]["threshold"] < 1.5
    for key in ("top20_hit_portion", "recall_at_1", "recall_at_10", "map_at_20"):
        assert 0 < metrics["retrieval"][key] <= 1
    assert metrics["retrieval"]["recall_at_10"] >= metrics["retrieval"]["recall_at_1"]
    assert 0 < metrics["knn"]["accuracy"] <= 1
    assert metrics["detection"]["no_face"] >= 0
    baseline = metrics["baselines"]["dlib-resnet-v1"]
    assert baseline["verification"]["accuracy"] > 0.85

    markdown = (out / "report.md").read_text()
    assert "facenet-20180408-casia-webface" in markdown and "dlib-resnet-v1" in markdown
    assert (out / "roc.png").is_file()

    stored = Calibration.objects.get(model_name=metrics["model"])
    assert stored.threshold == pytest.approx(metrics["verification"]["threshold"])
    scale = calibration.for_model(metrics["model"])
    assert scale.same_person(stored.threshold - 0.01) and not scale.same_person(stored.threshold + 0.01)
    assert scale.score(0.3) > 90 > 10 > scale.score(1.8)

    # A second run reads every embedding from the cache: the face engine is not asked again.
    def no_engine(*args, **kwargs):
        raise AssertionError("embedding recomputed despite the cache")

    monkeypatch.setattr(face_engine, "find_faces", no_engine)
    call_command("evaluate", *arguments, "--calibrate", "no")
    assert json.loads((out / "metrics.json").read_text())["verification"] == metrics["verification"]
    assert Calibration.objects.count() == 2
