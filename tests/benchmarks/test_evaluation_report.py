"""The LFW report for two synthetic models: the table, the notes and the plots."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.evaluation import report
from benchmarks.evaluation.metrics import Retrieval, ScoreCalibration, Verification


def synthetic_run(model: str, verification: Verification, **changes) -> report.ModelRun:
    """A run of 300 same-person and 300 different-person pairs with overlapping distance distributions."""
    rng = np.random.default_rng(len(model))
    distances = np.concatenate([rng.normal(0.7, 0.15, 300), rng.normal(1.3, 0.15, 300)])
    fields = dict(
        model=model,
        published_accuracy=0.9905,
        published_source="The model card of the published weights",
        verification=verification,
        retrieval=Retrieval(queries=120, top20_hit_portion=0.8125, recall_at_1=0.9, recall_at_10=0.975, map_at_20=0.75),
        knn_accuracy=0.95,
        knn_split="Leave-one-out 5-NN over the indexed photos.",
        no_face=3,
        several_faces=7,
        face_choice="the face nearest the photo's centre",
        skipped=2,
        photos=1200,
        pairs=600,
        seconds=754.0,
        distances=distances,
        same=np.arange(600) < 300,
        calibration=ScoreCalibration(midpoint=1.0, slope=12.0),
    )
    return report.ModelRun(**(fields | changes))


def verification(accuracy: float, std: float) -> Verification:
    return Verification(
        accuracy=accuracy, std=std, auc=0.9987, tar_at_far_1e_3=0.9612, threshold=1.012, fold_thresholds=(1.0,) * 10
    )


def test_report_shows_both_models_side_by_side(tmp_path: Path) -> None:
    runs = [
        synthetic_run("facenet-casia", verification(0.9862, 0.0041)),
        synthetic_run(
            "facenet-vgg", verification(0.9905, 0.0035), published_accuracy=None, retrieval=None, knn_accuracy=None
        ),
    ]
    paths = report.write_report(tmp_path / "out", runs, "LFW: two models", "All 6000 View 2 pairs.")

    assert [path.name for path in paths] == [
        "report.md",
        "roc.png",
        "distances-facenet-casia.png",
        "distances-facenet-vgg.png",
    ]
    text = paths[0].read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# LFW: two models"
    assert "All 6000 View 2 pairs." in lines
    assert "| | facenet-casia | facenet-vgg |" in lines
    assert "| Accuracy on held-out folds (mean ± std) | 98.62% ± 0.41% | 99.05% ± 0.35% |" in lines
    assert "| Published accuracy | 99.05% [^1] | n/a |" in lines
    assert "[^1]: The model card of the published weights" in lines
    assert "| Top-20 hit portion | 81.25% | n/a |" in lines
    assert "| kNN accuracy | 95.00% | n/a |" in lines
    assert "| Time (embedding included) | 12 min 34 s | 12 min 34 s |" in lines
    # A note says which face was used and how kNN was split (not for the model without kNN).
    assert "Leave-one-out 5-NN over the indexed photos." in text
    assert text.count("kNN: ") == 1
    assert "## How to read this" in text
    for path in paths[1:]:
        assert f"]({path.name})" in text


def test_plots_are_real_images(tmp_path: Path) -> None:
    runs = [synthetic_run("a", verification(0.97, 0.01)), synthetic_run("b", verification(0.98, 0.01))]
    for path in report.write_report(tmp_path, runs, "LFW", "Synthetic pairs.")[1:]:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width >= 600 and image.height >= 400
            # Curves, bars and text in several colours, not a blank canvas.
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 16)) > 20


def test_model_names_must_differ(tmp_path: Path) -> None:
    run = synthetic_run("same-name", verification(0.97, 0.01))
    with pytest.raises(ValueError, match="model names must differ"):
        report.write_report(tmp_path, [run, run], "LFW", "Synthetic pairs.")
    with pytest.raises(ValueError, match="no model runs"):
        report.write_report(tmp_path, [], "LFW", "Synthetic pairs.")
