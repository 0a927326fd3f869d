"""`manage.py evaluate clusters` end to end on a small slice of LFW: every method scored, the open set calibrated."""

import json

import pytest
from django.core.management import call_command

from benchmarks.evaluation import clusters
from media_index import calibration, face_engine
from media_index.models import Calibration
from tests.conftest import DATA_DIR

pytestmark = pytest.mark.processes

LFW = DATA_DIR / "lfw"
SCORES = ("bcubed_precision", "bcubed_recall", "bcubed_f", "pairwise_precision", "pairwise_recall", "pairwise_f")


@pytest.mark.shared_data
def test_lfw_people_are_read_by_folder_with_a_limit():
    people = clusters.lfw_people(LFW, limit=3)
    assert list(people.several) == ["Aaron_Peirsol", "Aaron_Sorkin", "Abdel_Nasser_Assidi"]
    assert len(people.several["Aaron_Peirsol"]) == 4 and len(people.single) == 3
    assert all(len(photos) > 1 for photos in clusters.lfw_people(LFW).several.values())


def test_a_folder_without_people_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fewer than two people"):
        clusters.lfw_people(tmp_path)


@pytest.mark.django_db(transaction=True)
@pytest.mark.shared_data
def test_evaluate_clusters_on_a_slice_scores_every_method_and_stores_the_threshold(tmp_path, settings, monkeypatch):
    settings.HOME_DIR = tmp_path / "home"
    settings.PEOPLE_CLUSTER_DISTANCE = 0  # the identification threshold measured in the run
    settings.PEOPLE_MIN_FACES = 2
    out = tmp_path / "report"
    arguments = ["clusters", "--limit", "8", "--baseline", "none", "--out", str(out)]
    call_command("evaluate", *arguments, "--calibrate", "yes")

    metrics = json.loads((out / "metrics.json").read_text())
    model = face_engine.model_name("casia-webface")
    assert metrics["model"] == model
    assert metrics["data"]["people"] == 8 and metrics["data"]["photos"] == 31
    assert set(metrics["methods"]) == {"ours", "DBSCAN", "HDBSCAN", "ours, while indexing"}
    for method in metrics["methods"].values():
        assert all(0 <= method[key] <= 1 for key in SCORES)
        assert method["people_true"] == 8 and method["people_found"] >= 1 and method["seconds"] >= 0
    # Eight well-separated people: our grouping is far from chance on them.
    assert metrics["methods"]["ours"]["bcubed_f"] > 0.7
    assert len(metrics["sweep"]) == len(clusters.RADII) * len(clusters.MIN_FACES)
    assert {"ours", "density rule", "DBSCAN"} <= set(metrics["sweep"][0])
    assert len(metrics["hdbscan_sweep"]) == len(clusters.HDBSCAN_GRID)
    # The eight one-photo people mixed in: every face scored, each stranger a person of their own in the truth.
    mixed = metrics["with_strangers"]
    assert [entry["method"] for entry in mixed] == ["ours"] * len(clusters.RADII) + ["HDBSCAN"]
    assert all(entry["people_true"] == 16 and 0 <= entry["strangers_grouped"] <= 1 for entry in mixed)

    open_set = metrics["open_set"][model]
    threshold = open_set["identification_threshold"]
    assert 0.3 < threshold < 1.5
    assert open_set["at_identification_threshold"]["strangers_named"] <= 0.05
    assert open_set["at_pair_threshold"]["threshold"] == calibration.SHIPPED[model].threshold
    # Four known people a split: no smaller gallery in the ladder, the curve is the whole gallery's point.
    (whole,) = open_set["by_gallery_size"]
    assert whole["threshold"] == threshold and whole["gallery_faces"] == open_set["split"]["gallery_faces"]
    assert metrics["parameters"] == {
        "radius": threshold, "min_faces": 2, "radius_source": "the identification threshold measured here"
    }  # fmt: skip
    markdown = (out / "report.md").read_text()
    assert "HDBSCAN" in markdown and "DBSCAN" in markdown and "Open-set identification threshold" in markdown

    # No calibration yet: a new row copies the shipped pair values and adds the measured threshold.
    stored = Calibration.objects.get(model_name=model)
    assert stored.threshold == calibration.SHIPPED[model].threshold
    assert stored.identification_threshold == pytest.approx(threshold, abs=1e-4)
    assert calibration.for_model(model).identification == pytest.approx(threshold, abs=1e-4)
    assert stored.identification_curve == [[whole["gallery_faces"], threshold]]

    # A second run reads every embedding from the cache, and updates the latest calibration in place.
    def no_engine(*args, **kwargs):
        raise AssertionError("embedding recomputed despite the cache")

    monkeypatch.setattr(face_engine, "find_faces", no_engine)
    Calibration.objects.filter(pk=stored.pk).update(identification_threshold=None)
    call_command("evaluate", *arguments, "--calibrate", "yes")
    assert json.loads((out / "metrics.json").read_text())["methods"]["ours"] == metrics["methods"]["ours"] | {
        "seconds": pytest.approx(metrics["methods"]["ours"]["seconds"], abs=60)
    }
    assert Calibration.objects.count() == 1
    assert Calibration.objects.get().identification_threshold == pytest.approx(threshold, abs=1e-4)
