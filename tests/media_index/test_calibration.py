"""The identification threshold by gallery size: interpolated in log size, clamped, stored and read back."""

import math

import pytest

from media_index import calibration
from media_index.calibration import ScoreScale
from media_index.models import Calibration

CURVE = ((10, 1.0), (100, 0.9), (1000, 0.7))
SCALE = ScoreScale(threshold=1.1, midpoint=1.1, slope=20.0, source="test", identification=0.7, curve=CURVE)


def test_the_threshold_is_read_off_the_curve_in_log_size_between_its_points():
    assert SCALE.identification_for(100) == pytest.approx(0.9)
    assert SCALE.identification_for(round(math.sqrt(10 * 100))) == pytest.approx(0.95, abs=1e-3)  # halfway in log
    assert SCALE.identification_for(300) == pytest.approx(0.9 - 0.2 * math.log(3) / math.log(10))
    # The points may come in any order.
    shuffled = ScoreScale(1.1, 1.1, 20.0, "test", 0.7, curve=(CURVE[2], CURVE[0], CURVE[1]))
    assert shuffled.identification_for(300) == SCALE.identification_for(300)


@pytest.mark.parametrize("faces, expected", [(0, 1.0), (1, 1.0), (9, 1.0), (1000, 0.7), (10**7, 0.7)])
def test_beyond_the_measured_sizes_the_nearest_end_holds(faces, expected):
    assert SCALE.identification_for(faces) == pytest.approx(expected)


def test_without_a_curve_the_one_threshold_holds_at_every_size():
    flat = ScoreScale(threshold=1.1, midpoint=1.1, slope=20.0, source="test", identification=0.8)
    assert [flat.identification_for(faces) for faces in (0, 10, 10**6)] == [0.8, 0.8, 0.8]


@pytest.mark.parametrize("scale", calibration.SHIPPED.values(), ids=calibration.SHIPPED.keys())
def test_the_shipped_curves_end_at_the_shipped_threshold_and_tighten_with_size(scale):
    sizes, thresholds = zip(*scale.curve, strict=True)
    assert list(sizes) == sorted(sizes) and list(thresholds) == sorted(thresholds, reverse=True)
    assert scale.identification_for(sizes[-1]) == scale.identification
    assert scale.identification < scale.identification_for(100) < scale.threshold


@pytest.mark.django_db
def test_a_stored_curve_comes_back_from_the_latest_calibration():
    Calibration.objects.create(
        model_name="test-model", threshold=1.1, midpoint=1.1, slope=20.0, accuracy=0.98, pairs=10, source="test",
        identification_threshold=0.7, identification_curve=[[10, 1.0], [100, 0.9], [1000, 0.7]],
    )  # fmt: skip
    scale = calibration.for_model("test-model")
    assert scale.curve == CURVE and scale.identification == 0.7
    assert scale.identification_for(100) == pytest.approx(0.9)


@pytest.mark.django_db
def test_an_older_calibration_keeps_the_shipped_curve_only_with_the_shipped_threshold():
    model = "facenet-20180408-casia-webface"
    shipped = calibration.SHIPPED[model]
    row = Calibration.objects.create(
        model_name=model, threshold=1.1, midpoint=1.1, slope=20.0, accuracy=0.98, pairs=10, source="pairs only"
    )
    assert calibration.for_model(model).curve == shipped.curve
    # Its own identification threshold, measured before curves were: that threshold at every size.
    row.identification_threshold = 0.85
    row.save()
    scale = calibration.for_model(model)
    assert scale.curve == () and scale.identification_for(100) == 0.85
